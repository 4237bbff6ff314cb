/**
 * The one submit path: how a task record is built, sealed, created and enqueued. The client
 * library's `submitTask` (and so `fleet submit`) and the intake function (scripts/lib/intake.ts)
 * both call `submitSpec`, so a task looks the same whichever way it came in.
 *
 *   1. task id: given (the intake derives it), else from the idempotency key, else a new one;
 *   2. a payload over the inline limit goes to the payload bucket, the spec keeps a pointer;
 *   3. the spec is validated (the contract's parseTaskSpec) and sealed with the fleet key;
 *   4. the store creates the QUEUED record (attribute_not_exists: a key or id seen before is
 *      'exists', nothing new is written) and then sends the task's message (store.resend);
 *   5. an existing record still QUEUED with no send recorded is a submit that died between its
 *      two writes: its message is sent now.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SpecSealer } from '../../daemon/src/seal';
import type { TaskStore } from '../../daemon/src/store';
import {
  DEFAULT_TIMINGS,
  LIMITS,
  TaskStatus,
  newTaskId,
  parseTaskSpec,
  payloadKey,
  taskIdForIdempotencyKey,
  type TaskRecord,
} from '../../daemon/src/contract';
import { EnqueueFailedError, FleetClientError, InvalidSpecError, TaskNotFoundError, call } from './errors';

/** Runs one AWS call (errors.ts; here too for the importers of the submit path). */
export { call };

export interface SubmitContext {
  /** Built with the task queue (`queue`): the first message goes through store.resend. */
  readonly store: TaskStore;
  readonly s3: S3Client;
  readonly payloadBucket: string;
  /** Seals what the task runs (docs/security.md); absent when the fleet has no key. */
  readonly sealer?: SpecSealer;
}

export interface SubmitOptions {
  /** @default DEFAULT_TIMINGS.maxAttempts */
  readonly maxAttempts?: number;
  /** The task id, when the caller derives it (the intake). @default from spec.idempotency_key, else newTaskId() */
  readonly taskId?: string;
  /** A Step Functions task token to call back with the outcome (stored on the record, not sealed). */
  readonly taskToken?: string;
}

export interface SubmitResult {
  readonly taskId: string;
  /** False when the id already had a record (an idempotency key or a redelivery): nothing new was written. */
  readonly created: boolean;
  readonly record: TaskRecord;
}

/** The task id a spec gets when the caller names none. */
export function submitTaskId(spec: Record<string, unknown>): string {
  return typeof spec.idempotency_key === 'string' ? taskIdForIdempotencyKey(spec.idempotency_key) : newTaskId();
}

/**
 * The spec as stored: a payload over the inline limit is uploaded to the payload bucket under
 * the task's own prefix first (the rest of the spec is checked before anything is uploaded).
 * Throws InvalidSpecError (nothing was uploaded unless the rest was valid) or FleetRequestError.
 */
export async function prepareSpec(ctx: Pick<SubmitContext, 's3' | 'payloadBucket'>, taskId: string, input: Record<string, unknown>): Promise<Record<string, unknown>> {
  let specInput: Record<string, unknown> = { ...input };
  if (specInput.payload !== undefined) {
    const body = JSON.stringify(specInput.payload);
    const bytes = Buffer.byteLength(body);
    if (bytes > LIMITS.maxPayloadBytes) throw new InvalidSpecError([`spec.payload: ${bytes} bytes, over the ${LIMITS.maxPayloadBytes}-byte cap`]);
    if (bytes > LIMITS.inlinePayloadBytes) {
      // The placeholder keeps the payload/payload_ref clash check; the upload must not overwrite a ref the submitter gave.
      const preCheck = parseTaskSpec({ ...specInput, payload: {} });
      if (!preCheck.ok) throw new InvalidSpecError(preCheck.problems);
      const key = payloadKey(taskId);
      await call(`uploading the payload to s3://${ctx.payloadBucket}/${key}`, () =>
        ctx.s3.send(new PutObjectCommand({ Bucket: ctx.payloadBucket, Key: key, Body: body, ContentType: 'application/json' })));
      specInput = { ...specInput, payload: undefined, payload_ref: { bucket: ctx.payloadBucket, key } };
    }
  }
  const parsed = parseTaskSpec(specInput);
  if (!parsed.ok) throw new InvalidSpecError(parsed.problems);
  return parsed.value as unknown as Record<string, unknown>;
}

/** A QUEUED record, sealed when the fleet has a key: the seal covers task id, spec and attempt cap. */
export async function newTaskRecord(
  sealer: SpecSealer | undefined,
  taskId: string,
  spec: Record<string, unknown>,
  options: { maxAttempts: number; now: number; taskToken?: string },
): Promise<TaskRecord> {
  const idempotencyKey = typeof spec.idempotency_key === 'string' ? spec.idempotency_key : undefined;
  const seal = sealer ? await call(`sealing task ${taskId} with ${sealer.keyId}`, () => sealer.seal({ task_id: taskId, spec, max_attempts: options.maxAttempts })) : undefined;
  return {
    task_id: taskId,
    status: TaskStatus.QUEUED,
    spec,
    created_at: options.now,
    updated_at: options.now,
    attempt: 0,
    attempts_left: options.maxAttempts,
    max_attempts: options.maxAttempts,
    ...(idempotencyKey ? { idempotency_key: idempotencyKey } : {}),
    ...(options.taskToken ? { task_token: options.taskToken } : {}),
    ...(seal ? { seal } : {}),
  };
}

/** Steps 1–5 above. Throws InvalidSpecError, EnqueueFailedError (the record exists: submit again to repair) or FleetRequestError. */
export async function submitSpec(ctx: SubmitContext, input: Record<string, unknown>, options: SubmitOptions = {}): Promise<SubmitResult> {
  const taskId = options.taskId ?? submitTaskId(input);
  const spec = await prepareSpec(ctx, taskId, input);
  const record = await newTaskRecord(ctx.sealer, taskId, spec, { maxAttempts: options.maxAttempts ?? DEFAULT_TIMINGS.maxAttempts, now: Date.now(), taskToken: options.taskToken });
  const created = await call(`writing task ${taskId}`, () => ctx.store.create(record));
  if (created === 'exists') {
    const existing = await readTask(ctx.store, taskId);
    // The first submit may have failed between record and message: finish its job.
    if (existing.status === TaskStatus.QUEUED && existing.message_sent_at === undefined) {
      await call(`resending the message of ${taskId}`, () => ctx.store.resend(existing, { why: 'resubmitted', by: 'client', event: true }));
    }
    return { taskId, created: false, record: existing };
  }
  try {
    // 'raced' is fine: a concurrent resubmit sent it, or a daemon already acted.
    await ctx.store.resend(record, { why: 'submitted', by: 'client' });
  } catch (err) {
    throw new EnqueueFailedError(taskId, err);
  }
  return { taskId, created: true, record };
}

async function readTask(store: TaskStore, taskId: string): Promise<TaskRecord> {
  const { record, problems } = await call(`reading task ${taskId}`, () => store.get(taskId));
  if (problems) throw new FleetClientError(`task ${taskId} has an invalid record: ${problems.join('; ')}`);
  if (!record) throw new TaskNotFoundError(taskId);
  return record;
}
