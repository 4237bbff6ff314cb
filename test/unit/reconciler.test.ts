/**
 * The reconciler: each decision of the pure `decideReconcile`, then `reconcileOnce` against an
 * in-memory DynamoDB/SQS stand-in that evaluates the real condition and update expressions, so
 * "never clobbers a daemon that just acted" is checked on the writes the code actually sends.
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
import fc from 'fast-check';
import {
  DEFAULT_TIMINGS,
  EventType,
  TERMINAL_STATUSES,
  TaskStatus,
  decodeEnvelope,
  parseTaskEvent,
  type InstanceRecord,
  type TaskRecord,
} from '../../daemon/src/contract';
import {
  ReconcilerOptionsError,
  decideReconcile,
  reconcileOnce,
  resolveReconcileOptions,
  type ReconcileAction,
  type ReconcileOptions,
} from '../../daemon/src/reconciler';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const MIN = 60_000;
const LEASE_MS = DEFAULT_TIMINGS.leaseSeconds * 1000;
const NAMES = { tasksTable: 'tasks', eventsTable: 'events', instancesTable: 'instances', queueUrl: 'https://sqs.local/q' };

// ---------------------------------------------------------------------------------------------
// Record factories

function aRecord(overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    task_id: 't-1',
    status: TaskStatus.QUEUED,
    spec: { image: 'agent:1' },
    created_at: NOW - 60 * MIN,
    updated_at: NOW - 60 * MIN,
    attempt: 0,
    attempts_left: DEFAULT_TIMINGS.maxAttempts,
    message_sent_at: NOW - 60 * MIN,
    ...overrides,
  };
}

const queued = (o: Partial<TaskRecord> = {}) => aRecord({ message_sent_at: NOW - 1 * MIN, updated_at: NOW - 1 * MIN, ...o });

/** A record leased by `attempt` on i-0aaa…, lease ending `leaseIn` ms from NOW (negative: expired). */
const leased = (status: TaskStatus, leaseIn: number, o: Partial<TaskRecord> = {}) =>
  aRecord({
    status,
    attempt: 1,
    attempts_left: DEFAULT_TIMINGS.maxAttempts - 1,
    instance_id: 'i-0aaaaaaaaaaaaaaaa',
    claimed_at: NOW - 30 * MIN,
    updated_at: NOW - 30 * MIN,
    lease_expires_at: NOW + leaseIn,
    ...o,
  });

const interrupted = (releasedAgo: number, o: Partial<TaskRecord> = {}) =>
  aRecord({ status: TaskStatus.INTERRUPTED, attempt: 1, instance_id: 'i-0bbbbbbbbbbbbbbbb', updated_at: NOW - releasedAgo, ...o });

// ---------------------------------------------------------------------------------------------
// decideReconcile

