/**
 * The SQS message body: small and versioned. It carries only the task id; the record in
 * DynamoDB is the truth, so a forged or replayed message can do no more than point at a task.
 */
import * as z from 'zod';
import { TASK_ID_PATTERN } from './ids';
import { LIMITS } from './timings';
import { describeValue, oneLine, parseWith, type Parsed } from './validation';

export const ENVELOPE_VERSION = 1 as const;

export const EnvelopeSchema = z.strictObject({
  v: z.literal(ENVELOPE_VERSION, { error: `unsupported envelope version; this fleetd understands v=${ENVELOPE_VERSION}` }),
  task_id: z.string().regex(TASK_ID_PATTERN, { error: `expected a task id matching ${TASK_ID_PATTERN}` }),
  /** Epoch ms at which the client sent the message; for latency metrics only. */
  sent_at: z.int().nonnegative().optional(),
});
export type Envelope = z.output<typeof EnvelopeSchema>;

export function encodeEnvelope(taskId: string, sentAt = Date.now()): string {
  const env: Envelope = { v: ENVELOPE_VERSION, task_id: taskId, sent_at: sentAt };
  return JSON.stringify(env);
}

/**
 * Parses a raw SQS body. Never throws. On failure `taskId` is set when the body still named a
 * well-formed task id, so the caller can fail that task with the reason.
 */
export function decodeEnvelope(body: unknown): Parsed<Envelope> & { taskId?: string } {
  if (typeof body !== 'string') return { ok: false, problems: [`message body: expected a string, got ${describeValue(body)}`] };
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > LIMITS.envelopeBytes) {
    return { ok: false, problems: [`message body: ${bytes} bytes, expected at most ${LIMITS.envelopeBytes}`] };
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    return { ok: false, problems: [`message body: not JSON (${oneLine((err as Error).message)})`] };
  }
  const parsed = parseWith(EnvelopeSchema, json, 'envelope');
  if (parsed.ok) return parsed;
  const candidate = (json as { task_id?: unknown } | null)?.task_id;
  return typeof candidate === 'string' && TASK_ID_PATTERN.test(candidate) ? { ...parsed, taskId: candidate } : parsed;
}
