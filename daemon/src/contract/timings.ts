/**
 * Timing defaults, in one place. Every loop and lease in the fleet derives from these; change
 * them here (or override per instance through fleetd's config, which validates them with
 * `validateTimings`).
 */
export interface Timings {
  /** SQS long-poll wait per ReceiveMessage. SQS caps it at 20 s. */
  readonly longPollSeconds: number;
  /** Interval between fenced heartbeats of a running task. */
  readonly heartbeatSeconds: number;
  /**
   * The instance's own heartbeat: fleetd rewrites its instance row, and reads the group's
   * rollout marker, each once per this interval (+0–10 % jitter, never less: instanceHeartbeatDelayMs).
   * A status change (busy, idle, draining, retiring) writes the row at once, whatever this is.
   * Idle cost: 3600 / 360 = 10 row writes + 10 marker reads an hour, beside the one receive
   * loop's 180 long polls: 200 AWS calls per idle hour at any slot count (docs/benchmarks.md).
   */
  readonly instanceHeartbeatSeconds: number;
  /** Lease length written on claim and each heartbeat; the message visibility is kept equal. */
  readonly leaseSeconds: number;
  /** SIGTERM → SIGKILL grace in the cancel / timeout ladder. */
  readonly cancelGraceSeconds: number;
  /** Claims allowed per task before it is failed for good. */
  readonly maxAttempts: number;
  /** Idle time after which an instance terminates itself (above the group's MinSize). */
  readonly idleBeforeTerminateSeconds: number;
  /** Task timeout when the spec names none. */
  readonly defaultTaskTimeoutSeconds: number;
  /** Largest task timeout accepted: below SQS's 12-hour total visibility limit. */
  readonly maxTaskTimeoutSeconds: number;
  /** Scaler re-evaluation interval inside one scheduled invocation. */
  readonly scalerTickSeconds: number;
}

export const DEFAULT_TIMINGS: Timings = Object.freeze({
  longPollSeconds: 20,
  heartbeatSeconds: 30,
  instanceHeartbeatSeconds: 360,
  leaseSeconds: 120,
  cancelGraceSeconds: 30,
  maxAttempts: 3,
  idleBeforeTerminateSeconds: 600,
  defaultTaskTimeoutSeconds: 2 * 3600,
  maxTaskTimeoutSeconds: 11 * 3600,
  scalerTickSeconds: 10,
});

/** The instance heartbeat's jitter: each wait is the interval times 1 + U[0, this). */
export const INSTANCE_HEARTBEAT_JITTER = 0.1;

/**
 * The wait before the next instance heartbeat (row write, or rollout marker read):
 * instanceHeartbeatSeconds × (1 + U[0, 0.1)). The jitter only lengthens the wait, so the
 * hourly count stays at most 3600 / instanceHeartbeatSeconds; it keeps instances booted
 * together from writing and reading in step.
 */
export function instanceHeartbeatDelayMs(t: Pick<Timings, 'instanceHeartbeatSeconds'>, random: () => number = Math.random): number {
  return Math.round(t.instanceHeartbeatSeconds * 1000 * (1 + random() * INSTANCE_HEARTBEAT_JITTER));
}

/**
 * An instance row not rewritten for this long is stale (its fleetd may be dead): 2.5 instance
 * heartbeats (15 min by default), so one missed write plus the jitter is not reported, and never
 * less than a lease. The one threshold of every reader: the reconciler's stale-instance report
 * (and its alarm), `fleet instances`.
 */
export function instanceStaleAfterMs(t: Pick<Timings, 'instanceHeartbeatSeconds' | 'leaseSeconds'>): number {
  return Math.max(t.leaseSeconds * 1000, Math.round(2.5 * t.instanceHeartbeatSeconds * 1000));
}

/** SQS: a message may stay invisible for at most 12 hours in total. */
export const SQS_MAX_TOTAL_VISIBILITY_SECONDS = 12 * 3600;
/** SQS: a single long poll waits at most 20 s. */
export const SQS_MAX_WAIT_SECONDS = 20;