describe('decideReconcile', () => {
  describe.each<[string, TaskRecord, ReconcileAction]>([
    ['QUEUED, message sent 1 min ago', queued(), 'none'],
    ['QUEUED, message sent 6 min ago (lost enqueue)', aRecord({ message_sent_at: NOW - 6 * MIN, updated_at: NOW - 6 * MIN }), 'resend'],
    ['QUEUED, no message_sent_at, written 6 min ago', aRecord({ message_sent_at: undefined, updated_at: NOW - 6 * MIN }), 'resend'],
    ['QUEUED, message sent exactly one window ago', aRecord({ message_sent_at: NOW - 5 * MIN, updated_at: NOW - 5 * MIN }), 'none'],
    ['QUEUED with no attempts left', queued({ attempts_left: 0, attempt: 3 }), 'fail'],
    ['INTERRUPTED 1 min ago (message sent 1 h ago)', interrupted(1 * MIN), 'none'],
    ['INTERRUPTED 6 min ago, never claimed (lost release)', interrupted(6 * MIN), 'requeue'],
    ['INTERRUPTED with no attempts left', interrupted(1 * MIN, { attempts_left: 0 }), 'fail'],
    ['CLAIMED, lease live', leased(TaskStatus.CLAIMED, LEASE_MS), 'none'],
    ['RUNNING, lease ends exactly now (still live)', leased(TaskStatus.RUNNING, 0), 'none'],
    ['RUNNING, lease expired 1 min ago, attempts left', leased(TaskStatus.RUNNING, -1 * MIN), 'none'],
    ['RUNNING, lease expired 6 min ago, attempts left, no takeover', leased(TaskStatus.RUNNING, -6 * MIN), 'resend'],
    ['RUNNING, lease expired 1 ms ago, no attempts left', leased(TaskStatus.RUNNING, -1, { attempt: 3, attempts_left: 0 }), 'fail'],
    ['CLAIMED, lease expired, no attempts left', leased(TaskStatus.CLAIMED, -1 * MIN, { attempt: 3, attempts_left: 0 }), 'fail'],
    ['CLAIMED without any lease, no attempts left', leased(TaskStatus.CLAIMED, 0, { lease_expires_at: undefined, attempts_left: 0 }), 'fail'],
    ['CANCEL_REQUESTED, lease live', leased(TaskStatus.CANCEL_REQUESTED, LEASE_MS), 'none'],
    ['CANCEL_REQUESTED, lease expired', leased(TaskStatus.CANCEL_REQUESTED, -1 * MIN), 'cancel'],
    ['CANCEL_REQUESTED, lease expired, no attempts left', leased(TaskStatus.CANCEL_REQUESTED, -1 * MIN, { attempts_left: 0 }), 'cancel'],
    ...TERMINAL_STATUSES.map((s): [string, TaskRecord, ReconcileAction] => [`${s} (terminal), stale in every way`, leased(s, -60 * MIN, { attempts_left: 0 }), 'none']),
  ])('%s', (_name, record, expected) => {
    it(`→ ${expected}`, () => {
      // Act
      const decision = decideReconcile(record, NOW);
      // Assess
      expect(decision.action).toBe(expected);
    });
  });

  it('names the attempts and the last instance when it fails a task', () => {
    // Prepare
    const record = leased(TaskStatus.RUNNING, -2 * MIN, { attempt: 3, attempts_left: 0, instance_id: 'i-0123456789abcdef0' });
    // Act
    const decision = decideReconcile(record, NOW);
    // Assess
    expect(decision).toMatchObject({ action: 'fail' });
    const reason = (decision as { reason: string }).reason;
    expect(reason).toContain('attempt 3');
    expect(reason).toContain('i-0123456789abcdef0');
    expect(reason).toContain(new Date(NOW - 2 * MIN).toISOString());
  });

  it('honours a custom resend window', () => {
    // Prepare
    const record = aRecord({ message_sent_at: NOW - 3 * MIN, updated_at: NOW - 3 * MIN });
    // Act / Assess
    expect(decideReconcile(record, NOW).action).toBe('none');
    expect(decideReconcile(record, NOW, { resendAfterMs: 2 * MIN + 1 }).action).toBe('resend');
  });
});

describe('resolveReconcileOptions', () => {
  it.each<[string, ReconcileOptions, string]>([
    ['a resend window within the lease', { resendAfterMs: LEASE_MS }, 'resendAfterMs'],
    ['a stale-instance threshold under two heartbeats', { staleInstanceAfterMs: 1000 }, 'staleInstanceAfterMs'],
    ['zero concurrency', { concurrency: 0 }, 'concurrency'],
  ])('rejects %s with a typed error naming the field', (_name, options, field) => {
    // Act
    const attempt = () => resolveReconcileOptions(options);
    // Assess
    expect(attempt).toThrow(ReconcilerOptionsError);
    expect(attempt).toThrow(new RegExp(`${field}: got`));
  });

  it('fills defaults', () => {
    expect(resolveReconcileOptions()).toMatchObject({ resendAfterMs: 5 * MIN, staleInstanceAfterMs: LEASE_MS, concurrency: 8, limitResendsToQueueDeficit: true });
  });

  it("checks against the fleet's own timings", () => {
    // Prepare: a fleet with a 10-minute lease.
    const timings = { ...DEFAULT_TIMINGS, leaseSeconds: 600 };
    // Act / Assess
    expect(resolveReconcileOptions({ timings })).toMatchObject({ staleInstanceAfterMs: 10 * MIN, resendAfterMs: 25 * MIN });
    expect(() => resolveReconcileOptions({ timings, resendAfterMs: 5 * MIN })).toThrow(/resendAfterMs: got 300000, expected more than the lease \(600000 ms\)/);
  });
});

