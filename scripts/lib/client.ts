/**
 * The client library other services import (an orchestrator, a webhook handler) and the
 * `fleet` CLI is built on. Submit writes the record first (attribute_not_exists: an
 * idempotency key makes resubmission safe), then the message; a failure between the two leaves
 * a QUEUED record with no message_sent_at, which `resendMessage` (and the reconciler) repairs.
 *
 * Reads: getTask, listTasks (by status, newest first, paged), listEvents, watchTask (events
 * until terminal), listInstances (instances table + EC2), listDeadLetters.
 * Writes besides submit: cancelTask (QUEUED → CANCELLED at once; CLAIMED/RUNNING →
 * CANCEL_REQUESTED plus an SSM push to the instance) and redriveDeadLetters.
 * Every error thrown is a FleetClientError subclass (errors.ts) with the AWS error as `cause`.
 */
import type { Instance } from '@aws-sdk/client-ec2';
import { ChangeMessageVisibilityBatchCommand, DeleteMessageCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../../daemon/src/aws';
import { awsErrorName } from '../../daemon/src/aws';
import { SpecSealer } from '../../daemon/src/seal';
import { TaskStore, type ResendOutcome } from '../../daemon/src/store';
import { sleep } from '../../daemon/src/retry';
import {
  CANCEL_DOCUMENT_PARAMETER,
  DEFAULT_TAG_PREFIX,
  LAUNCH_TEMPLATE_TAGS,
  DEFAULT_TIMINGS,
  instanceStaleAfterMs,
  DLQ_REASON_ATTRIBUTE,
  EVENTS_TABLE,
  EventType,
  InstanceStatus,
  LEASED_STATUSES,
  TaskStatus,
  isTerminal,
  newTaskId,
  parseInstanceRecord,
  parseTaskEvent,
  parseTaskSpec,
  tagKeys,
  type TaskEvent,
  type TaskRecord,
  type TaskSpecInput,
} from '../../daemon/src/contract';
import { deadLetterTaskId, decideRedrive, type RedriveDecision } from './dead-letters';
import { call, newTaskRecord, submitSpec, type SubmitContext, type SubmitResult } from './submit';
import {
  FleetRequestError,
  InvalidSpecError,
  TaskContendedError,
  TaskNotFoundError,
  WaitTimeoutError,
} from './errors';
import { TaskReader, assertTaskId, type ListTasksOptions, type TaskPage } from './task-reads';


/**
 * EC2 (instances) and SSM (the cancel push) are loaded by the commands that use them only:
 * client-ec2 alone costs ~0.6 s and ~60 MB to load (docs/benchmarks.md), which `fleet list`
 * and `fleet status` should not pay. Synchronous `require`, lazy in the esbuild bundle too.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const lazySdk = {
  ec2: () => require('@aws-sdk/client-ec2') as typeof import('@aws-sdk/client-ec2'),
  ssm: () => require('@aws-sdk/client-ssm') as typeof import('@aws-sdk/client-ssm'),
};
/* eslint-enable @typescript-eslint/no-require-imports */
export * from './errors';
export type { SubmitResult } from './submit';

export interface FleetNames {
  readonly queueUrl: string;
  readonly dlqUrl: string;
  readonly tasksTable: string;
  readonly eventsTable: string;
  readonly instancesTable: string;
  readonly payloadBucket: string;
  /** The fleet's SSM cancel document; without it a cancel relies on the heartbeat pull. */
  readonly cancelDocument?: string;
  /** Fleet name, as in the `<prefix>:fleet` tag: lets listInstances find instances that never reported. */
  readonly fleetName?: string;
  /** @default DEFAULT_TAG_PREFIX */
  readonly tagPrefix?: string;
  /** The fleet's task log group (CloudWatch Logs): where `fleet logs` reads each attempt's stream (docs/logs.md). */
  readonly logGroup?: string;
  /** The fleet's KMS HMAC key: submits are sealed with it (kms:GenerateMac). A fleet whose fleetd has a key runs only sealed records. */
  readonly sealKeyId?: string;
}

export type { ListTasksOptions, TaskPage, TaskReads } from './task-reads';

export type WatchUpdate = { readonly kind: 'event'; readonly event: TaskEvent } | { readonly kind: 'record'; readonly record: TaskRecord };

export interface WatchOptions {
  /** Poll interval. @default 1000 */
  readonly intervalMs?: number;
  /** Give up (WaitTimeoutError) after this long. @default no limit */
  readonly timeoutMs?: number;
  /** Stop watching (the generator returns the last record). */
  readonly signal?: AbortSignal;
}

/** How a cancel of a running task travels to its instance. */
export type CancelDelivery =
  /** SSM accepted the command; the instance's agent runs `fleetd cancel --task-id ID`. */
  | { readonly via: 'ssm'; readonly instanceId: string; readonly commandId: string }
  /** No push: fleetd sees CANCEL_REQUESTED on its next heartbeat (why says why no push). */
  | { readonly via: 'heartbeat'; readonly why: string };

export type CancelResult =
  /** It had not started (QUEUED / INTERRUPTED): CANCELLED now, it never runs. */
  | { readonly outcome: 'cancelled'; readonly taskId: string; readonly from: TaskStatus; readonly message: string }
  /** CANCEL_REQUESTED is recorded; the daemon that runs it stops it and writes CANCELLED. */
  | { readonly outcome: 'cancel-requested'; readonly taskId: string; readonly from: TaskStatus; readonly instanceId?: string; readonly delivery: CancelDelivery; readonly message: string }
  /** Already terminal: nothing was written. Not an error. */
  | { readonly outcome: 'already-ended'; readonly taskId: string; readonly status: TaskStatus; readonly message: string };

export interface InstanceView {
  readonly instanceId: string;
  /**
   * `terminated` when EC2 says so, or no longer lists an instance whose heartbeat stopped (its
   * row outlives it for days); else from the instances table (fleetd writes it), else the EC2
   * status tag, else unknown.
   */
  readonly status: InstanceStatus | 'unknown' | 'terminated';
  readonly running: string[];
  readonly heartbeatAt?: number;
  /** EC2 launch time, else fleetd's boot time. */
  readonly launchedAt?: number;
  readonly ec2State?: string;
  /** No heartbeat for longer than staleAfterMs (2.5 instance heartbeats, 15 min by default): its fleetd may be dead. */
  readonly stale: boolean;
  readonly slots?: number;
  readonly availabilityZone?: string;
  readonly reason?: string;
  /** fleetd's package version and build commit, from its row. */
  readonly version?: string;
  readonly commit?: string;
  /** From fleetd's row, else from EC2 (ImageId, the `aws:ec2launchtemplate:*` tags). */
  readonly amiId?: string;
  readonly launchTemplateId?: string;
  readonly launchTemplateVersion?: string;
}

export interface InstanceList {
  readonly instances: InstanceView[];
  /** Sources that could not be read (the list is then partial). */
  readonly warnings: string[];
}

export interface DeadLetter {
  readonly messageId: string;
  readonly taskId?: string;
  /** Why fleetd rejected it (absent when SQS moved it after too many receives). */
  readonly reason?: string;
  readonly sentAt?: number;
  readonly receiveCount?: number;
  /** The body, cut to 512 characters. */
  readonly body: string;
}

export interface RedriveOutcome {
  readonly deadLetter: DeadLetter;
  readonly decision: RedriveDecision;
  /** False in a dry run, or when acting failed (see error). */
  readonly applied: boolean;
  readonly error?: string;
}

/** The event row of a transition the client writes (cancel), like fleetd's. */
interface ClientTransition {
  readonly to: TaskStatus;
  readonly set: Record<string, unknown>;
  readonly event: EventType;
  readonly detail: Record<string, string>;
}

/** How long listDeadLetters hides the messages it reads before handing them back. */
const DLQ_PEEK_SECONDS = 30;

export { assertTaskId };

export class FleetClient {
  /** Every write to the fleet's tables goes through the store (docs/architecture.md). */
  private readonly store: TaskStore;
  /** Seals what a submitted task runs (docs/security.md); absent when no key is configured. */
  private readonly sealer?: SpecSealer;
  /** getTask and listTasks (task-reads.ts, which `fleet status` and `fleet list` use alone). */
  private readonly reads: TaskReader;

  constructor(
    readonly clients: AwsClients,
    readonly names: FleetNames,
  ) {
    this.sealer = names.sealKeyId ? new SpecSealer(clients.kms, names.sealKeyId) : undefined;
    this.reads = new TaskReader(clients.ddb, names.tasksTable);
    this.store = new TaskStore({ ddb: clients.ddb, tasksTable: names.tasksTable, eventsTable: names.eventsTable, queue: { sqs: clients.sqs, queueUrl: names.queueUrl } });
  }

  async submitTask(input: TaskSpecInput & Record<string, unknown>, options: { maxAttempts?: number } = {}): Promise<SubmitResult> {
    return submitSpec(this.submitContext(), input, options);
  }

  /** What the shared submit path (submit.ts) needs: the store, the payload bucket, the sealer. */
  private submitContext(): SubmitContext {
    return { store: this.store, s3: this.clients.s3, payloadBucket: this.names.payloadBucket, sealer: this.sealer };
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
    const record = await newTaskRecord(this.sealer, taskId, parsed.value as unknown as Record<string, unknown>, { maxAttempts: DEFAULT_TIMINGS.maxAttempts, now });
    await call(`writing task ${taskId}`, () => this.store.create(record));
    return taskId;
  }

  /**
   * Sends the task's message again, fenced on the record as read now (the store's resend, the
   * same the reconciler uses): for a lost enqueue or a redrive. 'raced': the record changed
   * meanwhile (a daemon claimed it, or another sender sent first), so nothing was sent; 'ended':
   * the task is terminal; 'sent-without-event': sent, but the task's history lacks the
   * MESSAGE_RESENT row (do not send again).
   */
  async resendMessage(taskId: string, options: { why?: string } = {}): Promise<ResendOutcome> {
    const record = await this.getTask(taskId);
    return call(`resending the message of ${taskId}`, () =>
      this.store.resend(record, { why: options.why ?? 'resent by the client', by: 'client', event: true }));
  }

  async getTask(taskId: string): Promise<TaskRecord> {
    return this.reads.getTask(taskId);
  }

  /** The task's events, oldest first; `after` (an event id) returns only later ones. */
  async listEvents(taskId: string, options: { after?: string } = {}): Promise<TaskEvent[]> {
    assertTaskId(taskId);
    const events: TaskEvent[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await call(`reading the events of ${taskId}`, () => this.clients.ddb.send(new QueryCommand({
        TableName: this.names.eventsTable,
        KeyConditionExpression: options.after ? '#k = :id AND #e > :after' : '#k = :id',
        ExpressionAttributeNames: { '#k': EVENTS_TABLE.partitionKey, ...(options.after ? { '#e': EVENTS_TABLE.sortKey } : {}) },
        ExpressionAttributeValues: { ':id': taskId, ...(options.after ? { ':after': options.after } : {}) },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      })));
      for (const item of res.Items ?? []) {
        const e = parseTaskEvent(item);
        if (e.ok) events.push(e.value);
      }
      start = res.LastEvaluatedKey;
    } while (start);
    return events;
  }

  /**
   * Tasks of the given statuses, newest first, one page at a time (task-pages.ts explains the
   * merge across the by-status index's partitions and why pages are exact).
   */
  async listTasks(options: ListTasksOptions = {}): Promise<TaskPage> {
    return this.reads.listTasks(options);
  }

  /**
   * Follows a task: yields each new event (oldest first) and then the record, every
   * `intervalMs`, until the record is terminal; returns the terminal record. Each round reads
   * the record before the events: a transition and its event are one transaction, so the
   * terminal event is always yielded before the terminal record.
   */
  async *watchTask(taskId: string, options: WatchOptions = {}): AsyncGenerator<WatchUpdate, TaskRecord> {
    assertTaskId(taskId);
    const interval = options.intervalMs ?? 1000;
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    let after: string | undefined;
    for (;;) {
      const record = await this.getTask(taskId);
      for (const event of await this.listEvents(taskId, { after })) {
        after = event.event_id;
        yield { kind: 'event', event };
      }
      yield { kind: 'record', record };
      if (isTerminal(record.status) || options.signal?.aborted) return record;
      if (Date.now() > deadline) throw new WaitTimeoutError(taskId, record.status, options.timeoutMs!);
      await sleep(interval, options.signal);
    }
  }

  /** Polls the record until it is terminal (or the timeout passes); returns the last record. */
  async waitForTerminal(taskId: string, options: { timeoutMs?: number; intervalMs?: number; onUpdate?: (r: TaskRecord) => void } = {}): Promise<TaskRecord> {
    const timeoutMs = options.timeoutMs ?? 10 * 60_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.getTask(taskId);
      options.onUpdate?.(r);
      if (isTerminal(r.status)) return r;
      if (Date.now() > deadline) throw new WaitTimeoutError(taskId, r.status, timeoutMs);
      await sleep(options.intervalMs ?? 500);
    }
  }

  /**
   * Cancels a task (docs/architecture.md, "Task states"). Safe to repeat.
   * - QUEUED / INTERRUPTED: CANCELLED at once (with its event, one transaction); it never starts.
   * - CLAIMED / RUNNING: CANCEL_REQUESTED (+ event), then SendCommand of the fleet's cancel
   *   document to the instance on the record. An SSM failure is reported, not thrown: fleetd
   *   sees CANCEL_REQUESTED on its next heartbeat and runs the same ladder.
   * - CANCEL_REQUESTED: the SSM push is sent again (the first may have failed).
   * - terminal: nothing to do, reported as `already-ended`.
   */
  async cancelTask(taskId: string, options: { by?: string } = {}): Promise<CancelResult> {
    assertTaskId(taskId);
    const by = options.by ?? 'client';
    for (let round = 0; round < 3; round++) {
      const record = await this.getTask(taskId);
      if (isTerminal(record.status)) {
        return { outcome: 'already-ended', taskId, status: record.status, message: `task ${taskId} already ended ${record.status}: nothing to cancel` };
      }
      if (record.status === TaskStatus.CANCEL_REQUESTED) return this.deliverCancel(record, record.status);
      const now = Date.now();
      if (!LEASED_STATUSES.includes(record.status)) {
        // Timeline: t0 we read QUEUED/INTERRUPTED at attempt A → t1 a daemon claims it (CLAIMED,
        // attempt A+1) → our `status = seen AND attempt = A` fails and the next round takes the
        // CLAIMED path. If our write lands first, the daemon's claim finds CANCELLED (terminal)
        // and deletes the message: no container ever starts.
        const cancelled = await this.transition(record, {
          to: TaskStatus.CANCELLED,
          set: { reason: `cancelled by ${by} before it started`, cancel_requested_at: now },
          event: EventType.CANCELLED,
          detail: { by, reason: 'cancelled before it started' },
        });
        if (cancelled) return { outcome: 'cancelled', taskId, from: record.status, message: `cancelled ${taskId}: it was ${record.status} and will never start` };
        continue;
      }
      // Timeline: t0 we read CLAIMED/RUNNING at attempt A → t1 the container ends (terminal),
      // the daemon releases it (INTERRUPTED) or another takes it over (attempt A+1) → our write
      // fails and the next round decides on what is there now. If ours lands, the daemon holding
      // attempt A sees CANCEL_REQUESTED (socket push or heartbeat) and ends it CANCELLED.
      const requested = await this.transition(record, {
        to: TaskStatus.CANCEL_REQUESTED,
        set: { cancel_requested_at: now },
        event: EventType.CANCEL_REQUESTED,
        detail: { by },
      });
      if (requested) return this.deliverCancel({ ...record, status: TaskStatus.CANCEL_REQUESTED }, record.status);
    }
    throw new TaskContendedError(taskId, 'cancelling it');
  }

  /** The SSM push of a recorded cancel; its failure only means waiting for the heartbeat pull. */
  private async deliverCancel(record: TaskRecord, from: TaskStatus): Promise<CancelResult> {
    const taskId = record.task_id;
    const instanceId = record.instance_id;
    const pull = `fleetd sees CANCEL_REQUESTED on its next heartbeat (within ${DEFAULT_TIMINGS.heartbeatSeconds} s by default) and stops the task: SIGTERM, then SIGKILL after the grace period`;
    const viaHeartbeat = (why: string): CancelResult => ({
      outcome: 'cancel-requested',
      taskId,
      from,
      instanceId,
      delivery: { via: 'heartbeat', why },
      message: `cancel requested for ${taskId} (${from}${instanceId ? ` on ${instanceId}` : ''}); not pushed: ${why}; ${pull}`,
    });
    if (!this.names.cancelDocument) return viaHeartbeat('no cancel document is configured (FLEET_CANCEL_DOCUMENT)');
    if (!instanceId) return viaHeartbeat('the record names no instance');
    try {
      const res = await this.clients.ssm.send(new (lazySdk.ssm().SendCommandCommand)({
        DocumentName: this.names.cancelDocument,
        InstanceIds: [instanceId],
        Parameters: { [CANCEL_DOCUMENT_PARAMETER]: [taskId] },
        Comment: `agent-fleet cancel ${taskId}`.slice(0, 100),
        TimeoutSeconds: 60,
      }));
      const commandId = res.Command?.CommandId ?? 'unknown';
      return {
        outcome: 'cancel-requested',
        taskId,
        from,
        instanceId,
        delivery: { via: 'ssm', instanceId, commandId },
        message: `cancel requested for ${taskId} (${from} on ${instanceId}); SSM command ${commandId} asks its fleetd to stop it: SIGTERM, then SIGKILL after the grace period`,
      };
    } catch (err) {
      return viaHeartbeat(`SSM SendCommand failed (${awsErrorName(err) ?? 'Error'}: ${(err as Error).message})`);
    }
  }

  /** One status transition of a record we read, fenced on its status and attempt, with its event row. */
  private transition(record: TaskRecord, t: ClientTransition): Promise<boolean> {
    return call(`writing ${t.to} for task ${record.task_id}`, () => this.store.transitionSeen(record, t.to, t.set, { type: t.event, detail: t.detail }));
  }

  /**
   * The fleet's instances: fleetd's rows in the instances table, joined with EC2 (launch time,
   * state, tags). Instances tagged with the fleet that never wrote a row (still booting, or dead
   * before preflight) are listed too when the fleet name is known. An unreadable source is
   * reported in `warnings`, not thrown, as long as one source answered.
   */
  async listInstances(options: { now?: number; staleAfterMs?: number } = {}): Promise<InstanceList> {
    const now = options.now ?? Date.now();
    const staleAfterMs = options.staleAfterMs ?? instanceStaleAfterMs(DEFAULT_TIMINGS);
    const keys = tagKeys(this.names.tagPrefix ?? DEFAULT_TAG_PREFIX);
    const rows = new Map<string, ReturnType<typeof parseInstanceRecord> & { ok: true }>();
    const warnings: string[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await call(`reading the instances table ${this.names.instancesTable}`, () =>
        this.clients.ddb.send(new ScanCommand({ TableName: this.names.instancesTable, ExclusiveStartKey: start })));
      for (const item of page.Items ?? []) {
        const parsed = parseInstanceRecord(item);
        if (!parsed.ok) warnings.push(`an invalid instance row was skipped: ${parsed.problems[0]}`);
        // A row past its TTL is history awaiting deletion (TTL deletes lazily).
        else if (parsed.value.expires_at === undefined || parsed.value.expires_at * 1000 > now) rows.set(parsed.value.instance_id, parsed);
      }
      start = page.LastEvaluatedKey;
    } while (start);

    const ec2 = new Map<string, Instance>();
    // A filter, not InstanceIds: an id EC2 no longer knows is then absent, not an error for all.
    const describe = this.names.fleetName
      ? { Filters: [{ Name: `tag:${keys.fleet}`, Values: [this.names.fleetName] }] }
      : rows.size > 0 ? { Filters: [{ Name: 'instance-id', Values: [...rows.keys()] }] } : undefined;
    let ec2Read = false;
    if (describe) {
      try {
        let token: string | undefined;
        do {
          const res = await this.clients.ec2.send(new (lazySdk.ec2().DescribeInstancesCommand)({ ...describe, NextToken: token }));
          for (const r of res.Reservations ?? []) for (const i of r.Instances ?? []) if (i.InstanceId) ec2.set(i.InstanceId, i);
          token = res.NextToken;
        } while (token);
        ec2Read = true;
      } catch (err) {
        warnings.push(`EC2 DescribeInstances failed (${awsErrorName(err)}: ${(err as Error).message}); launch times and tags are missing`);
      }
    }

    const ids = new Set([...rows.keys(), ...[...ec2.entries()].filter(([, i]) => i.State?.Name !== 'terminated').map(([id]) => id)]);
    const instances = [...ids].sort().map((instanceId): InstanceView => {
      const row = rows.get(instanceId)?.value;
      const inst = ec2.get(instanceId);
      const tags = Object.fromEntries((inst?.Tags ?? []).map((t) => [t.Key, t.Value]));
      const tagStatus = Object.values(InstanceStatus).find((s) => s === tags[keys.status]);
      const lastSeen = row ? (row.heartbeat_at ?? row.updated_at) : undefined;
      const silent = lastSeen !== undefined && now - lastSeen > staleAfterMs;
      // Gone: EC2 says terminated, or (an hour or more later) EC2 no longer lists it and fleetd is silent.
      const terminated = inst?.State?.Name === 'terminated' || (ec2Read && !inst && silent);
      return {
        instanceId,
        status: terminated ? 'terminated' : (row?.status ?? tagStatus ?? 'unknown'),
        running: terminated ? [] : (row?.running ?? (tags[keys.taskId] ? String(tags[keys.taskId]).split(',') : [])),
        heartbeatAt: lastSeen,
        launchedAt: inst?.LaunchTime ? new Date(inst.LaunchTime).getTime() : row?.booted_at,
        ec2State: inst?.State?.Name ?? (ec2Read && row ? 'not listed' : undefined),
        // A warm-pool instance is silent while it is stopped in the pool: not a dead fleetd.
        stale: silent && !terminated && row?.status !== 'warm',
        slots: row?.slots,
        availabilityZone: row?.availability_zone ?? inst?.Placement?.AvailabilityZone,
        reason: row?.reason,
        version: row?.version,
        commit: row?.commit,
        amiId: row?.ami_id ?? inst?.ImageId,
        launchTemplateId: row?.launch_template_id ?? tags[LAUNCH_TEMPLATE_TAGS.id],
        launchTemplateVersion: row?.launch_template_version ?? tags[LAUNCH_TEMPLATE_TAGS.version],
      };
    });
    return { instances, warnings };
  }

  /**
   * Reads up to `limit` dead-lettered messages without consuming them: each is hidden while
   * being read and made visible again at the end.
   */
  async listDeadLetters(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    const messages = await this.receiveDeadLetters(options.limit ?? 50);
    await this.releaseDeadLetters(messages);
    return messages.map(toDeadLetter);
  }

  /**
   * Redrives dead-lettered messages (dead-letters.ts decides each): runnable tasks get a fresh
   * message on the task queue, then the dead letter is deleted; letters of finished tasks are
   * deleted; the rest stay. `taskId` limits it to one task; `dryRun` only reports.
   */
  async redriveDeadLetters(options: { limit?: number; taskId?: string; dryRun?: boolean } = {}): Promise<RedriveOutcome[]> {
    if (options.taskId !== undefined) assertTaskId(options.taskId);
    const messages = await this.receiveDeadLetters(options.limit ?? 100);
    const outcomes: RedriveOutcome[] = [];
    const release: Message[] = [];
    for (const message of messages) {
      const deadLetter = toDeadLetter(message);
      if (options.taskId !== undefined && deadLetter.taskId !== options.taskId) {
        release.push(message);
        continue;
      }
      const lookup = deadLetter.taskId ? await this.lookupTask(deadLetter.taskId) : {};
      const decision = decideRedrive(deadLetter.taskId, lookup);
      if (options.dryRun || decision.action === 'keep') {
        release.push(message);
        outcomes.push({ deadLetter, decision, applied: false });
        continue;
      }
      try {
        // Resend before deleting: a crash between the two leaves a duplicate, never a loss.
        if (decision.action === 'resend') await this.resendMessage(decision.taskId, { why: 'redriven from the dead-letter queue' });
        await this.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: this.names.dlqUrl, ReceiptHandle: message.ReceiptHandle }));
        outcomes.push({ deadLetter, decision, applied: true });
      } catch (err) {
        release.push(message);
        outcomes.push({ deadLetter, decision, applied: false, error: `${awsErrorName(err) ?? 'Error'}: ${(err as Error).message}` });
      }
    }
    await this.releaseDeadLetters(release);
    return outcomes;
  }

  private async lookupTask(taskId: string): Promise<{ record?: TaskRecord; problems?: string[] }> {
    try {
      return { record: await this.getTask(taskId) };
    } catch (err) {
      if (err instanceof TaskNotFoundError) return {};
      if (err instanceof FleetRequestError) throw err;
      return { problems: [(err as Error).message] };
    }
  }

  /** Receives (and hides for DLQ_PEEK_SECONDS) up to `limit` messages of the dead-letter queue. */
  private async receiveDeadLetters(limit: number): Promise<Message[]> {
    const seen = new Map<string, Message>();
    while (seen.size < limit) {
      const res = await call('reading the dead-letter queue', () => this.clients.sqs.send(new ReceiveMessageCommand({
        QueueUrl: this.names.dlqUrl,
        MaxNumberOfMessages: Math.min(10, limit - seen.size),
        // A 1 s long poll asks every SQS server (a short poll samples some) and ends at once when messages are there.
        WaitTimeSeconds: 1,
        VisibilityTimeout: DLQ_PEEK_SECONDS,
        MessageAttributeNames: [DLQ_REASON_ATTRIBUTE],
        MessageSystemAttributeNames: ['SentTimestamp', 'ApproximateReceiveCount'],
      })));
      const fresh = (res.Messages ?? []).filter((m) => m.MessageId && !seen.has(m.MessageId));
      if (fresh.length === 0) break;
      for (const m of fresh) seen.set(m.MessageId!, m);
    }
    return [...seen.values()];
  }

  /** Makes messages we hid visible again (best effort: otherwise they reappear after DLQ_PEEK_SECONDS). */
  private async releaseDeadLetters(messages: Message[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const batch = messages.slice(i, i + 10);
      await this.clients.sqs
        .send(new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.names.dlqUrl,
          Entries: batch.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 })),
        }))
        .catch(() => undefined);
    }
  }
}

function toDeadLetter(m: Message): DeadLetter {
  const sent = Number(m.Attributes?.SentTimestamp);
  const received = Number(m.Attributes?.ApproximateReceiveCount);
  const taskId = deadLetterTaskId(m.Body);
  const reason = m.MessageAttributes?.[DLQ_REASON_ATTRIBUTE]?.StringValue;
  return {
    messageId: m.MessageId ?? '',
    ...(taskId ? { taskId } : {}),
    ...(reason ? { reason } : {}),
    ...(Number.isFinite(sent) ? { sentAt: sent } : {}),
    ...(Number.isFinite(received) ? { receiveCount: received } : {}),
    body: (m.Body ?? '').slice(0, 512),
  };
}
