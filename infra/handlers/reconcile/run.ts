/**
 * One reconciler pass (`reconcileOnce`): read every non-terminal record through the by-status
 * index, decide (decide.ts), act with bounded concurrency, report instances whose heartbeat
 * stopped. Every write goes through the store (daemon/src/store `TaskStore`): a fail or cancel
 * is `endUnleased`, a resend or requeue is the store's fenced `resend`. The store's conditions
 * make a daemon that acted after our read win; that is reported as `raced`, not as an error.
 * Reads retry with the scheduled policy (daemon/src/retry.ts); a failed write is left to the
 * next pass. A task of ABCA's (its spec's `abca.task-id` label) that this pass ends is written
 * into ABCA's TaskTable right after, as the claiming fleetd does for one it ends
 * (`abcaMirror`; docs/architecture.md "ABCA").
 *
 * Called by the reconciler Lambda (infra/handlers/reconciler.ts), `fleet reconcile --once`
 * (scripts/cli/operate.ts) and the chaos run. The report's shape is what they read.
 */
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { QueryCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ALL_STATUSES, InstanceStatus, TASKS_TABLE, TaskStatus, isTerminal, parseInstanceRecord, parseTaskRecord, type InstanceRecord, type TaskRecord } from '../../../daemon/src/contract';
import { abcaTaskIdOf, type AbcaHeartbeatMirror } from '../../../daemon/src/abca-mirror';
import { RETRY_POLICIES, retry } from '../../../daemon/src/retry';
import { StoreError, TaskStore, messageWasSent } from '../../../daemon/src/store';
import { decideReconcile, planReconcile, resolveReconcileOptions, type Decided, type ReconcileOptions } from './decide';

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
  /**
   * ABCA's TaskTable, told of each ABCA task this pass ends (FAILED with the reason, only over
   * ABCA's non-terminal statuses). @default none: no fleet task is ABCA's
   */
  readonly abcaMirror?: Pick<AbcaHeartbeatMirror, 'ended'>;
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
  /** The AWS error's name when there is one (`ThrottlingException`), else the error's. */
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
  /** Someone else acted first (the store's conditional write lost): not an error. */
  readonly raced: string[];
  /** Stale tasks whose resend the queue-deficit budget held back this run. */
  readonly resendDeferred: number;
  readonly staleInstances: StaleInstance[];
  readonly errors: ReconcileErrorEntry[];
}

const NON_TERMINAL: readonly TaskStatus[] = ALL_STATUSES.filter((s) => !isTerminal(s));

/** What acting on one decided record came to. */
type ActOutcome =
  /** `error`: done, with something the pass reports beside it (an ABCA write or an event row that failed). */
  | { readonly kind: 'done'; readonly taskId: string; readonly action: 'resend' | 'requeue' | 'fail' | 'cancel'; readonly error?: ReconcileErrorEntry }
  | { readonly kind: 'raced'; readonly taskId: string }
  | { readonly kind: 'error'; readonly error: ReconcileErrorEntry };