// ---------------------------------------------------------------------------------------------
// An in-memory stand-in for the three tables and the queue. It evaluates the subset of
// DynamoDB's expression language the reconciler uses (=, <, <=, >, >=, AND, OR, parentheses,
// attribute_exists / attribute_not_exists; SET / REMOVE), so conditions are really checked.

type Item = Record<string, unknown>;
type Names = Record<string, string>;
type Values = Record<string, unknown>;

function evalCondition(expr: string, item: Item | undefined, names: Names = {}, values: Values = {}): boolean {
  const tokens = expr.match(/\(|\)|<=|>=|<>|=|<|>|[#:]?[A-Za-z_][A-Za-z0-9_]*/g) ?? [];
  let i = 0;
  const peek = () => tokens[i];
  const take = (t?: string) => {
    const tok = tokens[i++];
    if (t !== undefined && tok !== t) throw new Error(`expected ${t} at ${i - 1} in ${expr}, got ${tok}`);
    return tok;
  };
  const operand = (tok: string): unknown => {
    if (tok.startsWith('#')) return item?.[names[tok]];
    if (tok.startsWith(':')) {
      if (!(tok in values)) throw new Error(`value ${tok} not given`);
      return values[tok];
    }
    throw new Error(`unexpected token ${tok} in ${expr}`);
  };
  const primary = (): boolean => {
    const tok = take();
    if (tok === '(') {
      const v = disjunction();
      take(')');
      return v;
    }
    if (tok === 'attribute_not_exists' || tok === 'attribute_exists') {
      take('(');
      const name = take();
      take(')');
      const exists = item !== undefined && item[names[name]] !== undefined;
      return tok === 'attribute_exists' ? exists : !exists;
    }
    const left = operand(tok);
    const op = take();
    const right = operand(take());
    if (left === undefined || right === undefined) return op === '<>' && left !== right;
    switch (op) {
      case '=':
        return left === right;
      case '<>':
        return left !== right;
      case '<':
        return (left as number) < (right as number);
      case '<=':
        return (left as number) <= (right as number);
      case '>':
        return (left as number) > (right as number);
      case '>=':
        return (left as number) >= (right as number);
      default:
        throw new Error(`operator ${op}`);
    }
  };
  const conjunction = (): boolean => {
    let v = primary();
    while (peek() === 'AND') {
      take();
      v = primary() && v;
    }
    return v;
  };
  const disjunction = (): boolean => {
    let v = conjunction();
    while (peek() === 'OR') {
      take();
      v = conjunction() || v;
    }
    return v;
  };
  const result = disjunction();
  if (i !== tokens.length) throw new Error(`trailing tokens in ${expr}`);
  return result;
}

function applyUpdate(item: Item, expr: string, names: Names, values: Values): Item {
  const out = { ...item };
  for (const clause of expr.split(/(?=\b(?:SET|REMOVE)\b)/)) {
    const [verb, ...rest] = clause.trim().split(/\s+/);
    const body = rest.join(' ');
    for (const part of body.split(',').map((p) => p.trim()).filter(Boolean)) {
      if (verb === 'SET') {
        const [lhs, rhs] = part.split('=').map((s) => s.trim());
        out[names[lhs]] = values[rhs];
      } else if (verb === 'REMOVE') {
        delete out[names[part]];
      } else throw new Error(`update verb ${verb}`);
    }
  }
  return out;
}

class ConditionalCheckFailedException extends Error {
  override readonly name = 'ConditionalCheckFailedException';
}

class TransactionCanceledException extends Error {
  override readonly name = 'TransactionCanceledException';
  constructor(readonly CancellationReasons: { Code: string }[]) {
    super(`Transaction cancelled, please refer cancellation reasons for specific reasons [${CancellationReasons.map((r) => r.Code).join(', ')}]`);
  }
}

type UpdateInput = UpdateCommand['input'];

interface FakeAws {
  ddb: DynamoDBDocumentClient;
  sqs: SQSClient;
  tasks: Map<string, Item>;
  events: Item[];
  instances: Map<string, Item>;
  sent: string[];
  /** Approximate visible messages the queue reports (beyond what the test sent). */
  visible: number;
  failQueueAttributes?: Error;
  failSend?: Error;
  /** Cancel every transaction for this reason code (e.g. TransactionConflict). */
  failTransactions?: string;
  /** Runs once, right after the index read and before the first write: a daemon acting. */
  between?: () => void;
  /** Project only the keys in the by-status index (KEYS_ONLY). */
  keysOnly?: boolean;
  pageSize: number;
}

function fakeAws(records: TaskRecord[] = [], instances: InstanceRecord[] = []): FakeAws {
  const fake: FakeAws = {
    tasks: new Map(records.map((r) => [r.task_id, { ...r }])),
    events: [],
    instances: new Map(instances.map((r) => [r.instance_id, { ...r }])),
    sent: [],
    visible: 0,
    pageSize: 2,
    ddb: undefined as unknown as DynamoDBDocumentClient,
    sqs: undefined as unknown as SQSClient,
  };
  let betweenDone = false;
  const beforeWrite = () => {
    if (betweenDone) return;
    betweenDone = true;
    fake.between?.();
  };
  const conditionHolds = (u: UpdateInput) =>
    !u.ConditionExpression || evalCondition(u.ConditionExpression, fake.tasks.get(u.Key?.task_id as string), u.ExpressionAttributeNames, u.ExpressionAttributeValues);
  const update = (u: UpdateInput) => {
    const id = u.Key?.task_id as string;
    fake.tasks.set(id, applyUpdate(fake.tasks.get(id) ?? { task_id: id }, u.UpdateExpression ?? '', u.ExpressionAttributeNames ?? {}, u.ExpressionAttributeValues ?? {}));
  };
  const page = (items: Item[], start: Item | undefined, key: (i: Item) => string) => {
    const from = start ? items.findIndex((i) => key(i) === key(start)) + 1 : 0;
    const slice = items.slice(from, from + fake.pageSize);
    return { Items: slice, LastEvaluatedKey: from + fake.pageSize < items.length ? slice[slice.length - 1] : undefined };
  };
  fake.ddb = {
    send: async (cmd: unknown) => {
      if (cmd instanceof QueryCommand) {
        const { ExpressionAttributeValues: v, ExclusiveStartKey } = cmd.input;
        const rows = [...fake.tasks.values()]
          .filter((t) => t.status === v?.[':status'])
          .sort((a, b) => (a.created_at as number) - (b.created_at as number))
          .map((t) => (fake.keysOnly ? { task_id: t.task_id, status: t.status, created_at: t.created_at } : { ...t }));
        return page(rows, ExclusiveStartKey, (i) => i.task_id as string);
      }
      if (cmd instanceof GetCommand) {
        const row = fake.tasks.get(cmd.input.Key?.task_id as string);
        return { Item: row ? { ...row } : undefined };
      }
      if (cmd instanceof UpdateCommand) {
        beforeWrite();
        if (!conditionHolds(cmd.input)) throw new ConditionalCheckFailedException('The conditional request failed');
        update(cmd.input);
        return {};
      }
      if (cmd instanceof TransactWriteCommand) {
        beforeWrite();
        const items = cmd.input.TransactItems ?? [];
        if (fake.failTransactions) throw new TransactionCanceledException(items.map(() => ({ Code: fake.failTransactions as string })));
        const holds = items.map((i) => (i.Update ? conditionHolds(i.Update as UpdateInput) : true));
        if (holds.includes(false)) throw new TransactionCanceledException(holds.map((h) => ({ Code: h ? 'None' : 'ConditionalCheckFailed' })));
        for (const i of items) {
          if (i.Update) update(i.Update as UpdateInput);
          if (i.Put) fake.events.push({ ...i.Put.Item });
        }
        return {};
      }
      if (cmd instanceof PutCommand) {
        fake.events.push({ ...cmd.input.Item });
        return {};
      }
      if (cmd instanceof ScanCommand) {
        return page([...fake.instances.values()], cmd.input.ExclusiveStartKey, (i) => i.instance_id as string);
      }
      throw new Error(`unexpected DynamoDB command ${(cmd as object).constructor.name}`);
    },
  } as unknown as DynamoDBDocumentClient;
  fake.sqs = {
    send: async (cmd: unknown) => {
      if (cmd instanceof GetQueueAttributesCommand) {
        if (fake.failQueueAttributes) throw fake.failQueueAttributes;
        return { Attributes: { ApproximateNumberOfMessages: String(fake.visible + fake.sent.length), ApproximateNumberOfMessagesDelayed: '0' } };
      }
      if (cmd instanceof SendMessageCommand) {
        if (fake.failSend) throw fake.failSend;
        fake.sent.push(cmd.input.MessageBody ?? '');
        return { MessageId: `m-${fake.sent.length}` };
      }
      throw new Error(`unexpected SQS command ${(cmd as object).constructor.name}`);
    },
  } as unknown as SQSClient;
  return fake;
}

function run(fake: FakeAws, options: ReconcileOptions = {}, now = NOW) {
  const lines: object[] = [];
  const report = reconcileOnce({ ddb: fake.ddb, sqs: fake.sqs, names: NAMES, now: () => now, log: (l) => lines.push(l) }, options);
  return report.then((r) => ({ report: r, lines }));
}

const eventsOf = (fake: FakeAws, taskId: string) => fake.events.filter((e) => e.task_id === taskId);

// ---------------------------------------------------------------------------------------------
// reconcileOnce

describe('reconcileOnce', () => {
  it('re-sends the message of a lost enqueue and records when', async () => {
    // Prepare
    const fake = fakeAws([aRecord({ task_id: 't-lost', message_sent_at: NOW - 10 * MIN, updated_at: NOW - 10 * MIN })]);
    // Act
    const { report } = await run(fake);
    // Assess
    expect(report.resent).toEqual(['t-lost']);
    expect(fake.sent).toHaveLength(1);
    expect(decodeEnvelope(fake.sent[0])).toMatchObject({ ok: true, value: { task_id: 't-lost', sent_at: NOW } });
    expect(fake.tasks.get('t-lost')).toMatchObject({ status: 'QUEUED', message_sent_at: NOW, attempt: 0 });
    const [event] = eventsOf(fake, 't-lost');
    expect(parseTaskEvent(event).ok).toBe(true);
    expect(event).toMatchObject({ type: EventType.MESSAGE_RESENT, status: 'QUEUED', at: NOW, detail: { by: 'reconciler' } });
  });

  it('fails an expired lease past the attempt cap with the reason, TTL and event', async () => {
    // Prepare
    const fake = fakeAws([leased(TaskStatus.RUNNING, -1 * MIN, { task_id: 't-dead', attempt: 3, attempts_left: 0 })]);
    // Act
    const { report } = await run(fake);
    // Assess
    expect(report.failed).toEqual(['t-dead']);
    const row = fake.tasks.get('t-dead');
    expect(row).toMatchObject({ status: 'FAILED', finished_at: NOW, updated_at: NOW, attempt: 3 });
    expect(row).not.toHaveProperty('lease_expires_at');
    expect(row?.reason).toMatch(/attempt 3 on i-0aaaaaaaaaaaaaaaa expired/);
    expect(row?.expires_at).toBeGreaterThan(NOW / 1000);
    expect(eventsOf(fake, 't-dead')).toEqual([expect.objectContaining({ type: 'FAILED', status: 'FAILED', attempt: 3, instance_id: 'i-0aaaaaaaaaaaaaaaa' })]);
    expect(fake.sent).toEqual([]);
  });

  it('cancels CANCEL_REQUESTED when no daemon holds the lease', async () => {
    // Prepare
    const fake = fakeAws([
      leased(TaskStatus.CANCEL_REQUESTED, -1 * MIN, { task_id: 't-orphan', cancel_requested_at: NOW - 5 * MIN }),
      leased(TaskStatus.CANCEL_REQUESTED, LEASE_MS, { task_id: 't-held', created_at: NOW - 59 * MIN }),
    ]);
    // Act
    const { report } = await run(fake);
    // Assess
    expect(report.cancelled).toEqual(['t-orphan']);
    expect(fake.tasks.get('t-orphan')).toMatchObject({ status: 'CANCELLED', finished_at: NOW });
    expect(fake.tasks.get('t-held')).toMatchObject({ status: 'CANCEL_REQUESTED' });
    expect(eventsOf(fake, 't-orphan')).toEqual([expect.objectContaining({ type: 'CANCELLED' })]);
  });

  it('requeues a released task whose message was lost, with a new message', async () => {
    // Prepare
    const fake = fakeAws([interrupted(7 * MIN, { task_id: 't-rel' })]);
    // Act
    const { report } = await run(fake);
    // Assess
    expect(report.requeued).toEqual(['t-rel']);
    expect(fake.tasks.get('t-rel')).toMatchObject({ status: 'QUEUED', message_sent_at: NOW, attempt: 1 });
    expect(fake.sent).toHaveLength(1);
    expect(eventsOf(fake, 't-rel')).toEqual([
      expect.objectContaining({ type: 'REQUEUED', status: 'QUEUED', attempt: 1 }),
      expect.objectContaining({ type: 'MESSAGE_RESENT', status: 'QUEUED', attempt: 1 }),
    ]);
  });

  it('reports a transaction cancelled for another reason than its condition as an error', async () => {
    // Prepare
    const fake = fakeAws([leased(TaskStatus.CANCEL_REQUESTED, -MIN, { task_id: 't-c' })]);
    fake.failTransactions = 'TransactionConflict';
    // Act
    const { report } = await run(fake);
    // Assess
    expect(report.raced).toEqual([]);
    expect(report.cancelled).toEqual([]);
    expect(report.errors).toEqual([expect.objectContaining({ task_id: 't-c', during: 'cancel', name: 'TransactionCanceledException' })]);
  });

  it('reads every page of every non-terminal status, and nothing terminal', async () => {
    // Prepare: 5 stale QUEUED over three pages of 2, plus terminal rows that must not be read.
    const stale = Array.from({ length: 5 }, (_, k) => aRecord({ task_id: `t-q${k}`, created_at: NOW - (60 - k) * MIN, message_sent_at: NOW - 10 * MIN, updated_at: NOW - 10 * MIN }));
    const done = TERMINAL_STATUSES.map((s, k) => aRecord({ task_id: `t-done${k}`, status: s }));
    const fake = fakeAws([...stale, ...done]);
    // Act
    const { report } = await run(fake);
    // Assess
    expect(report.scanned).toBe(5);
    expect(report.resent.sort()).toEqual(stale.map((r) => r.task_id).sort());
  });

  it('resends only as many as the queue is short of, oldest first', async () => {
    // Prepare: three stale QUEUED records but two messages still visible in the queue.
    const fake = fakeAws([
      aRecord({ task_id: 't-new', message_sent_at: NOW - 6 * MIN, updated_at: NOW - 6 * MIN }),
      aRecord({ task_id: 't-old', message_sent_at: NOW - 30 * MIN, updated_at: NOW - 30 * MIN }),
      aRecord({ task_id: 't-mid', message_sent_at: NOW - 10 * MIN, updated_at: NOW - 10 * MIN }),
    ]);
    fake.visible = 2;
    // Act
    const { report } = await run(fake);
    // Assess
    expect(report.resent).toEqual(['t-old']);
    expect(report.resendDeferred).toBe(2);
  });

  it('resends every stale task when the guard is off or the queue cannot be read', async () => {
    // Prepare
    const records = [aRecord({ task_id: 't-a', message_sent_at: NOW - 9 * MIN }), aRecord({ task_id: 't-b', message_sent_at: NOW - 9 * MIN, created_at: NOW - 59 * MIN })];
    const off = fakeAws(records);
    off.visible = 10;
    const broken = fakeAws(records);
    broken.failQueueAttributes = Object.assign(new Error('throttled'), { name: 'ThrottlingException' });
    // Act
    const a = await run(off, { limitResendsToQueueDeficit: false });
    const b = await run(broken);
    // Assess
    expect(a.report.resent).toHaveLength(2);
    expect(b.report.resent).toHaveLength(2);
    expect(b.report.errors).toEqual([expect.objectContaining({ name: 'ThrottlingException', during: expect.stringContaining('queue depth') })]);
  });

  it('puts message_sent_at back when the send fails, and reports the error', async () => {
    // Prepare
    const fake = fakeAws([aRecord({ task_id: 't-x', message_sent_at: NOW - 9 * MIN })]);
    fake.failSend = Object.assign(new Error('queue gone'), { name: 'QueueDoesNotExist' });
    // Act
    const { report } = await run(fake);
    // Assess
    expect(report.resent).toEqual([]);
    expect(report.errors).toEqual([expect.objectContaining({ task_id: 't-x', during: 'resend', name: 'QueueDoesNotExist' })]);
    expect(fake.tasks.get('t-x')?.message_sent_at).toBe(NOW - 9 * MIN);
    expect(fake.events).toEqual([]);
  });

  it('reads the full record when the index projects only keys', async () => {
    // Prepare
    const fake = fakeAws([leased(TaskStatus.CANCEL_REQUESTED, -MIN, { task_id: 't-k' })]);
    fake.keysOnly = true;
    // Act
    const { report } = await run(fake);
    // Assess
    expect(report.cancelled).toEqual(['t-k']);
    expect(report.errors).toEqual([]);
  });

  it('reports instances whose heartbeat is stale, and skips rows past their TTL', async () => {
    // Prepare
    const inst = (id: string, o: Partial<InstanceRecord>): InstanceRecord => ({ instance_id: id, status: 'busy', updated_at: NOW - 60 * MIN, ...o });
    const fake = fakeAws(
      [],
      [
        inst('i-0fresh', { heartbeat_at: NOW - 30_000 }),
        inst('i-0stale', { heartbeat_at: NOW - 10 * MIN, running: ['t-1'] }),
        inst('i-0nobeat', { status: 'booting', updated_at: NOW - 20 * MIN }),
        inst('i-0gone', { heartbeat_at: NOW - 50 * MIN, expires_at: Math.floor(NOW / 1000) - 1 }),
      ],
    );
    // Act
    const { report } = await run(fake);
    // Assess
    expect(report.staleInstances.map((s) => s.instance_id)).toEqual(['i-0nobeat', 'i-0stale']);
    expect(report.staleInstances[1]).toMatchObject({ status: 'busy', silent_ms: 10 * MIN, running: ['t-1'] });
  });

  it('treats a lost conditional write as someone else acting, not as an error', async () => {
    // Prepare: between the read and the write a daemon claims the lost-enqueue task.
    const fake = fakeAws([aRecord({ task_id: 't-r', message_sent_at: NOW - 9 * MIN })]);
    fake.between = () => claim(fake.tasks, 't-r', NOW);
    // Act
    const { report, lines } = await run(fake);
    // Assess
    expect(report.raced).toEqual(['t-r']);
    expect(report.errors).toEqual([]);
    expect(fake.sent).toEqual([]);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'reconciler.raced', task_id: 't-r' }));
  });
});

