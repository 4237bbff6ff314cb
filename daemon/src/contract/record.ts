/**
 * Rows in DynamoDB: the task record (the truth about a task), its event rows, and the instance
 * rows fleetd keeps about itself. Every read from DynamoDB is validated with these schemas:
 * the tables may be written by other tools and versions.
 */
import * as z from 'zod';
import { ALL_STATUSES, EventType, type TaskStatus } from './states';
import { InstanceStatus } from './tags';
import { ArtifactsSummarySchema } from './logs';
import { SealSchema } from './seal';
import { parseWith, type Parsed } from './validation';

const epochMs = z.number().int().nonnegative();
const statusEnum = z.enum(ALL_STATUSES as [TaskStatus, ...TaskStatus[]]);

const durationMs = z.number().int().nonnegative();

/**
 * Per-phase dispatch timings of an attempt, written by fleetd with the attempt's first heartbeat
 * or its terminal write, whichever comes first (with `container_id`: the RUNNING write goes out
 * beside the container's creation, before either is known). docs/scaling.md "Dispatch timings".
 */
export const DispatchTimingsSchema = z.object({
  /** Message sent (or the record created) → this fleetd began the claim: the queue and the receive. */
  queue_wait_ms: durationMs,
  /** The claim: read, decide, conditional write. */
  claim_ms: durationMs,
  /** Image lookup, plus the pull when the image was not on the engine (`image_pulled`). */
  image_pull_ms: durationMs,
  image_pulled: z.boolean(),
  /** Task files and container creation. */
  container_create_ms: durationMs,
  /** The engine's start call (absent until it returned). */
  container_start_ms: durationMs.optional(),
});
export type DispatchTimings = z.output<typeof DispatchTimingsSchema>;

export const TaskRecordSchema = z.object({
  task_id: z.string(),
  status: statusEnum,
  /** The submitted spec, validated again by fleetd before it runs (kept raw here on purpose). */
  spec: z.record(z.string(), z.unknown()),
  created_at: epochMs,
  updated_at: epochMs,
  /** Fencing token: incremented by every claim; every later write is conditional on it. */
  attempt: z.number().int().nonnegative(),
  /** Claims left before the task is failed for good; a clean release and a takeover give one back. */
  attempts_left: z.number().int(),
  /** Times the task was taken over from an instance that stopped heartbeating (capped by LIMITS.maxTakeovers). Absent: none. */
  takeovers: z.number().int().nonnegative().optional(),
  /** The attempt cap the submitter chose (sealed with the spec). Absent on records older than sealing. */
  max_attempts: z.number().int().positive().optional(),
  /** The submitter's seal over task id, spec and attempt cap (contract/seal.ts); fleetd verifies it before running. */
  seal: SealSchema.optional(),
  idempotency_key: z.string().optional(),
  /** A Step Functions task token given at intake: the task-events function calls back with the outcome (never instances). */
  task_token: z.string().optional(),
  instance_id: z.string().optional(),
  lease_expires_at: epochMs.optional(),
  heartbeat_at: epochMs.optional(),
  container_id: z.string().optional(),
  claimed_at: epochMs.optional(),
  started_at: epochMs.optional(),
  finished_at: epochMs.optional(),
  exit_code: z.number().int().optional(),
  oom_killed: z.boolean().optional(),
  duration_ms: z.number().int().optional(),
  /** Parsed result.json (a JSON object), when the agent wrote a valid one. */
  result: z.record(z.string(), z.unknown()).optional(),
  /** Why result.json was not recorded (invalid JSON, too large, not an object). */
  result_error: z.string().optional(),
  log_tail: z.string().optional(),
  /** What fleetd uploaded from /fleet/output for the finishing attempt (contract/logs.ts, docs/logs.md). */
  artifacts: ArtifactsSummarySchema.optional(),
  /** Why the artifacts could not all be uploaded (the task's outcome is not changed by it). */
  artifacts_error: z.string().optional(),
  /** Human-readable reason for FAILED / CANCELLED / TIMED_OUT / INTERRUPTED. */
  reason: z.string().optional(),
  cancel_requested_at: epochMs.optional(),
  /** How the current attempt got from its message to a started container (DispatchTimingsSchema). */
  dispatch: DispatchTimingsSchema.optional(),
  /** When the SQS message was last sent (the reconciler re-sends stale QUEUED ones). */
  message_sent_at: epochMs.optional(),
  /** TTL attribute (epoch seconds), set on terminal records. */
  expires_at: z.number().int().optional(),
});
export type TaskRecord = z.output<typeof TaskRecordSchema>;

export function parseTaskRecord(item: unknown): Parsed<TaskRecord> {
  return parseWith(TaskRecordSchema, item, 'task record');
}

export const TaskEventSchema = z.object({
  task_id: z.string(),
  /** ULID: time-ordered, unique. */
  event_id: z.string(),
  type: z.enum(Object.values(EventType) as [EventType, ...EventType[]]),
  at: epochMs,
  status: statusEnum.optional(),
  attempt: z.number().int().optional(),
  instance_id: z.string().optional(),
  detail: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  expires_at: z.number().int().optional(),
});
export type TaskEvent = z.output<typeof TaskEventSchema>;

export function parseTaskEvent(item: unknown): Parsed<TaskEvent> {
  return parseWith(TaskEventSchema, item, 'task event');
}

export const InstanceRecordSchema = z.object({
  instance_id: z.string(),
  status: z.enum(Object.values(InstanceStatus) as [InstanceStatus, ...InstanceStatus[]]),
  updated_at: epochMs,
  /** Written by fleetd's instance heartbeat (every instanceHeartbeatSeconds, running or idle) and on every status change. */
  heartbeat_at: epochMs.optional(),
  booted_at: epochMs.optional(),
  slots: z.number().int().optional(),
  running: z.array(z.string()).optional(),
  asg_name: z.string().optional(),
  availability_zone: z.string().optional(),
  /** Set by a failed preflight: why the instance is unhealthy. */
  reason: z.string().optional(),
  boot_failed_at: epochMs.optional(),
  /** fleetd's package version, and the git commit it was built from ("unknown" when not recorded). */
  version: z.string().optional(),
  commit: z.string().optional(),
  /** The AMI the instance was launched from (IMDS `ami-id`). */
  ami_id: z.string().optional(),
  /** The launch template and its version (the instance's `aws:ec2launchtemplate:*` tags), when fleetd could read them. */
  launch_template_id: z.string().optional(),
  launch_template_version: z.string().optional(),
  expires_at: z.number().int().optional(),
});
export type InstanceRecord = z.output<typeof InstanceRecordSchema>;

export function parseInstanceRecord(item: unknown): Parsed<InstanceRecord> {
  return parseWith(InstanceRecordSchema, item, 'instance record');
}
