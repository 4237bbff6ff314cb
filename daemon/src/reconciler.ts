/**
 * The reconciler: the fleet's janitor for states that no daemon will ever finish by itself.
 *
 * It repairs four things, each a decision of the pure `decideReconcile` and each applied with a
 * conditional write that can never clobber a daemon that acted in the meantime:
 *
 * - **resend**: a QUEUED task whose message nobody received (a lost enqueue: the client crashed
 *   between PutItem and SendMessage), or an abandoned lease whose message is gone;
 * - **requeue**: an INTERRUPTED task whose release message was lost (INTERRUPTED → QUEUED plus a
 *   fresh message; a released task is otherwise claimed directly as INTERRUPTED);
 * - **fail**: a lease expired with no attempts left (the dead daemon cannot, and no daemon may
 *   take it over); the reason names the attempts and the last instance;
 * - **cancel**: CANCEL_REQUESTED with no live lease (no daemon is left to run the cancel ladder).
 *
 * It also reports instances whose heartbeat is stale. `reconcileOnce` is what the scheduled
 * Lambda (infra/) and `fleet reconcile --once` call; its signature is stable.
 */
import { GetQueueAttributesCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import {
  ALL_STATUSES,
  DEFAULT_TIMINGS,
  EventType,
  LEASED_STATUSES,
  TASKS_TABLE,
  TaskStatus,
  assertTransition,
  encodeEnvelope,
  isTerminal,
  newEventId,
  parseInstanceRecord,
  parseTaskRecord,
  retentionExpiresAt,
  type InstanceRecord,
  type TaskEvent,
  type TaskRecord,
  type Timings,
} from './contract';

// ---------------------------------------------------------------------------------------------
// Options

export interface DecideOptions {
  /**
   * How long a task's message may have been visible (sent, released, or its lease expired)
   * without any daemon acting before the reconciler assumes the message is lost and sends a
   * new one. Must exceed the lease (= message visibility): a daemon that received the message
   * and died before claiming keeps it invisible that long.
   * @default 300_000 (5 minutes), or 2.5 leases when `timings` has a longer lease
   */
  readonly resendAfterMs?: number;
}

export interface ReconcileOptions extends DecideOptions {
  /**
   * An instance whose `heartbeat_at` is older than this is reported stale.
   * @default the lease, 120_000 ms (four missed instance heartbeats)
   */
  readonly staleInstanceAfterMs?: number;
  /**
   * Resend at most as many messages as the queue is short of: (records that should have a
   * visible message) − (visible + delayed messages). Without it, a long backlog with every
   * instance busy would look like thousands of lost messages and be duplicated every window,
   * inflating the scaler's backlog. Duplicates are harmless to correctness (claims are
   * conditional), so when the queue cannot be read the reconciler resends all stale tasks.
   * @default true
   */
  readonly limitResendsToQueueDeficit?: boolean;
  /**
   * Tasks acted on in parallel.
   * @default 8
   */
  readonly concurrency?: number;
  /**
   * The fleet's timings (lease, heartbeat), when fleetd runs with other than the defaults; the
   * other options are checked against them.
   * @default DEFAULT_TIMINGS
   */
  readonly timings?: Timings;
}

export const RECONCILE_DEFAULTS = Object.freeze({
  resendAfterMs: 5 * 60_000,
  staleInstanceAfterMs: DEFAULT_TIMINGS.leaseSeconds * 1000,
  limitResendsToQueueDeficit: true,
  concurrency: 8,
  timings: DEFAULT_TIMINGS,
});

type ResolvedOptions = Required<ReconcileOptions>;

/** Thrown for invalid options: says what was got, what is expected, and the fix. */
export class ReconcilerOptionsError extends Error {
  override readonly name = 'ReconcilerOptionsError';
  constructor(readonly problems: string[]) {
    super(`invalid reconciler options: ${problems.join('; ')}`);
  }
}

/** Wraps an AWS failure while acting on one task or reading one table; carried in the report. */
export class ReconcileActionError extends Error {
  override readonly name = 'ReconcileActionError';
  constructor(
    message: string,
    readonly taskId: string | undefined,
    options: { cause: unknown },
  ) {
    super(message, options);
  }
}

export function resolveReconcileOptions(options: ReconcileOptions = {}): ResolvedOptions {
  const given = stripUndefined(options);
  const timings = given.timings ?? DEFAULT_TIMINGS;
  const defaults = {
    ...RECONCILE_DEFAULTS,
    resendAfterMs: Math.max(RECONCILE_DEFAULTS.resendAfterMs, 2.5 * timings.leaseSeconds * 1000),
    staleInstanceAfterMs: timings.leaseSeconds * 1000,
  };
  const o: ResolvedOptions = { ...defaults, ...given, timings };
  const problems: string[] = [];
  const leaseMs = timings.leaseSeconds * 1000;
  if (!Number.isFinite(o.resendAfterMs) || o.resendAfterMs <= leaseMs) {
    problems.push(
      `resendAfterMs: got ${o.resendAfterMs}, expected more than the lease (${leaseMs} ms), or a message a daemon holds invisibly would be duplicated; raise it (default ${defaults.resendAfterMs})`,
    );
  }
  const heartbeatMs = timings.heartbeatSeconds * 1000;
  if (!Number.isFinite(o.staleInstanceAfterMs) || o.staleInstanceAfterMs < 2 * heartbeatMs) {
    problems.push(
      `staleInstanceAfterMs: got ${o.staleInstanceAfterMs}, expected at least two instance heartbeats (${2 * heartbeatMs} ms) so one late heartbeat is not reported; raise it`,
    );
  }
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > 64) {
    problems.push(`concurrency: got ${o.concurrency}, expected an integer 1..64`);
  }
  if (problems.length > 0) throw new ReconcilerOptionsError(problems);
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// ---------------------------------------------------------------------------------------------
// The pure decision

export type ReconcileDecision =
  | { readonly action: 'none'; readonly why: string }
  | { readonly action: 'resend'; readonly why: string; readonly visibleSince: number }
  | { readonly action: 'requeue'; readonly why: string; readonly visibleSince: number }
  | { readonly action: 'fail'; readonly reason: string }
  | { readonly action: 'cancel'; readonly reason: string };

export type ReconcileAction = ReconcileDecision['action'];

const iso = (ms: number | undefined): string => (ms === undefined ? 'never' : new Date(ms).toISOString());

/** A lease is live while `lease_expires_at >= now`; a missing lease is dead (DESIGN.md, claim). */
export function leaseIsLive(record: Pick<TaskRecord, 'lease_expires_at'>, now: number): boolean {
  return record.lease_expires_at !== undefined && record.lease_expires_at >= now;
}

function isLeased(status: TaskStatus): boolean {
  return LEASED_STATUSES.includes(status);
}

/**
 * Since when the task's message has been (or should have been) visible to the daemons: the
 * later of its last send and the moment its status last changed (a release makes the message
 * visible at once) or, for a leased task, its lease expiry (visibility = lease).
 */
export function messageVisibleSince(record: TaskRecord): number {
  const sent = Math.max(record.message_sent_at ?? 0, record.updated_at);
  return isLeased(record.status) ? Math.max(sent, record.lease_expires_at ?? 0) : sent;
}

/**
 * Whether a receivable SQS message should exist for this task right now (what the deficit
 * guard counts): claimable tasks, and abandoned leases a daemon could still take over.
 */
export function expectsVisibleMessage(record: TaskRecord, now: number): boolean {
  if (record.status === TaskStatus.QUEUED || record.status === TaskStatus.INTERRUPTED) return record.attempts_left > 0;
  return (
    (record.status === TaskStatus.CLAIMED || record.status === TaskStatus.RUNNING) &&
    !leaseIsLive(record, now) &&
    record.attempts_left > 0
  );
}

function lastHolder(record: TaskRecord): string {
  return `attempt ${record.attempt} on ${record.instance_id ?? 'no instance'}`;
}

/** What the reconciler should do with one record at `now`. Pure: no I/O, no clock. */
export function decideReconcile(record: TaskRecord, now: number, opts: DecideOptions = {}): ReconcileDecision {
  const resendAfterMs = opts.resendAfterMs ?? RECONCILE_DEFAULTS.resendAfterMs;
  const { status } = record;
  if (isTerminal(status)) return { action: 'none', why: `${status} is terminal` };

  const visibleSince = messageVisibleSince(record);
  const silentMs = now - visibleSince;
  const stale = silentMs > resendAfterMs;

  if (status === TaskStatus.CANCEL_REQUESTED) {
    // t0 cancel requested (daemon holds lease until L) ─ daemon runs the ladder, writes CANCELLED.
    // t0 cancel requested ─ daemon dies ─ L passes ─ nobody will ever write CANCELLED → we do.
    // Cancel wins over the attempt cap: the submitter asked for the task to stop.
    if (leaseIsLive(record, now)) return { action: 'none', why: `cancel in progress: lease live until ${iso(record.lease_expires_at)}` };
    return {
      action: 'cancel',
      reason: `cancel requested at ${iso(record.cancel_requested_at)}; no daemon holds the lease (${lastHolder(record)}, lease expired ${iso(record.lease_expires_at)}), cancelled by the reconciler`,
    };
  }

  if (status === TaskStatus.CLAIMED || status === TaskStatus.RUNNING) {
    // claim (attempt n, lease L) ─ heartbeats push L ahead ─ … nothing for us while L ≥ now.
    if (leaseIsLive(record, now)) return { action: 'none', why: `lease live until ${iso(record.lease_expires_at)}` };
    // … daemon dies ─ L passes ─ message visible again ─ another daemon takes over (attempt n+1),
    // unless no attempts are left: then no claim may succeed and the task would sit forever.
    if (record.attempts_left <= 0) {
      return {
        action: 'fail',
        reason: `lease of attempt ${record.attempt} on ${record.instance_id ?? 'an unknown instance'} expired at ${iso(record.lease_expires_at)} and no attempts are left (${record.attempt} attempts made); failed by the reconciler`,
      };
    }
    // … L passes ─ resendAfter more passes and still no takeover: the message is gone (deleted,
    // dead-lettered, expired); send a new one so a daemon can take the lease over.
    if (stale) return { action: 'resend', visibleSince, why: `lease expired ${iso(record.lease_expires_at)} and no daemon took it over for ${Math.round(silentMs / 1000)} s` };
    return { action: 'none', why: `lease expired ${iso(record.lease_expires_at)}; waiting for a takeover` };
  }

  // QUEUED / INTERRUPTED: claimable.
  if (record.attempts_left <= 0) {
    // A claim past the cap would only fail it; do so now rather than wait for a message that
    // may never come.
    return {
      action: 'fail',
      reason: `${status} with no attempts left (${record.attempt} attempts made, last ${lastHolder(record)}); failed by the reconciler`,
    };
  }
  if (status === TaskStatus.QUEUED) {
    // put record ─ (client crashes) ─ no SendMessage: nothing will ever receive it.
    // put record ─ send at S ─ message waits while every slot is busy: looks the same from here,
    // hence the queue-deficit guard in reconcileOnce before acting on this decision.
    if (stale) return { action: 'resend', visibleSince, why: `QUEUED and no daemon received its message for ${Math.round(silentMs / 1000)} s` };
    return { action: 'none', why: `QUEUED; message sent ${iso(record.message_sent_at)}` };
  }
  // INTERRUPTED: released at R with the message made visible at R; a daemon claims the
  // INTERRUPTED record directly, so nothing to do. Only when the release message was lost
  // (visibility change failed and the message was dead-lettered or deleted) and nobody claimed
  // it within the window: back to QUEUED with a fresh message.
  if (stale) return { action: 'requeue', visibleSince, why: `INTERRUPTED and not claimed for ${Math.round(silentMs / 1000)} s since its release` };
  return { action: 'none', why: `INTERRUPTED at ${iso(record.updated_at)}; a daemon will claim it from the released message` };
}

// ---------------------------------------------------------------------------------------------
// Applying decisions

export interface ReconcilerNames {
  readonly tasksTable: string;
  readonly eventsTable: string;
  readonly instancesTable: string;
  readonly queueUrl: string;
}

export interface ReconcilerDeps {
  readonly ddb: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly names: ReconcilerNames;
  /** Epoch ms. @default Date.now */
  readonly now?: () => number;
  /** One structured line per action and per error. @default a JSON line on stdout */
  readonly log?: (line: object) => void;
}

export interface StaleInstance {
  readonly instance_id: string;
  readonly status: InstanceRecord['status'];
  /** The last heartbeat (or, without one, the last update), epoch ms. */
  readonly last_seen_at: number;
  readonly silent_ms: number;
  readonly running: readonly string[];
}

export interface ReconcileErrorEntry {
  readonly task_id?: string;
  /** What was being done: `query QUEUED`, `fail`, `resend`, `scan instances`, … */
  readonly during: string;
  readonly name: string;
  readonly message: string;
}

export interface ReconcileReport {
  readonly startedAt: number;
  readonly durationMs: number;
  /** Non-terminal records examined. */
  readonly scanned: number;
  readonly resent: string[];
  readonly requeued: string[];
  readonly failed: string[];
  readonly cancelled: string[];
  /** Someone else acted first (a conditional write lost): not an error. */
  readonly raced: string[];
  /** Stale tasks whose resend the queue-deficit guard held back this run. */
  readonly resendDeferred: number;
  readonly staleInstances: StaleInstance[];
  readonly errors: ReconcileErrorEntry[];
}

const NON_TERMINAL: readonly TaskStatus[] = ALL_STATUSES.filter((s) => !isTerminal(s));

/** One conditional write to a task record: the update, its fence, and their placeholders. */
interface FencedUpdate {
  readonly expr: string;
  readonly condition: string;
  readonly names: Record<string, string>;
  readonly values: Record<string, unknown>;
}

/** ExpressionAttributeNames for record fields, checked against the contract's TaskRecord. */
function fieldNames(...fields: (keyof TaskRecord)[]): Record<string, string> {
  return Object.fromEntries(fields.map((f) => [`#${f}`, f]));
}

/**
 * A write lost its condition: someone else acted first. A transaction is cancelled for other
 * reasons too (conflict, throttling); only a failed condition counts here.
 */
function lostCondition(err: unknown): boolean {
  const e = err as { name?: unknown; CancellationReasons?: { Code?: string }[] } | null;
  if (e?.name === 'ConditionalCheckFailedException') return true;
  return e?.name === 'TransactionCanceledException' && (e.CancellationReasons ?? []).some((r) => r.Code === 'ConditionalCheckFailed');
}

export async function reconcileOnce(deps: ReconcilerDeps, options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const opts = resolveReconcileOptions(options);
  const clock = deps.now ?? Date.now;
  const log = deps.log ?? ((line: object) => console.log(JSON.stringify(line)));
  const { ddb, sqs, names } = deps;
  const t0 = clock();

  const report = {
    startedAt: t0,
    durationMs: 0,
    scanned: 0,
    resent: [] as string[],
    requeued: [] as string[],
    failed: [] as string[],
    cancelled: [] as string[],
    raced: [] as string[],
    resendDeferred: 0,
    staleInstances: [] as StaleInstance[],
    errors: [] as ReconcileErrorEntry[],
  };
  const recordError = (during: string, err: unknown, taskId?: string): void => {
    const wrapped = new ReconcileActionError(`${during}${taskId ? ` ${taskId}` : ''}: ${(err as Error)?.message ?? String(err)}`, taskId, { cause: err });
    report.errors.push({ task_id: taskId, during, name: (err as Error)?.name ?? 'Error', message: wrapped.message });
    log({ level: 'error', msg: 'reconciler.error', during, task_id: taskId, error: (err as Error)?.name, detail: wrapped.message });
  };

  // 1. Read every non-terminal record, per status, through the by-status GSI.
  const records: TaskRecord[] = [];
  for (const status of NON_TERMINAL) {
    try {
      for await (const item of queryStatus(ddb, names.tasksTable, status)) {
        const rec = await toRecord(ddb, names.tasksTable, item);
        if (rec.ok) records.push(rec.value);
        else recordError('parse task record', new Error(rec.problems.join('; ')), rec.taskId);
      }
    } catch (err) {
      recordError(`query ${status}`, err);
    }
  }
  report.scanned = records.length;

  // 2. Decide.
  const decided = records.map((record) => ({ record, decision: decideReconcile(record, t0, opts) }));
  const resends = decided
    .filter((d) => d.decision.action === 'resend' || d.decision.action === 'requeue')
    .sort((a, b) => visibleSinceOf(a.decision) - visibleSinceOf(b.decision));
  let budget = resends.length;
  if (opts.limitResendsToQueueDeficit && resends.length > 0) {
    const expected = records.filter((r) => expectsVisibleMessage(r, t0)).length;
    try {
      const waiting = await visibleMessages(sqs, names.queueUrl);
      budget = Math.min(resends.length, Math.max(0, expected - waiting));
    } catch (err) {
      recordError('read queue depth (resending every stale task)', err);
    }
  }
  report.resendDeferred = resends.length - budget;
  const allowed = new Set(resends.slice(0, budget).map((d) => d.record.task_id));
  const work = decided.filter(
    (d) => d.decision.action === 'fail' || d.decision.action === 'cancel' || allowed.has(d.record.task_id),
  );

  // 3. Act, a few tasks at a time.
  const act = async ({ record, decision }: (typeof decided)[number]): Promise<void> => {
    const id = record.task_id;
    try {
      switch (decision.action) {
        case 'fail':
          await finish(record, TaskStatus.FAILED, decision.reason);
          report.failed.push(id);
          break;
        case 'cancel':
          await finish(record, TaskStatus.CANCELLED, decision.reason);
          report.cancelled.push(id);
          break;
        case 'resend':
        case 'requeue':
          await resend(record, decision.action, decision.why);
          (decision.action === 'resend' ? report.resent : report.requeued).push(id);
          break;
        case 'none':
          return;
      }
      log({ level: 'info', msg: `reconciler.${decision.action}`, task_id: id, attempt: record.attempt, from: record.status, why: 'reason' in decision ? decision.reason : decision.why });
    } catch (err) {
      if (lostCondition(err)) {
        report.raced.push(id);
        log({ level: 'info', msg: 'reconciler.raced', task_id: id, action: decision.action, note: 'the record changed since it was read; someone else acted' });
        return;
      }
      recordError(decision.action, err, id);
    }
  };

  /** A row for the events table, stamped by the reconciler. */
  const eventRow = (record: TaskRecord, type: EventType, status: TaskStatus, at: number, detail: Record<string, string | boolean>): TaskEvent => ({
    task_id: record.task_id,
    event_id: newEventId(),
    type,
    at,
    status,
    attempt: record.attempt,
    ...(record.instance_id ? { instance_id: record.instance_id } : {}),
    detail: { by: 'reconciler', ...detail },
    expires_at: retentionExpiresAt(at),
  });

  /** The UpdateItem input of one fenced write to a task record. */
  const updateInput = (record: TaskRecord, u: FencedUpdate) => ({
    TableName: names.tasksTable,
    Key: { [TASKS_TABLE.partitionKey]: record.task_id },
    UpdateExpression: u.expr,
    ConditionExpression: u.condition,
    ExpressionAttributeNames: u.names,
    ExpressionAttributeValues: u.values,
  });

  /** A status transition and its event row, atomically (as fleetd writes them). */
  const transition = async (record: TaskRecord, update: FencedUpdate, event: TaskEvent): Promise<void> => {
    await ddb.send(
      new TransactWriteCommand({
        TransactItems: [{ Update: updateInput(record, update) }, { Put: { TableName: names.eventsTable, Item: event } }],
      }),
    );
  };

  /** FAILED or CANCELLED, fenced on what we read, with its event. */
  const finish = async (record: TaskRecord, to: TaskStatus, reason: string): Promise<void> => {
    assertTransition(record.status, to);
    const at = clock();
    const leased = isLeased(record.status);
    await transition(
      record,
      {
        expr: 'SET #status = :to, #reason = :reason, #updated_at = :at, #finished_at = :at, #expires_at = :ttl REMOVE #lease_expires_at',
        // Timeline: we read (status S, attempt n, lease L < t0) ─ a daemon takes over (attempt
        // n+1) or heartbeats late (L' ≥ t0) or finishes (terminal) ─ our write arrives: each of
        // those changed status, attempt or the lease, so the condition fails and the daemon wins.
        // Unleased (QUEUED / INTERRUPTED past the cap): a claim or a cancel changes status/attempt.
        condition: leased
          ? '#status = :from AND #attempt = :attempt AND (attribute_not_exists(#lease_expires_at) OR #lease_expires_at < :t0)'
          : '#status = :from AND #attempt = :attempt AND #attempts_left <= :zero',
        names: fieldNames('status', 'reason', 'updated_at', 'finished_at', 'expires_at', 'lease_expires_at', 'attempt', ...(leased ? [] : (['attempts_left'] as const))),
        values: {
          ':to': to,
          ':reason': reason,
          ':at': at,
          ':ttl': retentionExpiresAt(at),
          ':from': record.status,
          ':attempt': record.attempt,
          ...(leased ? { ':t0': t0 } : { ':zero': 0 }),
        },
      },
      eventRow(record, to === TaskStatus.FAILED ? EventType.FAILED : EventType.CANCELLED, to, at, { reason }),
    );
  };

  /**
   * A fresh message for a task. The fenced write that records the send (and, for a requeue,
   * the INTERRUPTED → QUEUED transition with its event) comes first, so two overlapping runs
   * never both send; then the message; then the MESSAGE_RESENT event.
   */
  const resend = async (record: TaskRecord, action: 'resend' | 'requeue', why: string): Promise<void> => {
    const at = clock();
    const requeue = action === 'requeue';
    if (requeue) assertTransition(record.status, TaskStatus.QUEUED);
    const leased = isLeased(record.status);
    const prevSent = record.message_sent_at;
    const update: FencedUpdate = {
      expr: requeue ? 'SET #message_sent_at = :at, #updated_at = :at, #status = :queued' : 'SET #message_sent_at = :at, #updated_at = :at',
      // Timeline: we read (status S, attempt n, sent at P) ─ a daemon claims (status or attempt
      // changes) or another reconciler run resends first (message_sent_at changes) or, for an
      // abandoned lease, its daemon heartbeats late (lease ≥ t0) ─ our write fails, and no
      // message is sent.
      condition: [
        '#status = :from AND #attempt = :attempt',
        prevSent === undefined ? 'attribute_not_exists(#message_sent_at)' : '#message_sent_at = :prev',
        ...(leased ? ['(attribute_not_exists(#lease_expires_at) OR #lease_expires_at < :t0)'] : []),
      ].join(' AND '),
      names: fieldNames('message_sent_at', 'updated_at', 'status', 'attempt', ...(leased ? (['lease_expires_at'] as const) : [])),
      values: {
        ':at': at,
        ':from': record.status,
        ':attempt': record.attempt,
        ...(requeue ? { ':queued': TaskStatus.QUEUED } : {}),
        ...(prevSent === undefined ? {} : { ':prev': prevSent }),
        ...(leased ? { ':t0': t0 } : {}),
      },
    };
    if (requeue) {
      await transition(record, update, eventRow(record, EventType.REQUEUED, TaskStatus.QUEUED, at, { reason: why }));
    } else {
      await ddb.send(new UpdateCommand(updateInput(record, update)));
    }
    try {
      await sqs.send(new SendMessageCommand({ QueueUrl: names.queueUrl, MessageBody: encodeEnvelope(record.task_id, at) }));
    } catch (err) {
      await undoSentAt(record, at, requeue);
      throw err;
    }
    const event = eventRow(record, EventType.MESSAGE_RESENT, requeue ? TaskStatus.QUEUED : record.status, at, { reason: why });
    try {
      await ddb.send(new PutCommand({ TableName: names.eventsTable, Item: event }));
    } catch (err) {
      // Not a transition: the record and the message are what matter; report the missing row.
      recordError('append MESSAGE_RESENT event (message sent)', err, record.task_id);
    }
  };

  /**
   * The send failed after we recorded it: put the previous send time back so the next run sees
   * the task as stale again instead of waiting a whole window. Best effort and fenced on our
   * own write; a requeued task stays QUEUED (a fine state to resend from).
   */
  const undoSentAt = async (record: TaskRecord, at: number, requeued: boolean): Promise<void> => {
    const prev = record.message_sent_at;
    try {
      await ddb.send(
        new UpdateCommand(
          updateInput(record, {
            expr: prev === undefined ? 'REMOVE #message_sent_at' : 'SET #message_sent_at = :prev',
            // Timeline: our write recorded a send at `at` ─ the send failed ─ a daemon may have
            // claimed in between (attempt changed): then leave its record alone.
            condition: '#message_sent_at = :at AND #attempt = :attempt AND #status = :status',
            names: fieldNames('message_sent_at', 'attempt', 'status'),
            values: {
              ':at': at,
              ':attempt': record.attempt,
              ':status': requeued ? TaskStatus.QUEUED : record.status,
              ...(prev === undefined ? {} : { ':prev': prev }),
            },
          }),
        ),
      );
    } catch (err) {
      if (!lostCondition(err)) recordError('undo message_sent_at', err, record.task_id);
    }
  };

  await mapLimit(work, opts.concurrency, act);

  // 4. Instances that stopped heartbeating.
  try {
    report.staleInstances.push(...(await staleInstances(ddb, names.instancesTable, clock(), opts.staleInstanceAfterMs, (e) => recordError('parse instance record', e))));
    for (const s of report.staleInstances) log({ level: 'warn', msg: 'reconciler.stale_instance', ...s });
  } catch (err) {
    recordError('scan instances', err);
  }

  report.durationMs = clock() - t0;
  log({
    level: 'info',
    msg: 'reconciler.done',
    scanned: report.scanned,
    resent: report.resent.length,
    requeued: report.requeued.length,
    failed: report.failed.length,
    cancelled: report.cancelled.length,
    raced: report.raced.length,
    resend_deferred: report.resendDeferred,
    stale_instances: report.staleInstances.length,
    errors: report.errors.length,
    duration_ms: report.durationMs,
  });
  return report;
}

function visibleSinceOf(d: ReconcileDecision): number {
  return 'visibleSince' in d ? d.visibleSince : 0;
}

async function* queryStatus(ddb: DynamoDBDocumentClient, table: string, status: TaskStatus): AsyncGenerator<Record<string, unknown>> {
  const { name, partitionKey } = TASKS_TABLE.statusIndex;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await ddb.send(
      new QueryCommand({
        TableName: table,
        IndexName: name,
        KeyConditionExpression: '#pk = :status',
        ExpressionAttributeNames: { '#pk': partitionKey },
        ExpressionAttributeValues: { ':status': status },
        // Oldest first: the oldest stale tasks get the resend budget.
        ScanIndexForward: true,
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) yield item;
    start = page.LastEvaluatedKey;
  } while (start);
}

/**
 * A GSI item as a full record. When the index projects fewer attributes than the record
 * needs (KEYS_ONLY / INCLUDE), read the item from the table itself.
 */
async function toRecord(
  ddb: DynamoDBDocumentClient,
  table: string,
  item: Record<string, unknown>,
): Promise<{ ok: true; value: TaskRecord } | { ok: false; problems: string[]; taskId?: string }> {
  const parsed = parseTaskRecord(item);
  if (parsed.ok) return parsed;
  const taskId = typeof item[TASKS_TABLE.partitionKey] === 'string' ? (item[TASKS_TABLE.partitionKey] as string) : undefined;
  if (!taskId) return { ...parsed, taskId };
  const full = await ddb.send(new GetCommand({ TableName: table, Key: { [TASKS_TABLE.partitionKey]: taskId }, ConsistentRead: true }));
  if (!full.Item) return { ok: false, problems: ['record vanished between the index read and the table read'], taskId };
  const again = parseTaskRecord(full.Item);
  return again.ok ? again : { ...again, taskId };
}

async function visibleMessages(sqs: SQSClient, queueUrl: string): Promise<number> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  const a = out.Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
}

async function staleInstances(
  ddb: DynamoDBDocumentClient,
  table: string,
  now: number,
  staleAfterMs: number,
  onBadRow: (err: Error) => void,
): Promise<StaleInstance[]> {
  const out: StaleInstance[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await ddb.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    for (const item of page.Items ?? []) {
      const parsed = parseInstanceRecord(item);
      if (!parsed.ok) {
        onBadRow(new Error(parsed.problems.join('; ')));
        continue;
      }
      const inst = parsed.value;
      // A row past its TTL is history awaiting deletion (TTL deletes lazily; moto never does).
      if (inst.expires_at !== undefined && inst.expires_at * 1000 <= now) continue;
      const lastSeen = inst.heartbeat_at ?? inst.updated_at;
      if (now - lastSeen > staleAfterMs) {
        out.push({ instance_id: inst.instance_id, status: inst.status, last_seen_at: lastSeen, silent_ms: now - lastSeen, running: inst.running ?? [] });
      }
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return out.sort((a, b) => b.silent_ms - a.silent_ms);
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