// ---------------------------------------------------------------------------------------------
// The property: whatever the reconciler read, a daemon that acted after the read wins.

/** What fleetd does to a record (issue 3), in the shape of the writes it makes. */
type DaemonAct = (row: Item, at: number) => Item | undefined;

const DAEMON_ACTS: Record<string, DaemonAct> = {
  // Claim: QUEUED / INTERRUPTED, or a takeover of an expired lease.
  claim: (r, at) => {
    const claimable = r.status === 'QUEUED' || r.status === 'INTERRUPTED';
    const takeover = (r.status === 'CLAIMED' || r.status === 'RUNNING') && !((r.lease_expires_at as number) >= at);
    if (!(claimable || takeover) || (r.attempts_left as number) <= 0) return undefined;
    return { ...r, status: 'CLAIMED', attempt: (r.attempt as number) + 1, attempts_left: (r.attempts_left as number) - 1, instance_id: 'i-0ccccccccccccccc1', lease_expires_at: at + LEASE_MS, claimed_at: at, updated_at: at };
  },
  // A heartbeat by the holder (possibly late): same attempt, lease pushed ahead.
  heartbeat: (r, at) =>
    ['CLAIMED', 'RUNNING', 'CANCEL_REQUESTED'].includes(r.status as string)
      ? { ...r, status: r.status === 'CLAIMED' ? 'RUNNING' : r.status, heartbeat_at: at, lease_expires_at: at + LEASE_MS, updated_at: at }
      : undefined,
  // The holder's terminal write.
  finish: (r, at) =>
    ['RUNNING', 'CANCEL_REQUESTED'].includes(r.status as string) ? { ...r, status: r.status === 'RUNNING' ? 'COMPLETED' : 'CANCELLED', finished_at: at, updated_at: at } : undefined,
  // A clean release by a draining instance.
  release: (r, at) =>
    ['CLAIMED', 'RUNNING'].includes(r.status as string)
      ? { ...r, status: 'INTERRUPTED', attempts_left: (r.attempts_left as number) + 1, updated_at: at }
      : undefined,
};

