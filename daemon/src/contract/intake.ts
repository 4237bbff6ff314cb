/**
 * The intake message: a self-contained task submission any AWS producer can send to the fleet's
 * intake queue with nothing but sqs:SendMessage (docs/integration.md). The intake function
 * validates it, writes the record through the store and enqueues the task's envelope; a bad
 * message goes to the intake dead-letter queue with its reason and changes nothing else.
 *
 *   {"v": 1, "spec": {...}, "idempotency_key"?: "...", "task_token"?: "..."}
 *
 * `spec` is the task spec as `fleet submit` and the client library take it (spec.ts). The task
 * id is derived, never chosen by the sender: from the idempotency key when there is one (the
 * same id `fleet submit --idempotency-key` gives), else from the SQS message id, so a
 * redelivered message never makes a second task.
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { taskIdForIdempotencyKey } from './ids';
import { MAX_PAYLOAD_DEPTH, TaskSpecSchema, cleanString, jsonDepth, parseTaskSpec } from './spec';
import { LIMITS } from './timings';
import { describeValue, oneLine, parseWith, type Parsed } from './validation';

export const INTAKE_MESSAGE_VERSION = 1 as const;

/** Step Functions task tokens are at most 2,048 characters (SendTaskSuccess `taskToken`). */
export const TASK_TOKEN_MAX_LENGTH = 2048;

/** The largest SQS message body (SQS's own limit); the intake reads nothing larger. */
export const INTAKE_MESSAGE_MAX_BYTES = 1024 * 1024;

const idempotencyKey = cleanString(128).min(1, { error: 'expected a non-empty key' });

/** The published shape (schemas/intake-message.json): the spec is the full task spec. */
export const IntakeMessageSchema = z.strictObject({
  v: z.literal(INTAKE_MESSAGE_VERSION, { error: `unsupported intake message version; this fleet understands v=${INTAKE_MESSAGE_VERSION}` }),
  spec: TaskSpecSchema,
  /** Decides the task id: the same key, by any route (intake, `fleet submit`), is the same task. */
  idempotency_key: idempotencyKey.optional(),
  /** A Step Functions task token (`.waitForTaskToken`): the fleet calls back with the task's outcome. */
  task_token: cleanString(TASK_TOKEN_MAX_LENGTH).min(1, { error: 'expected a non-empty task token' }).optional(),
});
export type IntakeMessageInput = z.input<typeof IntakeMessageSchema>;

/** The outer shape as parsed: the spec is checked on its own (payload offload, see parseIntakeMessage). */
const IntakeEnvelopeSchema = IntakeMessageSchema.extend({ spec: z.record(z.string(), z.unknown(), { error: 'expected the task spec, an object' }) });

/** A valid intake message, ready for the submit path (scripts/lib/submit.ts). */
export interface IntakeRequest {
  /** The spec as sent, with the effective idempotency key in `idempotency_key` (sealed with it). */
  readonly spec: Record<string, unknown>;
  readonly idempotencyKey?: string;
  readonly taskToken?: string;
}

/**
 * Parses a raw intake body. Never throws. The spec is validated as the submit path will store
 * it: an inline payload over the inline limit (up to the payload cap) is checked without the
 * payload, which the submit path uploads to the payload bucket (as `fleet submit` does).
 */
export function parseIntakeMessage(body: unknown): Parsed<IntakeRequest> {
  if (typeof body !== 'string') return { ok: false, problems: [`message body: expected a string, got ${describeValue(body)}`] };
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > INTAKE_MESSAGE_MAX_BYTES) return { ok: false, problems: [`message body: ${bytes} bytes, expected at most ${INTAKE_MESSAGE_MAX_BYTES}`] };
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    return { ok: false, problems: [`message body: not JSON (${oneLine((err as Error).message)})`] };
  }
  const outer = parseWith(IntakeEnvelopeSchema, json, 'intake message');
  if (!outer.ok) return outer;
  const m = outer.value;
  // The spec as sent, not zod's copy of it: a copy assigns an own "__proto__" key (dropping it),
  // which must be refused like any other unknown field rather than vanish.
  const sent = (json as { spec: Record<string, unknown> }).spec;
  const specKey = sent.idempotency_key;
  if (m.idempotency_key !== undefined && specKey !== undefined && specKey !== m.idempotency_key) {
    return { ok: false, problems: ['intake message.idempotency_key: differs from spec.idempotency_key; give the key once (either place), or the same in both'] };
  }
  const spec = m.idempotency_key !== undefined ? { ...sent, idempotency_key: m.idempotency_key } : sent;
  const tooLarge = oversizedPayload(spec);
  if (tooLarge !== undefined) return { ok: false, problems: [tooLarge] };
  const checked = parseTaskSpec(specForCheck(spec));
  if (!checked.ok) return { ok: false, problems: checked.problems.map((p) => `intake message.${p}`) };
  const key = typeof spec.idempotency_key === 'string' ? spec.idempotency_key : undefined;
  return { ok: true, value: { spec, ...(key !== undefined ? { idempotencyKey: key } : {}), ...(m.task_token !== undefined ? { taskToken: m.task_token } : {}) } };
}

/** The spec as it will be stored: a payload too large to stay inline is replaced by a placeholder. */
function specForCheck(spec: Record<string, unknown>): unknown {
  const payload = spec.payload;
  if (payload === undefined || payload === null || typeof payload !== 'object') return spec;
  if (jsonDepth(payload, MAX_PAYLOAD_DEPTH + 1) > MAX_PAYLOAD_DEPTH) return spec; // parseTaskSpec names the problem
  const bytes = Buffer.byteLength(JSON.stringify(payload), 'utf8');
  if (bytes <= LIMITS.inlinePayloadBytes) return spec;
  // Uploaded to S3 by the submit path; what is left to check is everything else (payload_ref clash included).
  return { ...spec, payload: {} };
}

function oversizedPayload(spec: Record<string, unknown>): string | undefined {
  const payload = spec.payload;
  if (payload === undefined || payload === null || typeof payload !== 'object') return undefined;
  if (jsonDepth(payload, MAX_PAYLOAD_DEPTH + 1) > MAX_PAYLOAD_DEPTH) return undefined;
  const bytes = Buffer.byteLength(JSON.stringify(payload), 'utf8');
  return bytes > LIMITS.maxPayloadBytes ? `intake message.spec.payload: ${bytes} bytes, over the ${LIMITS.maxPayloadBytes}-byte cap` : undefined;
}

/** The task id of an intake message without an idempotency key: its SQS message id decides it. */
export function taskIdForMessageId(messageId: string): string {
  return `m-${createHash('sha256').update(messageId, 'utf8').digest('hex').slice(0, 40)}`;
}

/** The task id an intake message makes: the key's (as `fleet submit` derives it), else the message id's. */
export function intakeTaskId(request: Pick<IntakeRequest, 'idempotencyKey'>, messageId: string): string {
  return request.idempotencyKey !== undefined ? taskIdForIdempotencyKey(request.idempotencyKey) : taskIdForMessageId(messageId);
}
