/**
 * The intake: turns self-contained task messages from the intake queue (contract/intake.ts)
 * into tasks, through the one submit path (submit.ts). The same code runs in the intake Lambda
 * (infra/handlers/intake.ts, an SQS event source with ReportBatchItemFailures) and on the local
 * stack (scripts/dev/local/intake-runner.ts, which plays the event source).
 *
 * Per message:
 *   valid        → the record is created through the store (idempotent: the task id comes from
 *                  the idempotency key, else the SQS message id, so a redelivery or a resend
 *                  with the same key finds the task instead of making a second) and enqueued;
 *   invalid      → the message goes to the intake dead-letter queue with the reason as the
 *                  DLQ_REASON_ATTRIBUTE message attribute; nothing else is written;
 *   AWS trouble  → reported as a batch item failure: SQS redelivers it (after its visibility
 *                  timeout), and after the queue's maxReceiveCount moves it to the dead-letter
 *                  queue without a reason attribute.
 */
import type { KMSClient } from '@aws-sdk/client-kms';
import type { S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RETRY_POLICIES, isTransient, retry } from '../../daemon/src/retry';
import { SpecSealer } from '../../daemon/src/seal';
import { TaskStore } from '../../daemon/src/store';
import { DLQ_REASON_ATTRIBUTE, FLEET_ENV, intakeTaskId, oneLine, parseIntakeMessage } from '../../daemon/src/contract';
import { InvalidSpecError } from './errors';
import { submitSpec, type SubmitContext } from './submit';

export interface IntakeNames {
  readonly queueUrl: string;
  readonly intakeDlqUrl: string;
  readonly tasksTable: string;
  readonly eventsTable: string;
  readonly payloadBucket: string;
  /** The fleet's KMS HMAC key: intake records are sealed like `fleet submit`'s. */
  readonly sealKeyId?: string;
}

/** The intake's names from the FLEET_* variables (the CDK construct and the local stack set them). */
export function intakeNamesFromEnv(env: NodeJS.ProcessEnv): IntakeNames {
  const missing: string[] = [];
  const read = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) missing.push(name);
    return value ?? '';
  };
  const names: IntakeNames = {
    queueUrl: read(FLEET_ENV.queueUrl),
    intakeDlqUrl: read(FLEET_ENV.intakeDlqUrl),
    tasksTable: read(FLEET_ENV.tasksTable),
    eventsTable: read(FLEET_ENV.eventsTable),
    payloadBucket: read(FLEET_ENV.payloadBucket),
    ...(env[FLEET_ENV.sealKeyId]?.trim() ? { sealKeyId: env[FLEET_ENV.sealKeyId]!.trim() } : {}),
  };
  if (missing.length > 0) throw new Error(`intake configuration: ${missing.join(', ')} not set; the FleetIntake construct (or the local stack) sets them`);
  return names;
}

export interface IntakeClients {
  readonly sqs: SQSClient;
  readonly ddb: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly kms: KMSClient;
}

/** One message as an SQS event source hands it over (the Lambda event's record, or the runner's). */
export interface IntakeSqsRecord {
  readonly messageId: string;
  readonly body: string;
  readonly attributes?: { readonly ApproximateReceiveCount?: string };
}

export type IntakeOutcome =
  | { readonly kind: 'submitted'; readonly messageId: string; readonly taskId: string; readonly created: boolean }
  | { readonly kind: 'rejected'; readonly messageId: string; readonly reason: string }
  /** Not handled: the event source must deliver it again. */
  | { readonly kind: 'failed'; readonly messageId: string; readonly error: string };

export interface IntakeBatchResult {
  /** The SQS event source's partial-batch answer: these messages stay on the queue. */
  readonly batchItemFailures: { itemIdentifier: string }[];
  readonly outcomes: IntakeOutcome[];
}

/** Reasons are cut to this length in the message attribute (as fleetd's rejections are). */
const REASON_MAX = 1024;

