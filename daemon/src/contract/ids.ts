/**
 * Task ids. The same pattern is the SSM cancel document's `allowedPattern`, the CLI's argument
 * check and `fleetd cancel`'s check: an id can never carry shell metacharacters.
 */
import { createHash } from 'node:crypto';
import { ulid } from 'ulid';

export const TASK_ID_PATTERN_SOURCE = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';
export const TASK_ID_PATTERN = new RegExp(TASK_ID_PATTERN_SOURCE);

export function isTaskId(value: unknown): value is string {
  return typeof value === 'string' && TASK_ID_PATTERN.test(value);
}

/** A new, time-ordered task id: `t-` + lower-case ULID. */
export function newTaskId(): string {
  return `t-${ulid().toLowerCase()}`;
}

/**
 * The task id for an idempotency key: deterministic, so a resubmission with the same key hits
 * the `attribute_not_exists(task_id)` condition instead of creating a second task.
 */
export function taskIdForIdempotencyKey(key: string): string {
  return `k-${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 40)}`;
}

export const INSTANCE_ID_PATTERN = /^i-[0-9a-f]{8,17}$/;

export function newEventId(): string {
  return ulid();
}