/** Size limits of the contract. */
export const LIMITS = Object.freeze({
  /** Payloads up to this many bytes of JSON travel inline in the record; larger ones go to S3. */
  inlinePayloadBytes: 32 * 1024,
  /** Largest payload accepted at all. */
  maxPayloadBytes: 16 * 1024 * 1024,
  /** result.json larger than this is recorded as too large, not parsed. */
  resultBytes: 64 * 1024,
  /** Log tail kept in the terminal record. */
  logTailBytes: 8 * 1024,
  /** Per-task log file kept on the instance (older output is dropped, newest kept). */
  logFileBytes: 16 * 1024 * 1024,
  /** Largest SQS message body fleetd will even try to parse. */
  envelopeBytes: 4 * 1024,
  /**
   * Takeovers allowed per task (claims of a lease whose owner stopped heartbeating). A takeover
   * refunds the dead owner's attempt (an instance fault is not the task's), so this cap is what
   * ends a task that kills every host it runs on: past it the task is FAILED (contract/takeover.ts).
   */
  maxTakeovers: 3,
  /**
   * Disk a task may fill when its spec names none (`disk_mb`), in MiB: the bound of its
   * writable layer (where the engine supports `storage-opt size`) and, separately, of its
   * /fleet/output file system (docs/security.md, "Confinement").
   */
  defaultDiskMb: 10 * 1024,
  /** Largest `disk_mb` a spec may ask for. */
  maxDiskMb: 200 * 1024,
  /** Smallest `disk_mb`: room for an ext4 file system's own metadata and a result. */
  minDiskMb: 16,
});

/**
 * Cross-field checks (sqs-consumer style): returns one message per problem, empty when valid.
 * Each message says what was got, what is expected and how to fix it.
 */
export function validateTimings(t: Timings): string[] {
  const problems: string[] = [];
  const positive: (keyof Timings)[] = [
    'heartbeatSeconds',
    'instanceHeartbeatSeconds',
    'leaseSeconds',
    'cancelGraceSeconds',
    'maxAttempts',
    'idleBeforeTerminateSeconds',
    'defaultTaskTimeoutSeconds',
    'maxTaskTimeoutSeconds',
    'scalerTickSeconds',
  ];
  for (const key of positive) {
    const v = t[key];
    if (!Number.isFinite(v) || v <= 0) problems.push(`${key}: got ${v}, expected a positive number`);
  }
  if (!(t.longPollSeconds >= 0 && t.longPollSeconds <= SQS_MAX_WAIT_SECONDS)) {
    problems.push(`longPollSeconds: got ${t.longPollSeconds}, expected 0..${SQS_MAX_WAIT_SECONDS} (SQS's limit)`);
  }
  if (t.heartbeatSeconds * 2 > t.leaseSeconds) {
    problems.push(
      `heartbeatSeconds (${t.heartbeatSeconds}) must be at most half of leaseSeconds (${t.leaseSeconds}) so one missed heartbeat does not lose the lease; lower heartbeatSeconds or raise leaseSeconds`,
    );
  }
  if (t.leaseSeconds > SQS_MAX_TOTAL_VISIBILITY_SECONDS) {
    problems.push(`leaseSeconds: got ${t.leaseSeconds}, expected at most ${SQS_MAX_TOTAL_VISIBILITY_SECONDS} (SQS visibility limit)`);
  }
  if (t.defaultTaskTimeoutSeconds > t.maxTaskTimeoutSeconds) {
    problems.push(
      `defaultTaskTimeoutSeconds (${t.defaultTaskTimeoutSeconds}) exceeds maxTaskTimeoutSeconds (${t.maxTaskTimeoutSeconds}); lower the default`,
    );
  }
  // The whole run plus the cancel ladder and one lease must fit in SQS's 12-hour budget,
  // otherwise the message would reappear while the task still runs.
  const worst = t.maxTaskTimeoutSeconds + t.cancelGraceSeconds + t.leaseSeconds;
  if (worst > SQS_MAX_TOTAL_VISIBILITY_SECONDS) {
    problems.push(
      `maxTaskTimeoutSeconds + cancelGraceSeconds + leaseSeconds = ${worst} s exceeds SQS's 12-hour visibility limit (${SQS_MAX_TOTAL_VISIBILITY_SECONDS} s); lower maxTaskTimeoutSeconds`,
    );
  }
  return problems;
}
