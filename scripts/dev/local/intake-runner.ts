/**
 * The local stack's stand-in for the two Lambda event sources of the intake (infra/intake.ts):
 *
 * - the intake queue's SQS event source: long-polls the queue, hands each batch to the same
 *   IntakeProcessor the intake Lambda runs (scripts/lib/intake.ts) and deletes every message
 *   not reported as a batch item failure (those reappear after the visibility timeout);
 * - the tasks table stream's DynamoDB event source: reads the stream with GetShardIterator /
 *   GetRecords and hands each batch, in order, to the same TaskEventPublisher the task-events
 *   Lambda runs (scripts/lib/task-events.ts); a batch item failure is retried from that record.
 *
 * Started by `npm run local -- up` next to the IMDS server and the SSM agent (for the stack's
 * own fleet, from the stream's latest record); tests start one per test fleet, as a child
 * process (`tsx intake-runner.ts --from trim-horizon`) or in-process (`new IntakeRunner(…)`) to
 * attach recorders to its clients.
 *
 * Each poll asks for a fresh iterator after the last sequence number handled, which is what a
 * reader does after the 15-minute iterator expiry on real DynamoDB Streams (and, on moto, a
 * failed TransactWriteItems trims the stream back: moto-serialized.py).
 */
import '../../../daemon/src/quiet-sdk-warning';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand, type ShardIteratorType } from '@aws-sdk/client-dynamodb-streams';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { createAwsClients, type AwsClients } from '../../../daemon/src/aws';
import { backoffDelayMs, sleep } from '../../../daemon/src/retry';
import { IntakeProcessor, intakeNamesFromEnv, type IntakeNames } from '../../lib/intake';
import { TaskEventPublisher, taskEventsConfigFromEnv, type StreamRecordLike, type TaskEventsConfig } from '../../lib/task-events';

export type StreamStart = 'trim-horizon' | 'latest';

export interface IntakeRunnerClients extends Pick<AwsClients, 'sqs' | 'ddb' | 's3' | 'kms'> {
  readonly streams: DynamoDBStreamsClient;
  readonly eventbridge: EventBridgeClient;
  readonly sfn: SFNClient;
}

export interface IntakeRunnerOptions {
  readonly clients: IntakeRunnerClients;
  readonly names: IntakeNames & { readonly intakeQueueUrl: string };
  readonly taskEvents: TaskEventsConfig;
  /** Where the stream reader starts: every retained record, or only what comes after the start. @default 'latest' */
  readonly from?: StreamStart;
  /** The intake queue's long poll. @default 10 */
  readonly waitSeconds?: number;
  /** Pause between stream polls that found nothing. @default 250 */
  readonly streamPollMs?: number;
  readonly log?: (line: Record<string, unknown>) => void;
}

export class IntakeRunner {
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly intake: IntakeProcessor;
  private readonly publisher: TaskEventPublisher;
  private readonly log: (line: Record<string, unknown>) => void;
  /** Sequence number of the last stream record handled, per shard. */
  private readonly position = new Map<string, string>();

  constructor(private readonly o: IntakeRunnerOptions) {
    this.log = o.log ?? ((line) => console.log(JSON.stringify({ at: new Date().toISOString(), ...line })));
    const asLog = (level: string, event: string, fields: Record<string, unknown>) => this.log({ level, event, ...fields });
    this.intake = new IntakeProcessor(o.clients, o.names, asLog);
    this.publisher = new TaskEventPublisher({ eventbridge: o.clients.eventbridge, sfn: o.clients.sfn }, o.taskEvents, asLog);
  }

  start(): this {
    this.loops = [this.queueLoop(), this.streamLoop()];
    return this;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.loops);
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  // ----- The intake queue, as Lambda's SQS event source runs it.

