/**
 * The tasks table's DynamoDB stream, turned into what the rest of AWS consumes
 * (docs/integration.md). The same code runs in the task-events Lambda
 * (infra/handlers/task-events.ts: a DynamoDB event source, NEW_AND_OLD_IMAGES, batches by
 * partition, ParallelizationFactor 1) and on the local stack (scripts/dev/local/intake-runner.ts,
 * which reads the stream with GetShardIterator / GetRecords).
 *
 * Per stream record, in stream order (so per task in transition order):
 * 1. a transition (status or attempt changed; contract/task-state-change.ts) becomes one
 *    EventBridge event, source "agent-fleet", detail-type "Agent Fleet Task State Change", with a
 *    stable `detail.event_id` (at least once: a retried batch publishes again);
 * 2. a record with a Step Functions task token gets its callback here, never from an instance:
 *    - COMPLETED → SendTaskSuccess, output `{task_id, status, attempt, exit_code, duration_ms, result}`;
 *    - FAILED / TIMED_OUT / CANCELLED → SendTaskFailure, error = the status, cause = the reason
 *      (cut to Step Functions' limits: error 256, cause 32,768 characters);
 *    - RUNNING (and CANCEL_REQUESTED, still running) → SendTaskHeartbeat on the transition into
 *      RUNNING, and on a lease heartbeat only when it crosses a heartbeat window (default 5 min;
 *      FLEET_SFN_HEARTBEAT_SECONDS): at most one per window, with no state kept anywhere;
 *    - QUEUED, CLAIMED, INTERRUPTED (released, to be retried): nothing.
 *    A token Step Functions no longer knows (TaskTimedOut, TaskDoesNotExist, InvalidToken: the
 *    execution ended, or a redelivered record already closed it) is logged and skipped.
 * A step that still fails after the retry policy's tries stops the batch there: its sequence
 * number is the batch item failure, so the event source retries from it and order holds.
 */
import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SendTaskFailureCommand, SendTaskHeartbeatCommand, SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { awsErrorName } from '../../daemon/src/aws';
import { RETRY_POLICIES, retry } from '../../daemon/src/retry';
import {
  FLEET_ENV,
  TASK_EVENT_SOURCE,
  TASK_STATE_CHANGE_DETAIL_TYPE,
  TaskStatus,
  oneLine,
  parseTaskRecord,
  taskStateChange,
  type TaskRecord,
  type TaskStateChange,
} from '../../daemon/src/contract';

/** Step Functions limits (SendTaskSuccess / SendTaskFailure). */
export const SFN_LIMITS = { errorChars: 256, causeChars: 32_768, outputBytes: 256 * 1024 } as const;

/** Least time between two heartbeats of one running task, by default. */
export const DEFAULT_SFN_HEARTBEAT_SECONDS = 300;

/** Step Functions answers these for a token that can take no callback any more: nothing to retry. */
const CLOSED_TOKEN_ERRORS = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

export interface TaskEventsConfig {
  readonly fleetName: string;
  /** Name or ARN. @default the account's default bus */
  readonly eventBusName?: string;
  /** @default DEFAULT_SFN_HEARTBEAT_SECONDS */
  readonly heartbeatSeconds?: number;
}

export function taskEventsConfigFromEnv(env: NodeJS.ProcessEnv): TaskEventsConfig {
  const fleetName = env[FLEET_ENV.fleetName]?.trim();
  if (!fleetName) throw new Error(`task-events configuration: ${FLEET_ENV.fleetName} not set; the FleetIntake construct (or the local stack) sets it`);
  const bus = env[FLEET_ENV.eventBusName]?.trim();
  const hb = env[FLEET_ENV.sfnHeartbeatSeconds]?.trim();
  const heartbeatSeconds = hb ? Number(hb) : undefined;
  if (heartbeatSeconds !== undefined && !(Number.isInteger(heartbeatSeconds) && heartbeatSeconds >= 1)) {
    throw new Error(`task-events configuration: ${FLEET_ENV.sfnHeartbeatSeconds}=${JSON.stringify(hb)}, expected a whole number of seconds >= 1`);
  }
  return { fleetName, ...(bus ? { eventBusName: bus } : {}), ...(heartbeatSeconds !== undefined ? { heartbeatSeconds } : {}) };
}

/** A DynamoDB attribute value as a stream delivers it (the Lambda event's JSON, or the SDK's GetRecords). */
export type StreamAttributeValue = {
  S?: string;
  N?: string;
  B?: string | Uint8Array;
  BOOL?: boolean;
  NULL?: boolean;
  M?: Record<string, StreamAttributeValue>;
  L?: StreamAttributeValue[];
  SS?: string[];
  NS?: string[];
  BS?: (string | Uint8Array)[];
};