function claim(tasks: Map<string, Item>, id: string, at: number): void {
  const next = DAEMON_ACTS.claim(tasks.get(id) as Item, at);
  if (next) tasks.set(id, next);
}

const arbRecord: fc.Arbitrary<TaskRecord> = fc
  .record({
    status: fc.constantFrom<TaskStatus>('QUEUED', 'INTERRUPTED', 'CLAIMED', 'RUNNING', 'CANCEL_REQUESTED'),
    attempt: fc.integer({ min: 0, max: 4 }),
    attempts_left: fc.integer({ min: -1, max: 3 }),
    leaseOffset: fc.option(fc.integer({ min: -30 * MIN, max: 3 * MIN }), { nil: undefined }),
    sentAgo: fc.option(fc.integer({ min: 0, max: 30 * MIN }), { nil: undefined }),
    updatedAgo: fc.integer({ min: 0, max: 30 * MIN }),
  })
  .map(({ status, attempt, attempts_left, leaseOffset, sentAgo, updatedAgo }) =>
    aRecord({
      task_id: 't-prop',
      status,
      attempt,
      attempts_left,
      instance_id: attempt > 0 ? 'i-0aaaaaaaaaaaaaaaa' : undefined,
      lease_expires_at: leaseOffset === undefined ? undefined : NOW + leaseOffset,
      message_sent_at: sentAgo === undefined ? undefined : NOW - sentAgo,
      updated_at: NOW - updatedAgo,
    }),
  );

