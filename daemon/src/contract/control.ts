/**
 * fleetd's control protocol: one JSON object per line over the root-only control socket
 * (daemon/src/control.ts). `fleetd cancel` (run by the SSM cancel document) and `fleetd status`
 * are its clients. The server parses every request with ControlRequestSchema; the client parses
 * every answer with the response schema of the command it sent, so a malformed answer is a
 * clear error instead of `undefined` fields. What the status fields mean: docs/lifecycle.md
 * ("`fleetd status`").
 */
import * as z from 'zod';
import { TASK_ID_PATTERN } from './ids';
import { InstanceStatus } from './tags';
import { describeValue, oneLine, parseWith, type Parsed } from './validation';

/** A request line longer than this is refused without being parsed. */
export const CONTROL_MAX_REQUEST_BYTES = 4096;

export const CancelRequestSchema = z.strictObject({
  cmd: z.literal('cancel'),
  task_id: z.string().regex(TASK_ID_PATTERN, { error: `expected a task id matching ${TASK_ID_PATTERN}` }),
});
export const StatusRequestSchema = z.strictObject({ cmd: z.literal('status') });
export const ControlRequestSchema = z.discriminatedUnion('cmd', [CancelRequestSchema, StatusRequestSchema], {
  error: 'expected "cancel" or "status"',
});
export type ControlRequest = z.output<typeof ControlRequestSchema>;
export type ControlCommand = ControlRequest['cmd'];

/** Any command may be refused: a bad request, or a failure while serving it. */
export const ControlErrorSchema = z.strictObject({ ok: z.literal(false), error: z.string() });
export type ControlError = z.output<typeof ControlErrorSchema>;

export const CancelResponseSchema = z.strictObject({
  ok: z.literal(true),
  /** False when no task with this id runs on this instance (nothing was done). */
  found: z.boolean(),
  message: z.string(),
});
export type CancelResponse = z.output<typeof CancelResponseSchema>;

/** The IMDS interruption fleetd saw first (daemon/src/lifecycle.ts `Interruption`). */
export const InterruptionSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('spot'), action: z.string(), time: z.string() }),
  z.strictObject({ kind: z.literal('terminating'), state: z.string() }),
]);

const isoTime = z.string().min(1);

export const StatusResponseSchema = z.strictObject({
  ok: z.literal(true),
  instance_id: z.string().nullable(),
  /** What the instance advertises (tag and instance row). */
  state: z.enum(Object.values(InstanceStatus) as [InstanceStatus, ...InstanceStatus[]]),
  /** fleetd's own state (daemon/src/fleetd-state.ts): booting, warm, serving, paused, retiring, draining, stopped. */
  fleetd_state: z.enum(['booting', 'warm', 'serving', 'paused', 'retiring', 'draining', 'stopped']),
  /** True while the slot loops run (serving, or parked: paused for an idle check, retiring in a rollout). */
  receiving: z.boolean(),
  /** Why no message is being received now; null when a slot is polling. */
  not_claiming: z.string().nullable(),
  draining: z.boolean(),
  drain: z.strictObject({ reason: z.string(), since: isoTime, releasing: z.string().nullable() }).nullable(),
  interruption: InterruptionSchema.nullable(),
  slots: z.int().positive(),
  free_slots: z.int().nonnegative(),
  idle: z.strictObject({ idle_for_s: z.number(), terminate_after_s: z.number().nullable(), state: z.string() }),
  disk_problem: z.string().nullable(),
  engine_problem: z.string().nullable(),
  credentials: z.strictObject({ endpoint: z.string(), active_tasks: z.array(z.string()) }).nullable(),
  /** The last prune's report (daemon/src/prune.ts `PruneReport`), `at` as an ISO time. */
  last_prune: z
    .strictObject({ containers: z.array(z.string()), images: z.array(z.string()), files: z.array(z.string()), reclaimedBytes: z.number(), at: isoTime })
    .nullable(),
  imds_watch: z.string().nullable(),
  tasks: z.array(
    z.strictObject({
      task_id: z.string(),
      attempt: z.int().nonnegative(),
      phase: z.enum(['preparing', 'running', 'stopping', 'finishing']),
      stopping: z.enum(['cancel', 'timeout', 'release', 'lease-lost']).nullable(),
      heartbeat_age_s: z.number(),
    }),
  ),
});
export type StatusResponse = z.output<typeof StatusResponseSchema>;
/** The status a daemon reports (its `status()`): the response without `ok`. */
export type FleetdStatus = Omit<StatusResponse, 'ok'>;

export interface ControlResponses {
  cancel: CancelResponse | ControlError;
  status: StatusResponse | ControlError;
}
export type ControlResponse = ControlResponses[ControlCommand];

const SUCCESS_SCHEMAS = { cancel: CancelResponseSchema, status: StatusResponseSchema } as const;

function parseJsonLine(line: string, what: string): Parsed<unknown> {
  try {
    return { ok: true, value: JSON.parse(line) as unknown };
  } catch {
    return { ok: false, problems: [`${what}: not JSON (${JSON.stringify(oneLine(line, 80))})`] };
  }
}

/** Server side: one request line. Never throws. */
export function parseControlRequest(line: string): Parsed<ControlRequest> {
  const json = parseJsonLine(line, 'request');
  if (!json.ok) return json;
  const cmd = (json.value as { cmd?: unknown } | null)?.cmd;
  if (typeof json.value === 'object' && json.value !== null && !Array.isArray(json.value) && cmd !== 'cancel' && cmd !== 'status') {
    // zod reports the discriminator against the whole object; name the command instead.
    return { ok: false, problems: [`request.cmd: expected "cancel" or "status", got ${describeValue(cmd)}`] };
  }
  return parseWith(ControlRequestSchema, json.value, 'request');
}

/** Client side: the answer to a `cmd` request (raw text, one JSON line). Never throws. */
export function parseControlResponse<C extends ControlCommand>(cmd: C, text: string): Parsed<ControlResponses[C]> {
  const json = parseJsonLine(text.trim(), 'answer');
  if (!json.ok) return json;
  // An error answer is judged by its own schema, so a refused request reports fleetd's error.
  const asError = ControlErrorSchema.safeParse(json.value);
  if (asError.success) return { ok: true, value: asError.data };
  return parseWith(SUCCESS_SCHEMAS[cmd] as unknown as z.ZodType<ControlResponses[C]>, json.value, `${cmd} answer`);
}