export async function reconcileOnce(deps: ReconcilerDeps, options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const opts = resolveReconcileOptions(options);
  const now = deps.now ?? Date.now;
  const log = deps.log ?? ((line: object) => console.log(JSON.stringify(line)));
  const { names } = deps;
  const store = new TaskStore({ ddb: deps.ddb, tasksTable: names.tasksTable, eventsTable: names.eventsTable, queue: { sqs: deps.sqs, queueUrl: names.queueUrl }, now });
  const startedAt = now();
  const errors: ReconcileErrorEntry[] = [];

  // 1. Read every non-terminal record, per status, through the by-status index.
  const open = await readOpenRecords(deps.ddb, store, names.tasksTable);
  errors.push(...open.errors);

  // 2. Decide, and plan within the queue-deficit budget.
  const decided: Decided[] = open.records.map((record) => ({ record, decision: decideReconcile(record, startedAt, opts) }));
  let queued: number | undefined;
  if (opts.limitResendsToQueueDeficit && decided.some((d) => d.decision.action === 'resend' || d.decision.action === 'requeue')) {
    try {
      queued = await queuedMessages(deps.sqs, names.queueUrl);
    } catch (err) {
      errors.push(errorEntry('read queue depth (resending every stale task)', err));
    }
  }
  const plan = planReconcile(decided, startedAt, queued);

  // 3. Act, a few tasks at a time.
  const outcomes = await mapLimit(plan.work, opts.concurrency, (d) => act(store, d, log, deps.abcaMirror));

  // 4. Instances that stopped heartbeating.
  const stale = await findStaleInstances(deps.ddb, names.instancesTable, now(), opts.staleInstanceAfterMs).catch((err: unknown) => ({ instances: [], errors: [errorEntry('scan instances', err)] }));
  errors.push(...stale.errors);
  for (const s of stale.instances) log({ level: 'warn', msg: 'reconciler.stale_instance', ...s });

  const done = (action: string) => outcomes.flatMap((o) => (o.kind === 'done' && o.action === action ? [o.taskId] : []));
  errors.push(...outcomes.flatMap((o) => (o.kind === 'error' ? [o.error] : o.kind === 'done' && o.error ? [o.error] : [])));
  for (const e of errors) log({ level: 'error', msg: 'reconciler.error', during: e.during, task_id: e.task_id, error: e.name, detail: e.message });
  const report: ReconcileReport = {
    startedAt,
    durationMs: now() - startedAt,
    scanned: open.records.length,
    resent: done('resend'),
    requeued: done('requeue'),
    failed: done('fail'),
    cancelled: done('cancel'),
    raced: outcomes.flatMap((o) => (o.kind === 'raced' ? [o.taskId] : [])),
    resendDeferred: plan.resendDeferred,
    staleInstances: stale.instances,
    errors,
  };
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

/** Carries out one decision through the store. A lost condition is `raced`; any other failure an error entry. */
async function act(store: TaskStore, { record, decision }: Decided, log: (line: object) => void, abcaMirror?: ReconcilerDeps['abcaMirror']): Promise<ActOutcome> {
  const taskId = record.task_id;
  let applied: boolean;
  let unrecordedEvent: ReconcileErrorEntry | undefined;
  try {
    switch (decision.action) {
      case 'fail':
        applied = await store.endUnleased(record, TaskStatus.FAILED, decision.reason, 'reconciler');
        break;
      case 'cancel':
        applied = await store.endUnleased(record, TaskStatus.CANCELLED, decision.reason, 'reconciler');
        break;
      case 'resend':
      case 'requeue': {
        const outcome = await store.resend(record, { why: decision.why, by: 'reconciler', requeue: decision.action === 'requeue', event: true });
        applied = messageWasSent(outcome);
        if (outcome === 'sent-without-event') unrecordedEvent = { task_id: taskId, during: `${decision.action} event`, name: 'EventNotRecorded', message: `${decision.action} ${taskId}: the message was sent and the record updated, but its MESSAGE_RESENT event row could not be appended` };
        break;
      }
      case 'none':
        throw new Error(`planReconcile handed over a record with nothing to do (${taskId})`);
    }
  } catch (err) {
    return { kind: 'error', error: errorEntry(decision.action, err, taskId) };
  }
  if (!applied) {
    log({ level: 'info', msg: 'reconciler.raced', task_id: taskId, action: decision.action, note: 'the record changed since it was read; someone else acted' });
    return { kind: 'raced', taskId };
  }
  log({ level: 'info', msg: `reconciler.${decision.action}`, task_id: taskId, attempt: record.attempt, from: record.status, why: 'reason' in decision ? decision.reason : decision.why });
  // Done, and reported: the history lacks the row (not retried: the message went out).
  if (unrecordedEvent) return { kind: 'done', taskId, action: decision.action, error: unrecordedEvent };
  const abcaTaskId = abcaTaskIdOf(record.spec);
  if (abcaMirror && abcaTaskId && (decision.action === 'fail' || decision.action === 'cancel')) {
    // Timeline: our terminal write landed (no daemon holds the task: it had no live lease) →
    // ABCA's record gets FAILED with our reason, unless the agent or ABCA ended it first (the
    // mirror's condition). The record is terminal now, so no later pass comes back to it: a
    // failed ABCA write is reported as an error of this pass (the operator's cue), not retried.
    const status = decision.action === 'fail' ? TaskStatus.FAILED : TaskStatus.CANCELLED;
    const mirrored = await abcaMirror.ended(abcaTaskId, { status, reason: decision.reason });
    if (mirrored === 'failed') {
      return { kind: 'done', taskId, action: decision.action, error: { task_id: taskId, during: 'abca mirror', name: 'AbcaMirrorFailed', message: `abca mirror ${taskId}: ABCA task ${abcaTaskId} was not told the fleet task ended ${status} (the mirror logged why)` } };
    }
  }
  return { kind: 'done', taskId, action: decision.action };
}

function errorEntry(during: string, err: unknown, taskId?: string): ReconcileErrorEntry {
  const e = err as Error | undefined;
  const name = err instanceof StoreError ? (err.awsName ?? err.name) : (e?.name ?? 'Error');
  return { ...(taskId ? { task_id: taskId } : {}), during, name, message: `${during}${taskId ? ` ${taskId}` : ''}: ${e?.message ?? String(err)}` };
}

/** A read retried with the scheduled policy: transient faults only, a few tries. */
function read<T>(what: string, fn: () => Promise<T>): Promise<T> {
  return retry(what, fn, { policy: RETRY_POLICIES.scheduled });
}

/**
 * Every non-terminal record, oldest first per status. A status whose query fails is reported
 * and skipped; a record that does not parse is reported and skipped.
 */
async function readOpenRecords(ddb: DynamoDBDocumentClient, store: TaskStore, table: string): Promise<{ records: TaskRecord[]; errors: ReconcileErrorEntry[] }> {
  const records: TaskRecord[] = [];
  const errors: ReconcileErrorEntry[] = [];
  for (const status of NON_TERMINAL) {
    try {
      let start: Record<string, unknown> | undefined;
      do {
        const page = await read(`query ${status}`, () => ddb.send(statusQuery(table, status, start)));
        for (const item of page.Items ?? []) {
          const rec = await toRecord(store, item);
          if (rec.record) records.push(rec.record);
          else errors.push(errorEntry('parse task record', new Error(rec.problems.join('; ')), rec.taskId));
        }
        start = page.LastEvaluatedKey;
      } while (start);
    } catch (err) {
      errors.push(errorEntry(`query ${status}`, err));
    }
  }
  return { records, errors };
}

function statusQuery(table: string, status: TaskStatus, start: Record<string, unknown> | undefined): QueryCommand {
  const { name, partitionKey } = TASKS_TABLE.statusIndex;
  return new QueryCommand({
    TableName: table,
    IndexName: name,
    KeyConditionExpression: '#pk = :status',
    ExpressionAttributeNames: { '#pk': partitionKey },
    ExpressionAttributeValues: { ':status': status },
    // Oldest first: the oldest stale tasks get the resend budget.
    ScanIndexForward: true,
    ExclusiveStartKey: start,
  });
}

/**
 * An index item as a full record. When the index projects fewer attributes than the record
 * needs (KEYS_ONLY / INCLUDE), the item is read from the table through the store.
 */
async function toRecord(store: TaskStore, item: Record<string, unknown>): Promise<{ record: TaskRecord; problems?: undefined; taskId?: undefined } | { record?: undefined; problems: string[]; taskId?: string }> {
  const parsed = parseTaskRecord(item);
  if (parsed.ok) return { record: parsed.value };
  const id = item[TASKS_TABLE.partitionKey];
  if (typeof id !== 'string') return { problems: parsed.problems };
  const full = await read(`read ${id}`, () => store.get(id));
  if (full.record) return { record: full.record };
  return { problems: full.problems ?? ['record vanished between the index read and the table read'], taskId: id };
}

/** Messages the queue holds for the daemons: visible plus delayed. */
async function queuedMessages(sqs: SQSClient, queueUrl: string): Promise<number> {
  const out = await read('read queue depth', () =>
    sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesDelayed'] })),
  );
  const a = out.Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
}

/** Instance rows whose heartbeat is older than `staleAfterMs`, the longest-silent first. */
async function findStaleInstances(ddb: DynamoDBDocumentClient, table: string, now: number, staleAfterMs: number): Promise<{ instances: StaleInstance[]; errors: ReconcileErrorEntry[] }> {
  const instances: StaleInstance[] = [];
  const errors: ReconcileErrorEntry[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await read('scan instances', () => ddb.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start })));
    for (const item of page.Items ?? []) {
      const parsed = parseInstanceRecord(item);
      if (!parsed.ok) {
        errors.push(errorEntry('parse instance record', new Error(parsed.problems.join('; '))));
        continue;
      }
      const inst = parsed.value;
      // A row past its TTL is history awaiting deletion (TTL deletes lazily; moto never does).
      if (inst.expires_at !== undefined && inst.expires_at * 1000 <= now) continue;
      // A warm-pool instance is silent while it is stopped in the pool: not a dead fleetd.
      if (inst.status === InstanceStatus.WARM) continue;
      const lastSeen = inst.heartbeat_at ?? inst.updated_at;
      if (now - lastSeen > staleAfterMs) {
        instances.push({ instance_id: inst.instance_id, status: inst.status, last_seen_at: lastSeen, silent_ms: now - lastSeen, running: inst.running ?? [] });
      }
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return { instances: instances.sort((a, b) => b.silent_ms - a.silent_ms), errors };
}

/** `fn` over `items` with at most `limit` in flight; results in the order of `items`. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