describe('never clobbers a daemon that acted after the read', () => {
  it('holds for every record, every daemon write, and every decision', async () => {
    const contested = new Set<string>();
    await fc.assert(
      fc.asyncProperty(arbRecord, fc.constantFrom(...Object.keys(DAEMON_ACTS)), fc.integer({ min: 0, max: 5000 }), async (record, actName, lateBy) => {
        // Prepare: the daemon acts between the reconciler's read and its first write.
        const fake = fakeAws([record]);
        let after: Item | undefined;
        fake.between = () => {
          after = DAEMON_ACTS[actName](fake.tasks.get(record.task_id) as Item, NOW + lateBy);
          if (after) fake.tasks.set(record.task_id, after);
        };
        const decision = decideReconcile(record, NOW);
        // Act
        const { report } = await run(fake, { limitResendsToQueueDeficit: false });
        // Assess
        if (decision.action === 'none' || after === undefined) return; // nothing written, or the daemon did nothing
        contested.add(`${decision.action}/${actName}`);
        expect(fake.tasks.get(record.task_id)).toEqual(after);
        expect(fake.sent).toEqual([]);
        expect(fake.events).toEqual([]);
        expect(report.raced).toEqual([record.task_id]);
        expect(report.errors).toEqual([]);
      }),
      { numRuns: 400 },
    );
    // The generator really reaches the races that matter.
    expect([...contested].sort()).toEqual(
      expect.arrayContaining(['cancel/finish', 'cancel/heartbeat', 'fail/finish', 'fail/heartbeat', 'fail/release', 'requeue/claim', 'resend/claim', 'resend/heartbeat']),
    );
  });

  it('and acts whenever nobody interfered', async () => {
    await fc.assert(
      fc.asyncProperty(arbRecord, async (record) => {
        // Prepare
        const fake = fakeAws([record]);
        const decision = decideReconcile(record, NOW);
        // Act
        const { report } = await run(fake, { limitResendsToQueueDeficit: false });
        // Assess
        const acted = [...report.resent, ...report.requeued, ...report.failed, ...report.cancelled];
        expect(acted).toEqual(decision.action === 'none' ? [] : [record.task_id]);
        expect(report.raced).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});