export interface StreamRecordLike {
  readonly eventName?: string;
  readonly dynamodb?: {
    readonly SequenceNumber?: string;
    readonly NewImage?: Record<string, StreamAttributeValue>;
    readonly OldImage?: Record<string, StreamAttributeValue>;
  };
}

/** A stream image as a plain object (numbers as numbers: the records' numbers are epoch ms and counts). */
export function unmarshallImage(image: Record<string, StreamAttributeValue>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(image).map(([k, v]) => [k, unmarshallValue(v)]));
}

function unmarshallValue(v: StreamAttributeValue): unknown {
  if (v.S !== undefined) return v.S;
  if (v.N !== undefined) return Number(v.N);
  if (v.BOOL !== undefined) return v.BOOL;
  if (v.NULL !== undefined) return null;
  if (v.M !== undefined) return unmarshallImage(v.M);
  if (v.L !== undefined) return v.L.map(unmarshallValue);
  if (v.SS !== undefined) return [...v.SS];
  if (v.NS !== undefined) return v.NS.map(Number);
  if (v.B !== undefined) return typeof v.B === 'string' ? Buffer.from(v.B, 'base64') : Buffer.from(v.B);
  if (v.BS !== undefined) return v.BS.map((b) => (typeof b === 'string' ? Buffer.from(b, 'base64') : Buffer.from(b)));
  return undefined;
}

export type Callback =
  | { readonly kind: 'success'; readonly output: string }
  | { readonly kind: 'failure'; readonly error: string; readonly cause: string }
  | { readonly kind: 'heartbeat' };

/** What Step Functions gets on COMPLETED (the output of the `.waitForTaskToken` state). */
export function successOutput(record: TaskRecord): string {
  const base = {
    task_id: record.task_id,
    status: record.status,
    attempt: record.attempt,
    ...(record.exit_code !== undefined ? { exit_code: record.exit_code } : {}),
    ...(record.duration_ms !== undefined ? { duration_ms: record.duration_ms } : {}),
  };
  const full = JSON.stringify({ ...base, ...(record.result !== undefined ? { result: record.result } : {}), ...(record.result_error !== undefined ? { result_error: record.result_error } : {}) });
  if (Buffer.byteLength(full, 'utf8') <= SFN_LIMITS.outputBytes) return full;
  return JSON.stringify({ ...base, result_error: `result.json too large for a Step Functions output (${SFN_LIMITS.outputBytes} bytes); read it from the task record` });
}

/**
 * The callback a record change calls for, if any. `heartbeatMs`: the heartbeat window; a lease
 * heartbeat sends one only when it moves heartbeat_at into a new window.
 */
export function callbackFor(record: TaskRecord, previous: TaskRecord | undefined, heartbeatMs: number): Callback | undefined {
  if (record.task_token === undefined) return undefined;
  const changed = previous === undefined || previous.status !== record.status;
  switch (record.status) {
    case TaskStatus.COMPLETED:
      return changed ? { kind: 'success', output: successOutput(record) } : undefined;
    case TaskStatus.FAILED:
    case TaskStatus.TIMED_OUT:
    case TaskStatus.CANCELLED:
      return changed
        ? { kind: 'failure', error: record.status.slice(0, SFN_LIMITS.errorChars), cause: (record.reason ?? `the task ended ${record.status}`).slice(0, SFN_LIMITS.causeChars) }
        : undefined;
    case TaskStatus.RUNNING:
    case TaskStatus.CANCEL_REQUESTED: {
      if (changed && record.status === TaskStatus.RUNNING) return { kind: 'heartbeat' };
      const window = (t: number | undefined) => (t === undefined ? -1 : Math.floor(t / heartbeatMs));
      return previous !== undefined && window(record.heartbeat_at) > window(previous.heartbeat_at) ? { kind: 'heartbeat' } : undefined;
    }
    default:
      return undefined;
  }
}

export interface StreamChange {
  readonly sequenceNumber?: string;
  readonly record?: TaskRecord;
  readonly previous?: TaskRecord;
  /** Why the stream record was skipped (a removal, an image that is not a task record). */
  readonly skipped?: string;
}

/** One stream record as the new and old task records. */
export function decodeStreamRecord(r: StreamRecordLike): StreamChange {
  const sequenceNumber = r.dynamodb?.SequenceNumber;
  if (r.eventName === 'REMOVE' || !r.dynamodb?.NewImage) return { sequenceNumber, skipped: 'a removal (TTL expiry)' };
  const parsed = parseTaskRecord(unmarshallImage(r.dynamodb.NewImage));
  if (!parsed.ok) return { sequenceNumber, skipped: `not a valid task record: ${parsed.problems[0]}` };
  const old = r.dynamodb.OldImage ? parseTaskRecord(unmarshallImage(r.dynamodb.OldImage)) : undefined;
  return { sequenceNumber, record: parsed.value, ...(old?.ok ? { previous: old.value } : {}) };
}

