/**
 * A running task's heartbeat loop (task-run.ts owns the task; this is its beat). Interval:
 * `heartbeatSeconds` (30 s) with ±10% jitter so a fleet that started together does not beat in
 * lockstep. One early beat: EARLY_BEAT_DELAY_MS after the container started (`earlyBeat`), so
 * the record names its container and dispatch timings within seconds rather than an interval
 * (the RUNNING write goes out beside the create, before the id exists); a task that ends sooner
 * carries them in its terminal write instead, with no extra write. A failed beat is retried with backoff and jitter; when the lease would expire before
 * a beat lands, the container is stopped (we can no longer prove we own the task). Each beat
 * renews the lease (fenced), reads a cancel request, mirrors into ABCA's record (best effort,
 * never awaited) and extends the message's visibility on the same tick.
 */
import type { AbcaHeartbeatMirror } from './abca-mirror';
import { abcaTaskIdOf } from './abca-mirror';
import { TaskStatus, type TaskRecord, type Timings } from './contract';
import type { Logger } from './log';
import { backoffDelayMs, sleep } from './retry';

/** How long after the container's start the early beat goes out (see the module comment). */
export const EARLY_BEAT_DELAY_MS = 2000;
import type { HeartbeatOutcome, Lease } from './store';

export interface HeartbeatHost {
  readonly timings: Timings;
  readonly signal: AbortSignal;
  readonly lease: Lease;
  readonly record: TaskRecord;
  readonly log: Logger;
  readonly abcaMirror?: AbcaHeartbeatMirror;
  beat(lease: Lease): Promise<HeartbeatOutcome>;
  /** When the lease last renewed ends (the loop's own deadline). */
  leaseExpiresAt(): number;
  /** A beat landed: `sentAt` is when it was sent. */
  renewed(sentAt: number): void;
  /** Stop the container: another attempt owns the task, or the lease could not be renewed. */
  leaseLost(fenced: boolean): void;
  /** A cancel was asked (record status, or ABCA cancelled its task). */
  cancel(by: 'record' | 'abca-cancelled'): void;
  extendVisibility(seconds: number): Promise<void>;
  /** Resolves when the container started (its facts wait for a write): one beat goes out EARLY_BEAT_DELAY_MS later. */
  readonly earlyBeat?: Promise<void>;
  /** @default EARLY_BEAT_DELAY_MS */
  readonly earlyBeatDelayMs?: number;
}

export async function heartbeatLoop(h: HeartbeatHost): Promise<void> {
  const { timings, signal } = h;
  let failures = 0;
  // Ends the first wait early: the container started, and a beat EARLY_BEAT_DELAY_MS later writes its facts.
  const early = new AbortController();
  void h.earlyBeat?.then(() => sleep(h.earlyBeatDelayMs ?? EARLY_BEAT_DELAY_MS, signal)).then(() => early.abort());
  let earlyDone = false;
  while (!signal.aborted) {
    const jitter = 0.9 + Math.random() * 0.2;
    const wait = failures === 0 ? timings.heartbeatSeconds * 1000 * jitter : backoffDelayMs(failures, 1000, timings.heartbeatSeconds * 1000);
    // Whichever wait is running when the early beat is due ends then (at once if it came due during a beat).
    await sleep(wait, earlyDone ? signal : AbortSignal.any([signal, early.signal]));
    if (early.signal.aborted) earlyDone = true;
    if (signal.aborted) return;
    try {
      const sentAt = Date.now();
      const beat = await h.beat(h.lease);
      if (beat.kind === 'fenced') {
        h.log.warn('heartbeat fenced out: stopping the container', { owner: beat.record?.instance_id, attempt: beat.record?.attempt, status: beat.record?.status });
        h.leaseLost(true);
        return;
      }
      failures = 0;
      h.renewed(sentAt);
      if (beat.status === TaskStatus.CANCEL_REQUESTED) h.cancel('record');
      // Best effort and never awaited: a slow ABCA table must not delay the lease. ABCA's
      // CANCELLED is the fleet's cancel (recorded through the store, then the ladder).
      const abcaTaskId = h.abcaMirror && abcaTaskIdOf(h.record.spec);
      if (abcaTaskId) void h.abcaMirror!.beat(abcaTaskId).then((m) => m === 'cancelled' && h.cancel('abca-cancelled')).catch((err) => h.log.warn('cancelling for ABCA failed; the next heartbeat tries again', { error: err }));
      await h.extendVisibility(timings.leaseSeconds);
    } catch (err) {
      failures++;
      const left = h.leaseExpiresAt() - Date.now();
      h.log.warn('heartbeat failed', { error: err, failures, lease_left_ms: left });
      if (left < 5000) {
        h.log.error('lease could not be renewed before it expired: stopping the container');
        h.leaseLost(false);
        return;
      }
    }
  }
}
