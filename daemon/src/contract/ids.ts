/**
 * Task ids. The same pattern is the SSM cancel document's `allowedPattern`, the CLI's argument
 * check and `fleetd cancel`'s check: an id can never carry shell metacharacters.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ulid as ulidWith } from 'ulid';

/**
 * ulid's own default looks up its random source again and asks it for one byte per character,
 * 16 calls an id (an event row per transition: 0.7 % of fleetd's busy CPU, issue #18). The same
 * crypto bytes, drawn from a pool: one `randomBytes` call per 16 ids.
 */
let pool = Buffer.alloc(0);
let next = 0;
function pooledRandom(): number {
  if (next >= pool.length) {
    pool = randomBytes(256);
    next = 0;
  }
  return pool[next++] / 256;
}

function ulid(): string {
  return ulidWith(Date.now(), pooledRandom);
}

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
