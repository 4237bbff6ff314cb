/**
 * The EventBridge event every task transition produces (docs/integration.md): published from the
 * tasks table's DynamoDB stream, never by instances, so every writer's transitions (fleetd, the
 * client, the reconciler, the intake) are covered and none can be forgotten. At least once:
 * `detail.event_id` is stable across redeliveries, for de-duplication.
 *
 *   source "agent-fleet", detail-type "Agent Fleet Task State Change"
 *
 * A transition is a change of `status` or of `attempt` (a takeover is CLAIMED → CLAIMED with a
 * new attempt); a record update that changes neither (a heartbeat, a send time) is none.
 */
import * as z from 'zod';
import { ALL_STATUSES, type TaskStatus } from './states';
import type { TaskRecord } from './record';

export const TASK_EVENT_SOURCE = 'agent-fleet';
export const TASK_STATE_CHANGE_DETAIL_TYPE = 'Agent Fleet Task State Change';

/** Reasons are cut to this many characters in an event (the record keeps them whole). */
export const EVENT_REASON_MAX_LENGTH = 2048;

const epochMs = z.number().int().nonnegative();
const statusEnum = z.enum(ALL_STATUSES as [TaskStatus, ...TaskStatus[]]);

export const TaskStateChangeSchema = z.strictObject({
  /** `${task_id}:${attempt}:${status}:${updated_at}`: the same transition always has the same id. */
  event_id: z.string(),
  /** The fleet's name (FLEET_NAME): rules of several fleets on one bus filter on it. */
  fleet: z.string(),
  task_id: z.string(),
  status: statusEnum,
  /** Null for a new task (its first event, QUEUED). */
  previous_status: statusEnum.nullable(),
  attempt: z.number().int().nonnegative(),
  instance_id: z.string().optional(),
  exit_code: z.number().int().optional(),
  oom_killed: z.boolean().optional(),
  /** Why it FAILED / TIMED_OUT / was CANCELLED or INTERRUPTED (cut to EVENT_REASON_MAX_LENGTH). */
  reason: z.string().optional(),
  created_at: epochMs,
  updated_at: epochMs,
  started_at: epochMs.optional(),
  finished_at: epochMs.optional(),
  duration_ms: z.number().int().optional(),
  /** The spec's labels, for routing rules (e.g. `"labels": {"team": ["search"]}`). */
  labels: z.record(z.string(), z.string()).optional(),
  idempotency_key: z.string().optional(),
  /** True when the task was submitted with a Step Functions task token (the token itself is never published). */
  has_task_token: z.boolean(),
});
export type TaskStateChange = z.output<typeof TaskStateChangeSchema>;

export function stateChangeEventId(record: Pick<TaskRecord, 'task_id' | 'attempt' | 'status' | 'updated_at'>): string {
  return `${record.task_id}:${record.attempt}:${record.status}:${record.updated_at}`;
}

/** Whether `record` (the new image) is a transition from `previous` (the old image; none for a new record). */
export function isTransition(record: Pick<TaskRecord, 'status' | 'attempt'>, previous: Pick<TaskRecord, 'status' | 'attempt'> | undefined): boolean {
  return previous === undefined || previous.status !== record.status || previous.attempt !== record.attempt;
}

/** The event detail of a transition, or undefined when the update is none (a heartbeat). */
export function taskStateChange(fleet: string, record: TaskRecord, previous: TaskRecord | undefined): TaskStateChange | undefined {
  if (!isTransition(record, previous)) return undefined;
  const labels = record.spec.labels;
  const stringLabels = labels !== null && typeof labels === 'object' && !Array.isArray(labels)
    ? Object.fromEntries(Object.entries(labels as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'))
    : undefined;
  return {
    event_id: stateChangeEventId(record),
    fleet,
    task_id: record.task_id,
    status: record.status,
    previous_status: previous?.status ?? null,
    attempt: record.attempt,
    ...(record.instance_id !== undefined ? { instance_id: record.instance_id } : {}),
    ...(record.exit_code !== undefined ? { exit_code: record.exit_code } : {}),
    ...(record.oom_killed !== undefined ? { oom_killed: record.oom_killed } : {}),
    ...(record.reason !== undefined ? { reason: record.reason.slice(0, EVENT_REASON_MAX_LENGTH) } : {}),
    created_at: record.created_at,
    updated_at: record.updated_at,
    ...(record.started_at !== undefined ? { started_at: record.started_at } : {}),
    ...(record.finished_at !== undefined ? { finished_at: record.finished_at } : {}),
    ...(record.duration_ms !== undefined ? { duration_ms: record.duration_ms } : {}),
    ...(stringLabels && Object.keys(stringLabels).length > 0 ? { labels: stringLabels } : {}),
    ...(record.idempotency_key !== undefined ? { idempotency_key: record.idempotency_key } : {}),
    has_task_token: record.task_token !== undefined,
  };
}
