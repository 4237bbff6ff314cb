/**
 * Transient AWS errors at boot: worth retrying for a while rather than failing the boot (which
 * in production reports the instance unhealthy, and the group replaces it).
 */
import { backoffDelayMs, sleep } from './backoff';
import type { Logger } from './log';

/** How long boot steps retry transient AWS errors before they give up. */
export const BOOT_RETRY_BUDGET_MS = 60_000;

/** Network errors, 5xx and throttling: worth another try. Anything else (4xx) is an answer. */
export function isTransientAwsError(err: unknown): boolean {
  const e = err as { name?: string; cause?: unknown; $metadata?: { httpStatusCode?: number }; $retryable?: unknown } | undefined;
  if (!e || typeof e !== 'object') return false;
  // Wrapped by our own typed errors (TaskStoreError and friends): judge the AWS error inside.
  if (!('$metadata' in e) && e.cause && typeof e.cause === 'object') return isTransientAwsError(e.cause);
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status === undefined) return true; // no HTTP answer at all: connection refused, reset, DNS, timeout
  if (status >= 500 || status === 429) return true;
  return /Throttl|TooManyRequests|RequestLimitExceeded|SlowDown/.test(e.name ?? '');
}

/**
 * `fn`, retried on transient errors for `budgetMs` (60 s): backoff with full jitter from 1 s,
 * 8 s cap. The last error is thrown when the budget is spent or the error is not transient.
 */
export async function retryTransient<T>(what: string, log: Logger, fn: () => Promise<T>, budgetMs = BOOT_RETRY_BUDGET_MS): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientAwsError(err) || Date.now() >= deadline) throw err;
      const delay = backoffDelayMs(attempt, 1000, 8000);
      log.warn(`${what} did not answer; retrying`, { error: err, retry_in_ms: delay, gives_up_in_ms: deadline - Date.now() });
      await sleep(delay);
    }
  }
}