export type IntakeLog = (level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown>) => void;

const jsonLog: IntakeLog = (level, event, fields) => console.log(JSON.stringify({ level, event, ...fields }));

export class IntakeProcessor {
  private readonly submit: SubmitContext;

  constructor(
    private readonly clients: IntakeClients,
    private readonly names: IntakeNames,
    private readonly log: IntakeLog = jsonLog,
  ) {
    this.submit = {
      store: new TaskStore({ ddb: clients.ddb, tasksTable: names.tasksTable, eventsTable: names.eventsTable, queue: { sqs: clients.sqs, queueUrl: names.queueUrl } }),
      s3: clients.s3,
      payloadBucket: names.payloadBucket,
      sealer: names.sealKeyId ? new SpecSealer(clients.kms, names.sealKeyId) : undefined,
    };
  }

  /** A batch, one message at a time; every message is answered (submitted, rejected or failed). */
  async processBatch(records: readonly IntakeSqsRecord[]): Promise<IntakeBatchResult> {
    const outcomes: IntakeOutcome[] = [];
    for (const record of records) outcomes.push(await this.processMessage(record));
    return { outcomes, batchItemFailures: outcomes.filter((o) => o.kind === 'failed').map((o) => ({ itemIdentifier: o.messageId })) };
  }

  async processMessage(record: IntakeSqsRecord): Promise<IntakeOutcome> {
    const messageId = record.messageId;
    const parsed = parseIntakeMessage(record.body);
    if (!parsed.ok) return this.reject(record, parsed.problems.join('; '));
    const request = parsed.value;
    const taskId = intakeTaskId(request, messageId);
    try {
      // submitSpec is idempotent on the task id, so a retry of the whole step is safe.
      const result = await retry(`submitting intake message ${messageId}`, () => submitSpec(this.submit, request.spec, { taskId, taskToken: request.taskToken }), {
        policy: RETRY_POLICIES.eventSource,
        retryable: (err) => !(err instanceof InvalidSpecError) && isTransient(err),
      });
      this.log('info', 'intake.submitted', { message_id: messageId, task_id: taskId, created: result.created, receive_count: record.attributes?.ApproximateReceiveCount });
      return { kind: 'submitted', messageId, taskId, created: result.created };
    } catch (err) {
      // The contract's check and the submit path agree; a spec refused here anyway (a payload
      // that only fails once uploaded) is still the sender's problem, not a reason to retry.
      if (err instanceof InvalidSpecError) return this.reject(record, err.problems.map((p) => `intake message.${p}`).join('; '));
      const error = oneLine(`${(err as Error).name}: ${(err as Error).message}`, 500);
      this.log('error', 'intake.failed', { message_id: messageId, task_id: taskId, error });
      return { kind: 'failed', messageId, error };
    }
  }

  /** To the intake DLQ with the reason; nothing else is written. A failed send leaves the message for another try. */
  private async reject(record: IntakeSqsRecord, reason: string): Promise<IntakeOutcome> {
    const shortReason = oneLine(reason, REASON_MAX);
    try {
      await retry(`dead-lettering intake message ${record.messageId}`, () => this.clients.sqs.send(new SendMessageCommand({
        QueueUrl: this.names.intakeDlqUrl,
        MessageBody: record.body.length > 0 ? record.body : '(empty body)',
        MessageAttributes: { [DLQ_REASON_ATTRIBUTE]: { DataType: 'String', StringValue: shortReason } },
      })), { policy: RETRY_POLICIES.eventSource });
    } catch (err) {
      const error = oneLine(`dead-lettering failed: ${(err as Error).name}: ${(err as Error).message}`, 500);
      this.log('error', 'intake.failed', { message_id: record.messageId, error });
      return { kind: 'failed', messageId: record.messageId, error };
    }
    this.log('warn', 'intake.rejected', { message_id: record.messageId, reason: shortReason });
    return { kind: 'rejected', messageId: record.messageId, reason: shortReason };
  }
}
