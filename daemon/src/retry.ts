/**
 * The fleet's one retry policy: which errors are transient (worth another try) and how long to
 * wait between tries. fleetd, the scaler and the reconciler all retry through `retry()` with a
 * named policy from `RETRY_POLICIES`; loops that pace themselves (receive, heartbeat) take their
 * delays from `backoffDelayMs`. The AWS SDK already retries each call (standard mode, 4
 * attempts); this layer is for the outcome of a whole step (a boot check, a terminal write).
 *
 * A small helper rather than a library: p-retry is ESM-only (this project is CommonJS) and
 * cockatiel cannot take an injected clock and sleep, which the tests need so that no test
 * waits real backoff.
 */

/** Time, as the retry loop sees it. Tests inject a fake one. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** [0, 1): the jitter. */
  random(): number;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export const SYSTEM_CLOCK: Clock = { now: () => Date.now(), sleep, random: Math.random };

/** Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"). */
export function backoffDelayMs(attempt: number, baseMs = 500, capMs = 10_000, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/**
 * AWS error names that mean "try again later" even without a 5xx status (the scaler's Auto
 * Scaling faults answer 400 with these).
 */
const TRANSIENT_ERROR_NAMES = /Throttl|TooManyRequests|RequestLimitExceeded|SlowDown|ScalingActivityInProgress|ResourceContention|ProvisionedThroughputExceeded|TransactionInProgress|ServiceUnavailable|InternalFailure|TimeoutError/;

/** Node's socket errors: the request never got an answer. */
const NETWORK_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Transient: no HTTP answer at all (refused, reset, DNS, timeout), a 5xx, a 429, throttling or
 * a contention fault. Everything else (a 4xx: missing resource, denied, invalid request, a lost
 * condition) is an answer, and retrying it changes nothing. Our own typed errors wrap the AWS
 * error as `cause`; it is judged inside.
 */
export function isTransient(err: unknown): boolean {
  const e = err as { name?: string; cause?: unknown; $metadata?: { httpStatusCode?: number }; $retryable?: unknown } | undefined;
  if (!e || typeof e !== 'object') return false;
  if (!('$metadata' in e) && e.cause && typeof e.cause === 'object') return isTransient(e.cause);
  if (e.$retryable) return true;
  if (TRANSIENT_ERROR_NAMES.test(e.name ?? '')) return true;
  if (NETWORK_ERROR_CODES.has((e as { code?: string }).code ?? '') || /socket hang up/.test((e as { message?: string }).message ?? '')) return true;
  if (!('$metadata' in e)) return false; // not an AWS answer and nothing inside to judge
  const status = e.$metadata?.httpStatusCode;
  if (status === undefined) return true; // the SDK got no HTTP answer
  return status >= 500 || status === 429;
}

/** How one kind of step retries. Either bound (or both) ends it. */
export interface RetryPolicy {
  /** Tries in all, the first included. @default unbounded (then budgetMs must be set) */
  readonly maxAttempts?: number;
  /** Stop retrying once this long has passed since the first try. @default unbounded */
  readonly budgetMs?: number;
  /** First backoff ceiling; doubles per try (full jitter). */
  readonly baseMs: number;
  /** Largest backoff ceiling. */
  readonly capMs: number;
}

/** The named policies; a new caller picks one of these rather than inventing its own numbers. */
export const RETRY_POLICIES = {
  /**
   * Boot checks and recovery reads: a network blip or a throttled API at boot must not mark a
   * healthy instance unhealthy (the group would replace it). 60 s, backoff from 1 s to 8 s.
   */
  boot: { budgetMs: 60_000, baseMs: 1000, capMs: 8000 },
  /** IMDS at boot: slow on a busy host (several daemons booting together). 5 tries, 0.5–4 s. */
  imds: { maxAttempts: 5, baseMs: 500, capMs: 4000 },
  /**
   * A task's own writes (terminal write, release) and its per-task calls (STS credentials):
   * a few tries, then the task run decides (fail with the reason, or release) and frees its
   * slot. Bounded: a write that keeps failing must never hold a slot forever.
   */
  taskStep: { maxAttempts: 5, baseMs: 500, capMs: 8000 },
  /** The scaler's and reconciler's AWS calls inside one scheduled invocation. */
  scheduled: { maxAttempts: 3, baseMs: 200, capMs: 2000 },
  /**
   * The intake and task-event functions' steps inside one invocation (a submit, a PutEvents, a
   * Step Functions callback): a few quick tries; beyond them the event source redelivers the
   * message or the stream record, which is the real retry.
   */
  eventSource: { maxAttempts: 3, baseMs: 200, capMs: 2000 },
  /**
   * One batch of a task's log to CloudWatch Logs (log-shipper.ts): rides out an outage for two
   * minutes while the stream's bounded buffer fills (then drops, counted); beyond that the
   * batch is dropped and the local log file remains the source. Never fails the task.
   */
  logShipping: { budgetMs: 120_000, baseMs: 500, capMs: 8000 },
} as const satisfies Record<string, RetryPolicy>;

export interface RetryAttemptInfo {
  readonly what: string;
  /** The try that failed, from 1. */
  readonly attempt: number;
  readonly error: unknown;
  readonly retryInMs: number;
}

export interface RetryOptions {
  readonly policy: RetryPolicy;
  /** Which errors are worth another try. @default isTransient */
  readonly retryable?: (err: unknown) => boolean;
  /** Told before each wait (a log line, a metric). */
  readonly onRetry?: (info: RetryAttemptInfo) => void;
  /** Ends the waiting: the last error is thrown at once. */
  readonly signal?: AbortSignal;
  /** @default SYSTEM_CLOCK */
  readonly clock?: Clock;
}

/**
 * `fn` until it succeeds, the error is not retryable, or the policy's bounds are spent; then
 * the last error is thrown as it was (callers classify it themselves).
 */
export async function retry<T>(what: string, fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { policy } = options;
  if (policy.maxAttempts === undefined && policy.budgetMs === undefined) {
    throw new RangeError(`retry policy for ${what}: got neither maxAttempts nor budgetMs, expected at least one bound`);
  }
  const clock = options.clock ?? SYSTEM_CLOCK;
  const retryable = options.retryable ?? isTransient;
  const started = clock.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const outOfTries = policy.maxAttempts !== undefined && attempt >= policy.maxAttempts;
      const outOfTime = policy.budgetMs !== undefined && clock.now() - started >= policy.budgetMs;
      if (!retryable(err) || outOfTries || outOfTime || options.signal?.aborted) throw err;
      const retryInMs = backoffDelayMs(attempt - 1, policy.baseMs, policy.capMs, () => clock.random());
      options.onRetry?.({ what, attempt, error: err, retryInMs });
      await clock.sleep(retryInMs, options.signal);
    }
  }
}
