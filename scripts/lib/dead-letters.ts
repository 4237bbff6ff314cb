/**
 * What `redriveDeadLetters` does with one dead-lettered message. Messages reach the dead-letter
 * queue two ways: fleetd rejects them (malformed, no record, invalid record: the reason is the
 * DLQ_REASON_ATTRIBUTE) or SQS moves them after QUEUE_DEFAULTS.maxReceiveCount receives. The
 * record is the truth, so the decision looks at the task, not at the message:
 *
 * - task still to run (not terminal) → a fresh, valid envelope goes to the task queue, then
 *   the dead letter is deleted (a duplicate is harmless: the claim is exactly-once);
 * - task already ended → the dead letter is obsolete and deleted;
 * - no task id in it, or no (valid) record → kept for a person to look at.
 */
import { decodeEnvelope, isTerminal, type TaskRecord } from '../../daemon/src/contract';

export type RedriveDecision =
  | { readonly action: 'resend'; readonly taskId: string; readonly why: string }
  | { readonly action: 'drop'; readonly taskId: string; readonly why: string }
  | { readonly action: 'keep'; readonly taskId?: string; readonly why: string };

/** The task a dead-lettered body names, when it names one (even in a malformed envelope). */
export function deadLetterTaskId(body: string | undefined): string | undefined {
  const decoded = decodeEnvelope(body);
  return decoded.ok ? decoded.value.task_id : decoded.taskId;
}

export function decideRedrive(taskId: string | undefined, lookup: { readonly record?: TaskRecord; readonly problems?: readonly string[] }): RedriveDecision {
  if (taskId === undefined) return { action: 'keep', why: 'the message names no task id; inspect it and delete it by hand' };
  if (lookup.problems) return { action: 'keep', taskId, why: `the task record is invalid (${lookup.problems[0]})` };
  const record = lookup.record;
  if (!record) return { action: 'keep', taskId, why: 'there is no task record for it' };
  if (isTerminal(record.status)) return { action: 'drop', taskId, why: `obsolete: the task already ended ${record.status}` };
  return { action: 'resend', taskId, why: `the task is ${record.status}: a fresh message goes to the task queue` };
}