  private async queueLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const res = await this.o.clients.sqs.send(new ReceiveMessageCommand({
          QueueUrl: this.o.names.intakeQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: this.o.waitSeconds ?? 10,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }), { abortSignal: this.abort.signal });
        const messages = (res.Messages ?? []).filter((m) => m.MessageId && m.ReceiptHandle);
        if (messages.length > 0) {
          const { batchItemFailures } = await this.intake.processBatch(messages.map((m) => ({ messageId: m.MessageId!, body: m.Body ?? '', attributes: { ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount } })));
          const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
          const done = messages.filter((m) => !failed.has(m.MessageId!));
          if (done.length > 0) {
            await this.o.clients.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: this.o.names.intakeQueueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
          }
        }
        failures = 0;
      } catch (err) {
        if (this.stopped) return;
        this.log({ level: 'error', event: 'runner.intake-poll-failed', error: `${(err as Error).name}: ${(err as Error).message}` });
        await sleep(backoffDelayMs(failures++, 500, 10_000), this.abort.signal);
      }
    }
  }

  // ----- The tasks table's stream, as Lambda's DynamoDB event source runs it.

  private async streamArn(): Promise<string> {
    const d = await this.o.clients.ddb.send(new DescribeTableCommand({ TableName: this.o.names.tasksTable }));
    const arn = d.Table?.LatestStreamArn;
    if (!arn || !d.Table?.StreamSpecification?.StreamEnabled) throw new Error(`table ${this.o.names.tasksTable} has no stream: provision it again (npm run local -- up)`);
    return arn;
  }

  private async streamLoop(): Promise<void> {
    let failures = 0;
    let arn: string | undefined;
    let skipHistory = (this.o.from ?? 'latest') === 'latest';
    while (!this.stopped) {
      try {
        arn ??= await this.streamArn();
        const shards = (await this.o.clients.streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription?.Shards ?? [];
        let handled = 0;
        for (const shard of shards) {
          if (!shard.ShardId) continue;
          handled += await this.pollShard(arn, shard.ShardId, skipHistory);
        }
        // 'latest': everything retained at the start is skipped once, then every record counts.
        if (skipHistory && handled === 0) {
          skipHistory = false;
          this.log({ level: 'info', event: 'runner.stream-ready', stream: arn });
        }
        failures = 0;
        if (handled === 0) await sleep(this.o.streamPollMs ?? 250, this.abort.signal);
      } catch (err) {
        if (this.stopped) return;
        this.log({ level: 'error', event: 'runner.stream-poll-failed', error: `${(err as Error).name}: ${(err as Error).message}` });
        await sleep(backoffDelayMs(failures++, 500, 10_000), this.abort.signal);
      }
    }
  }

  /** One GetRecords after the shard's position; returns how many records it moved past. */
  private async pollShard(arn: string, shardId: string, skip: boolean): Promise<number> {
    const after = this.position.get(shardId);
    const type: ShardIteratorType = after ? 'AFTER_SEQUENCE_NUMBER' : 'TRIM_HORIZON';
    const it = await this.o.clients.streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: shardId, ShardIteratorType: type, ...(after ? { SequenceNumber: after } : {}) }));
    if (!it.ShardIterator) return 0;
    const res = await this.o.clients.streams.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator, Limit: 100 }));
    const records = res.Records ?? [];
    if (records.length === 0) return 0;
    if (skip) {
      this.position.set(shardId, records[records.length - 1].dynamodb!.SequenceNumber!);
      return records.length;
    }
    const result = await this.publisher.processBatch(records as StreamRecordLike[]);
    const failedAt = result.batchItemFailures[0]?.itemIdentifier;
    const index = failedAt === undefined ? records.length : records.findIndex((r) => r.dynamodb?.SequenceNumber === failedAt);
    if (index > 0) this.position.set(shardId, records[index - 1].dynamodb!.SequenceNumber!);
    if (failedAt !== undefined) {
      // As the event source does: retry from the failed record, after a pause.
      await sleep(1000, this.abort.signal);
    }
    return index;
  }
}

/** A runner for the fleet named by the FLEET_* variables (the local stack's env file, or a test fleet's). */
export function runnerFromEnv(env: NodeJS.ProcessEnv, from: StreamStart): IntakeRunner {
  const names = intakeNamesFromEnv(env);
  const intakeQueueUrl = env.FLEET_INTAKE_QUEUE_URL?.trim();
  if (!intakeQueueUrl) throw new Error('intake runner: FLEET_INTAKE_QUEUE_URL not set (provision the fleet again: npm run local -- up)');
  const clients = createAwsClients();
  const base = { region: clients.region, maxAttempts: 4 };
  return new IntakeRunner({
    clients: { ...clients, streams: new DynamoDBStreamsClient(base), eventbridge: new EventBridgeClient(base), sfn: new SFNClient(base) },
    names: { ...names, intakeQueueUrl },
    taskEvents: taskEventsConfigFromEnv(env),
    from,
  });
}

if (require.main === module) {
  const fromArg = process.argv.indexOf('--from');
  const from = (fromArg > 0 ? process.argv[fromArg + 1] : 'latest') as StreamStart;
  if (from !== 'latest' && from !== 'trim-horizon') {
    console.error(`intake-runner: --from ${from}: expected latest or trim-horizon`);
    process.exit(2);
  }
  const runner = runnerFromEnv(process.env, from).start();
  console.log(JSON.stringify({ at: new Date().toISOString(), level: 'info', event: 'runner.started', fleet: process.env.FLEET_NAME, from, pid: process.pid }));
  const shutdown = () => {
    void runner.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
