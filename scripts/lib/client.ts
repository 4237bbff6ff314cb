/**
 * The client library other services import (an orchestrator, a webhook handler) and the
 * `fleet` CLI is built on. Submit writes the record first (attribute_not_exists: an
 * idempotency key makes resubmission safe), then the message; a failure between the two leaves
 * a QUEUED record with no message_sent_at, which `resendMessage` (and the reconciler) repairs.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../../daemon/src/aws';
import { isConditionalCheckFailed } from '../../daemon/src/aws';
import {
  DEFAULT_TIMINGS,
  EVENTS_TABLE,
  EventType,
  LIMITS,
  TaskStatus,
  encodeEnvelope,
  isTerminal,
  newEventId,
  newTaskId,
  parseTaskEvent,
  parseTaskRecord,
  parseTaskSpec,
  payloadKey,
  taskIdForIdempotencyKey,
  type TaskEvent,
  type TaskRecord,
  type TaskSpecInput,
} from '../../daemon/src/contract';

export interface FleetNames {
  readonly queueUrl: string;
  readonly dlqUrl: string;
  readonly tasksTable: string;
  readonly eventsTable: string;
  readonly instancesTable: string;
  readonly payloadBucket: string;
  readonly cancelDocument?: string;
}

export class FleetClientError extends Error {
  override readonly name: string = 'FleetClientError';
}
export class InvalidSpecError extends FleetClientError {
  override readonly name = 'InvalidSpecError';
  constructor(readonly problems: string[]) {
    super(`invalid task spec: ${problems.join('; ')}`);
  }
}
export class TaskNotFoundError extends FleetClientError {
  override readonly name = 'TaskNotFoundError';
  constructor(readonly taskId: string) {
    super(`no task ${taskId}`);
  }
}
/** The record was written but the message was not: repair with resendMessage(taskId). */
export class EnqueueFailedError extends FleetClientError {
  override readonly name = 'EnqueueFailedError';
  constructor(readonly taskId: string, cause: unknown) {
    super(`task ${taskId} is recorded as QUEUED but its message could not be sent (${(cause as Error).message}); retry with resendMessage("${taskId}") or let the reconciler re-send it`, { cause });
  }
}

export interface SubmitResult {
  readonly taskId: string;
  /** False when an idempotency key matched an existing task (nothing new was written). */
  readonly created: boolean;
  readonly record: TaskRecord;
}

export class FleetClient {
  constructor(
    readonly clients: AwsClients,
    readonly names: FleetNames,
  ) {}

  async submitTask(input: TaskSpecInput & Record<string, unknown>, options: { maxAttempts?: number } = {}): Promise<SubmitResult> {
    let specInput: Record<string, unknown> = { ...input };
    // Large payloads travel through S3; the record keeps a pointer.
    const taskId = typeof specInput.idempotency_key === 'string' ? taskIdForIdempotencyKey(specInput.idempotency_key) : newTaskId();
    if (specInput.payload !== undefined) {
      const body = JSON.stringify(specInput.payload);
      const bytes = Buffer.byteLength(body);
      if (bytes > LIMITS.maxPayloadBytes) throw new InvalidSpecError([`spec.payload: ${bytes} bytes, over the ${LIMITS.maxPayloadBytes}-byte cap`]);
      if (bytes > LIMITS.inlinePayloadBytes) {
        const preCheck = parseTaskSpec({ ...specInput, payload: undefined });
        if (!preCheck.ok) throw new InvalidSpecError(preCheck.problems);
        const key = payloadKey(taskId);
        await this.clients.s3.send(new PutObjectCommand({ Bucket: this.names.payloadBucket, Key: key, Body: body, ContentType: 'application/json' }));
        specInput = { ...specInput, payload: undefined, payload_ref: { bucket: this.names.payloadBucket, key } };
      }
    }
    const parsed = parseTaskSpec(specInput);
    if (!parsed.ok) throw new InvalidSpecError(parsed.problems);
    const now = Date.now();
    const record: TaskRecord = {
      task_id: taskId,
      status: TaskStatus.QUEUED,
      spec: parsed.value as unknown as Record<string, unknown>,
      created_at: now,
      updated_at: now,
      attempt: 0,
      attempts_left: options.maxAttempts ?? DEFAULT_TIMINGS.maxAttempts,
      ...(parsed.value.idempotency_key ? { idempotency_key: parsed.value.idempotency_key } : {}),
    };
    try {
      await this.clients.ddb.send(new PutCommand({ TableName: this.names.tasksTable, Item: record, ConditionExpression: 'attribute_not_exists(task_id)' }));
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw new FleetClientError(`writing task ${taskId} failed: ${(err as Error).message}`, { cause: err });
      const existing = await this.getTask(taskId);
      // The first submit may have failed between record and message: finish its job.
      if (existing.status === TaskStatus.QUEUED && existing.message_sent_at === undefined) await this.resendMessage(taskId);
      return { taskId, created: false, record: existing };
    }
    await this.appendEvent(taskId, EventType.SUBMITTED, now, { status: TaskStatus.QUEUED });
    try {
      await this.resendMessage(taskId);
    } catch (err) {
      throw new EnqueueFailedError(taskId, err);
    }
    return { taskId, created: true, record };
  }

