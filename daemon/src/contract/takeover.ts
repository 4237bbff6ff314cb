/**
 * The rule for a takeover: a claim of a task whose owner's lease expired (CLAIMED / RUNNING /
 * the owner stopped heartbeating: fleetd crashed, froze or its instance died). One rule, used
 * by fleetd's claim and by the reconciler, so both agree on when such a task is failed.
 *
 * - The dead owner's attempt is refunded: an instance fault is never the task's, so a takeover
 *   costs the task nothing (the new claim spends one attempt, the refund gives the old one back).
 * - Takeovers are capped (LIMITS.maxTakeovers): a task that kills its host (exhausts memory or
 *   disk until fleetd dies, panics the kernel) would otherwise be retried on host after host
 *   forever. Past the cap the task ends FAILED with a reason naming the takeovers.
 */
import type { TaskRecord } from './record';
import { LIMITS } from './timings';

export type TakeoverVerdict =
  /** It may be taken over: `attemptsLeft` after the refund (before the new claim spends one), `takeovers` counting this one. */
  | { readonly ok: true; readonly attemptsLeft: number; readonly takeovers: number }
  /** It may not: fail it with `reason`. */
  | { readonly ok: false; readonly reason: string };

export function takeoverVerdict(record: Pick<TaskRecord, 'attempt' | 'attempts_left' | 'takeovers' | 'instance_id'>, maxTakeovers: number = LIMITS.maxTakeovers): TakeoverVerdict {
  const done = record.takeovers ?? 0;
  if (done >= maxTakeovers) {
    return {
      ok: false,
      reason: `takeovers exhausted: taken over ${done} time(s) (the cap is ${maxTakeovers}) and the instance of attempt ${record.attempt}${record.instance_id ? ` (${record.instance_id})` : ''} stopped heartbeating too; a task whose every host dies is failed rather than retried`,
    };
  }
  return { ok: true, attemptsLeft: record.attempts_left + 1, takeovers: done + 1 };
}