export interface TaskEventsClients {
  readonly eventbridge: EventBridgeClient;
  readonly sfn: SFNClient;
}

export interface StreamBatchResult {
  /** The DynamoDB event source's partial-batch answer: retry from this record on. */
  readonly batchItemFailures: { itemIdentifier: string }[];
  readonly published: number;
  readonly callbacks: number;
  readonly skipped: number;
}

export type TaskEventsLog = (level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown>) => void;

const jsonLog: TaskEventsLog = (level, event, fields) => console.log(JSON.stringify({ level, event, ...fields }));

export class TaskEventPublisher {
  private readonly heartbeatMs: number;

  constructor(
    private readonly clients: TaskEventsClients,
    private readonly config: TaskEventsConfig,
    private readonly log: TaskEventsLog = jsonLog,
  ) {
    this.heartbeatMs = (config.heartbeatSeconds ?? DEFAULT_SFN_HEARTBEAT_SECONDS) * 1000;
  }

  /** Records in stream order; stops at the first that cannot be handled (see the module comment). */
  async processBatch(records: readonly StreamRecordLike[]): Promise<StreamBatchResult> {
    let published = 0;
    let callbacks = 0;
    let skipped = 0;
    for (const r of records) {
      const change = decodeStreamRecord(r);
      if (!change.record) {
        skipped++;
        if (change.skipped && !change.skipped.startsWith('a removal')) this.log('warn', 'task-events.skipped', { sequence_number: change.sequenceNumber, why: change.skipped });
        continue;
      }
      try {
        const detail = taskStateChange(this.config.fleetName, change.record, change.previous);
        if (detail) {
          await this.publish(detail);
          published++;
        }
        const callback = callbackFor(change.record, change.previous, this.heartbeatMs);
        if (callback && (await this.callBack(change.record, callback))) callbacks++;
      } catch (err) {
        this.log('error', 'task-events.failed', { sequence_number: change.sequenceNumber, task_id: change.record.task_id, error: oneLine(`${(err as Error).name}: ${(err as Error).message}`, 500) });
        return { batchItemFailures: change.sequenceNumber ? [{ itemIdentifier: change.sequenceNumber }] : [], published, callbacks, skipped };
      }
    }
    return { batchItemFailures: [], published, callbacks, skipped };
  }

  private async publish(detail: TaskStateChange): Promise<void> {
    await retry(`publishing ${detail.event_id}`, async () => {
      const res = await this.clients.eventbridge.send(new PutEventsCommand({
        Entries: [{
          Source: TASK_EVENT_SOURCE,
          DetailType: TASK_STATE_CHANGE_DETAIL_TYPE,
          Detail: JSON.stringify(detail),
          Time: new Date(detail.updated_at),
          ...(this.config.eventBusName ? { EventBusName: this.config.eventBusName } : {}),
        }],
      }));
      const failed = res.Entries?.[0];
      if ((res.FailedEntryCount ?? 0) > 0 || failed?.ErrorCode) {
        // PutEvents reports an entry's failure in the answer; InternalFailure and throttling are worth another try.
        throw Object.assign(new Error(`PutEvents refused ${detail.event_id}: ${failed?.ErrorCode}: ${failed?.ErrorMessage}`), { name: failed?.ErrorCode ?? 'PutEventsFailed', $retryable: /Throttl|InternalFailure/.test(failed?.ErrorCode ?? '') });
      }
    }, { policy: RETRY_POLICIES.eventSource });
    this.log('info', 'task-events.published', { event_id: detail.event_id, status: detail.status, previous_status: detail.previous_status });
  }

  /** True when Step Functions took the callback; false when the token was already closed. */
  private async callBack(record: TaskRecord, callback: Callback): Promise<boolean> {
    const taskToken = record.task_token!;
    const sfn = this.clients.sfn;
    const send = (): Promise<unknown> =>
      callback.kind === 'success' ? sfn.send(new SendTaskSuccessCommand({ taskToken, output: callback.output }))
      : callback.kind === 'failure' ? sfn.send(new SendTaskFailureCommand({ taskToken, error: callback.error, cause: callback.cause }))
      : sfn.send(new SendTaskHeartbeatCommand({ taskToken }));
    try {
      await retry(`Step Functions ${callback.kind} for ${record.task_id}`, send, { policy: RETRY_POLICIES.eventSource });
    } catch (err) {
      const name = awsErrorName(err) ?? 'Error';
      if (!CLOSED_TOKEN_ERRORS.has(name)) throw err;
      this.log('warn', 'task-events.token-closed', { task_id: record.task_id, callback: callback.kind, error: name });
      return false;
    }
    this.log('info', 'task-events.callback', { task_id: record.task_id, status: record.status, callback: callback.kind });
    return true;
  }
}