  /**
   * Writes a QUEUED record and no message: the state a crash between submit's two writes
   * leaves behind. For tests of the repair paths and for the fault-injection suite.
   */
  async submitTaskRecordOnly(input: TaskSpecInput & Record<string, unknown>): Promise<string> {
    const parsed = parseTaskSpec(input);
    if (!parsed.ok) throw new InvalidSpecError(parsed.problems);
    const now = Date.now();
    const taskId = newTaskId();
    const record: TaskRecord = { task_id: taskId, status: TaskStatus.QUEUED, spec: parsed.value as unknown as Record<string, unknown>, created_at: now, updated_at: now, attempt: 0, attempts_left: DEFAULT_TIMINGS.maxAttempts };
    await this.clients.ddb.send(new PutCommand({ TableName: this.names.tasksTable, Item: record, ConditionExpression: 'attribute_not_exists(task_id)' }));
    return taskId;
  }

  /** Sends the task's envelope and records when (the reconciler's repair for a lost enqueue). */
  async resendMessage(taskId: string): Promise<void> {
    const now = Date.now();
    await this.clients.sqs.send(new SendMessageCommand({ QueueUrl: this.names.queueUrl, MessageBody: encodeEnvelope(taskId, now) }));
    await this.clients.ddb.send(new UpdateCommand({
      TableName: this.names.tasksTable,
      Key: { task_id: taskId },
      UpdateExpression: 'SET message_sent_at = :now',
      ConditionExpression: 'attribute_exists(task_id)',
      ExpressionAttributeValues: { ':now': now },
    }));
  }

  async appendEvent(taskId: string, type: EventType, at: number, fields: Partial<TaskEvent> = {}): Promise<void> {
    await this.clients.ddb.send(new PutCommand({ TableName: this.names.eventsTable, Item: { task_id: taskId, event_id: newEventId(), type, at, ...fields } }));
  }

  async getTask(taskId: string): Promise<TaskRecord> {
    const res = await this.clients.ddb.send(new GetCommand({ TableName: this.names.tasksTable, Key: { task_id: taskId }, ConsistentRead: true }));
    if (!res.Item) throw new TaskNotFoundError(taskId);
    const parsed = parseTaskRecord(res.Item);
    if (!parsed.ok) throw new FleetClientError(`task ${taskId} has an invalid record: ${parsed.problems.join('; ')}`);
    return parsed.value;
  }

  async listEvents(taskId: string): Promise<TaskEvent[]> {
    const events: TaskEvent[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.clients.ddb.send(new QueryCommand({
        TableName: this.names.eventsTable,
        KeyConditionExpression: '#k = :id',
        ExpressionAttributeNames: { '#k': EVENTS_TABLE.partitionKey },
        ExpressionAttributeValues: { ':id': taskId },
        ExclusiveStartKey: start,
      }));
      for (const item of res.Items ?? []) {
        const e = parseTaskEvent(item);
        if (e.ok) events.push(e.value);
      }
      start = res.LastEvaluatedKey;
    } while (start);
    return events;
  }

  /** Polls the record until it is terminal (or the timeout passes); returns the last record. */
  async waitForTerminal(taskId: string, options: { timeoutMs?: number; intervalMs?: number; onUpdate?: (r: TaskRecord) => void } = {}): Promise<TaskRecord> {
    const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
    for (;;) {
      const r = await this.getTask(taskId);
      options.onUpdate?.(r);
      if (isTerminal(r.status)) return r;
      if (Date.now() > deadline) throw new FleetClientError(`task ${taskId} still ${r.status} after ${options.timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, options.intervalMs ?? 500));
    }
  }
}
