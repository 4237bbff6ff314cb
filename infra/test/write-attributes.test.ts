/**
 * The attribute-scoped task writes (infra/permissions.ts TASK_WRITE_ATTRIBUTES) against what the
 * store really sends. Every path a writer takes through daemon/src/store/task-store.ts (and,
 * for the CLI grants, through scripts/lib/client.ts) runs against a fake DynamoDB client that
 * records each command; the attribute names each UpdateItem (plain or inside a transaction)
 * reads, writes or compares, plus its key, must all be on that writer's list, and its
 * ReturnValues must be allowed. When the store starts writing an attribute a list lacks, this
 * fails here instead of as AccessDenied in production.
 */
import { GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../../daemon/src/aws';
import { TASKS_TABLE, TaskStatus, newTaskId, type DispatchTimings, type TaskRecord } from '../../daemon/src/contract';
import { TaskStore, type Lease } from '../../daemon/src/store';
import { FleetClient } from '../../scripts/lib/client';
import { SUBMITTER_ONLY_ATTRIBUTES, TASK_WRITE_ATTRIBUTES, TASK_WRITE_RETURN_VALUES, type TaskWriter } from '../permissions';

const TASKS = 'tasks';
const EVENTS = 'events';
const NOW = 1_700_000_000_000;
const DISPATCH: DispatchTimings = { queue_wait_ms: 1, claim_ms: 2, image_pull_ms: 0, image_pulled: false, container_create_ms: 3, container_start_ms: 4 };

/** One UpdateItem on the tasks table as the store sent it. */
interface SentUpdate {
  readonly via: 'UpdateItem' | 'TransactWriteItems';
  readonly attributes: string[];
  readonly returnValues?: string;
  readonly expressions: string[];
}

interface Recorder {
  readonly updates: SentUpdate[];
  /** Anything but an UpdateItem on the tasks table or a PutItem on the events table. */
  readonly otherWrites: string[];
}

/**
 * A DynamoDB document client that answers GetItem with `current()` (and QueryItem with
 * nothing), and records every write. `failTransactions`: how many TransactWriteItems lose
 * their condition before one succeeds (to drive the store's fallback paths).
 */
function fakeDdb(current: () => TaskRecord | undefined, rec: Recorder, options: { failTransactions?: number } = {}) {
  let failures = options.failTransactions ?? 0;
  const update = (via: SentUpdate['via'], u: { TableName?: string; Key?: Record<string, unknown>; UpdateExpression?: string; ConditionExpression?: string; ExpressionAttributeNames?: Record<string, string>; ReturnValues?: string }) => {
    if (u.TableName !== TASKS) {
      rec.otherWrites.push(`${via} Update on ${u.TableName}`);
      return;
    }
    rec.updates.push({
      via,
      attributes: [...Object.keys(u.Key ?? {}), ...Object.values(u.ExpressionAttributeNames ?? {})],
      returnValues: u.ReturnValues,
      expressions: [u.UpdateExpression ?? '', u.ConditionExpression ?? ''],
    });
  };
  return {
    send: async (command: unknown): Promise<unknown> => {
      if (command instanceof GetCommand) return { Item: current() };
      if (command instanceof QueryCommand) return { Items: [] };
      if (command instanceof UpdateCommand) {
        update('UpdateItem', command.input);
        return { Attributes: current() };
      }
      if (command instanceof TransactWriteCommand) {
        for (const item of command.input.TransactItems ?? []) {
          if (item.Update) update('TransactWriteItems', item.Update);
          else if (item.Put && item.Put.TableName === EVENTS) continue;
          else rec.otherWrites.push(`TransactWriteItems ${Object.keys(item).join(',')} on ${JSON.stringify(item)}`.slice(0, 200));
        }
        if (failures > 0) {
          failures--;
          throw Object.assign(new Error('condition'), { name: 'TransactionCanceledException', CancellationReasons: [{ Code: 'ConditionalCheckFailed' }] });
        }
        return {};
      }
      rec.otherWrites.push((command as { constructor: { name: string } }).constructor.name);
      return {};
    },
  };
}

const fakeSqs = { send: async () => ({ MessageId: 'm-1' }) };

function record(over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    task_id: newTaskId(),
    status: TaskStatus.QUEUED,
    spec: { image: 'agent:1' },
    created_at: NOW - 60_000,
    updated_at: NOW - 60_000,
    attempt: 0,
    attempts_left: 3,
    max_attempts: 3,
    ...over,
  };
}

function newRecorder(): Recorder {
  return { updates: [], otherWrites: [] };
}

function store(ddb: ReturnType<typeof fakeDdb>): TaskStore {
  return new TaskStore({
    ddb: ddb as never,
    tasksTable: TASKS,
    eventsTable: EVENTS,
    timings: { leaseSeconds: 120 },
    queue: { sqs: fakeSqs as never, queueUrl: 'https://sqs.example/q' },
    now: () => NOW,
  });
}

function client(ddb: ReturnType<typeof fakeDdb>): FleetClient {
  const clients = { region: 'eu-west-1', ddb, sqs: fakeSqs } as unknown as AwsClients;
  return new FleetClient(clients, { queueUrl: 'https://sqs.example/q', dlqUrl: 'https://sqs.example/dlq', tasksTable: TASKS, eventsTable: EVENTS, instancesTable: 'instances', payloadBucket: 'b' });
}

/** Every path a writer takes, each against a record in the state that path needs. */
const SCENARIOS: Record<TaskWriter, Array<[string, (rec: Recorder) => Promise<unknown>]>> = {
  instance: [
    ['claim a QUEUED task', (rec) => { const r = record(); return store(fakeDdb(() => r, rec)).claim(r.task_id, 'i-1'); }],
    ['take over an expired lease', (rec) => {
      const r = record({ status: TaskStatus.RUNNING, attempt: 1, attempts_left: 2, instance_id: 'i-0', lease_expires_at: NOW - 1, container_id: 'c', started_at: NOW - 9, heartbeat_at: NOW - 9 });
      return store(fakeDdb(() => r, rec)).claim(r.task_id, 'i-1');
    }],
    ['end a cancel whose daemon is gone (claim → endUnleased)', (rec) => {
      const r = record({ status: TaskStatus.CANCEL_REQUESTED, attempt: 1, instance_id: 'i-0', lease_expires_at: NOW - 1 });
      return store(fakeDdb(() => r, rec)).claim(r.task_id, 'i-1');
    }],
    ['fail a task past its attempts (claim → endUnleased)', (rec) => {
      const r = record({ status: TaskStatus.INTERRUPTED, attempt: 3, attempts_left: 0, instance_id: 'i-0' });
      return store(fakeDdb(() => r, rec)).claim(r.task_id, 'i-1');
    }],
    ['claim after a lost race (decides again)', (rec) => { const r = record(); return store(fakeDdb(() => r, rec, { failTransactions: 1 })).claim(r.task_id, 'i-1'); }],
    ...leasedScenarios(),
  ],
  cancel: [
    ['cancel a QUEUED task (CANCELLED)', (rec) => { const r = record(); return client(fakeDdb(() => r, rec)).cancelTask(r.task_id, { by: 'alice' }); }],
    ['cancel an INTERRUPTED task (CANCELLED)', (rec) => { const r = record({ status: TaskStatus.INTERRUPTED, attempt: 1 }); return client(fakeDdb(() => r, rec)).cancelTask(r.task_id); }],
    ['cancel a RUNNING task (CANCEL_REQUESTED)', (rec) => {
      const r = record({ status: TaskStatus.RUNNING, attempt: 1, instance_id: 'i-1', lease_expires_at: NOW + 60_000 });
      return client(fakeDdb(() => r, rec)).cancelTask(r.task_id);
    }],
  ],
  resend: [
    ['resend a QUEUED task never sent (redrive, resubmit)', (rec) => { const r = record(); return client(fakeDdb(() => r, rec)).resendMessage(r.task_id); }],
    ['resend an INTERRUPTED task sent before', (rec) => { const r = record({ status: TaskStatus.INTERRUPTED, attempt: 1, message_sent_at: NOW - 600_000 }); return client(fakeDdb(() => r, rec)).resendMessage(r.task_id); }],
    ['resend a task whose lease expired', (rec) => {
      const r = record({ status: TaskStatus.CLAIMED, attempt: 1, instance_id: 'i-0', lease_expires_at: NOW - 1, message_sent_at: NOW - 600_000 });
      return client(fakeDdb(() => r, rec)).resendMessage(r.task_id);
    }],
    ['a failed send puts the previous send time back', async (rec) => {
      const r = record({ status: TaskStatus.QUEUED, message_sent_at: NOW - 600_000 });
      const failing = new TaskStore({ ddb: fakeDdb(() => r, rec) as never, tasksTable: TASKS, eventsTable: EVENTS, queue: { sqs: { send: async () => { throw new Error('down'); } } as never, queueUrl: 'q' }, now: () => NOW });
      await failing.resend(r, { why: 'test', by: 'client' }).catch(() => undefined);
    }],
    ['the first message of a submit', (rec) => client(fakeDdb(() => undefined, rec)).submitTask({ image: 'agent:1' })],
  ],
  reconciler: [
    // infra/handlers/reconcile/run.ts: endUnleased(FAILED | CANCELLED, 'reconciler'), resend({ requeue, event: true }).
    ['fail a task past its cap', (rec) => {
      const r = record({ status: TaskStatus.RUNNING, attempt: 3, attempts_left: 0, instance_id: 'i-0', lease_expires_at: NOW - 1 });
      return store(fakeDdb(() => r, rec)).endUnleased(r, TaskStatus.FAILED, 'attempts exhausted', 'reconciler');
    }],
    ['finish an orphaned cancel', (rec) => {
      const r = record({ status: TaskStatus.CANCEL_REQUESTED, attempt: 1, instance_id: 'i-0', lease_expires_at: NOW - 1 });
      return store(fakeDdb(() => r, rec)).endUnleased(r, TaskStatus.CANCELLED, 'orphaned', 'reconciler');
    }],
    ['requeue a lost release', (rec) => {
      const r = record({ status: TaskStatus.INTERRUPTED, attempt: 1, message_sent_at: NOW - 600_000 });
      return store(fakeDdb(() => r, rec)).resend(r, { why: 'lost release', by: 'reconciler', requeue: true, event: true });
    }],
    ['resend a lost enqueue', (rec) => { const r = record(); return store(fakeDdb(() => r, rec)).resend(r, { why: 'lost enqueue', by: 'reconciler', requeue: false, event: true }); }],
  ],
};

/** fleetd's writes under a lease: RUNNING, heartbeat, terminal write, release, socket cancel. */
function leasedScenarios(): Array<[string, (rec: Recorder) => Promise<unknown>]> {
  const held = (status: TaskStatus) => {
    const r = record({ status, attempt: 1, attempts_left: 2, instance_id: 'i-1', lease_expires_at: NOW + 60_000 });
    const lease: Lease = { taskId: r.task_id, instanceId: 'i-1', attempt: 1 };
    return { r, lease };
  };
  return [
    ['markRunning', (rec) => { const { r, lease } = held(TaskStatus.CLAIMED); return store(fakeDdb(() => r, rec)).markRunning(lease); }],
    ['heartbeat (ReturnValues ALL_NEW)', (rec) => { const { r, lease } = held(TaskStatus.RUNNING); return store(fakeDdb(() => r, rec)).heartbeat(lease); }],
    ['first heartbeat, carrying the start facts', (rec) => { const { r, lease } = held(TaskStatus.RUNNING); return store(fakeDdb(() => r, rec)).heartbeat(lease, { container_id: 'c-1', dispatch: DISPATCH }); }],
    ['finish with every terminal field', (rec) => {
      const { r, lease } = held(TaskStatus.RUNNING);
      return store(fakeDdb(() => r, rec)).finish(lease, TaskStatus.FAILED, {
        exit_code: 137,
        oom_killed: true,
        duration_ms: 5,
        result: { a: 1 },
        result_error: 'bad json',
        log_tail: 'tail',
        reason: 'oom',
        artifacts: { prefix: 'artifacts/t/1/', count: 1, bytes: 2, truncated: false },
        artifacts_error: 'upload failed',
        container_id: 'c-1',
        dispatch: DISPATCH,
      });
    }],
    ['release with the attempt refunded', (rec) => { const { r, lease } = held(TaskStatus.RUNNING); return store(fakeDdb(() => r, rec)).release(lease, 'drain'); }],
    ['release without a refund', (rec) => { const { r, lease } = held(TaskStatus.RUNNING); return store(fakeDdb(() => r, rec)).release(lease, 'engine', { refund: false }); }],
    ['release of a task whose cancel was requested (→ finish CANCELLED)', (rec) => {
      const { r, lease } = held(TaskStatus.CANCEL_REQUESTED);
      return store(fakeDdb(() => r, rec, { failTransactions: 1 })).release(lease, 'drain');
    }],
    ['requestCancel from the control socket', (rec) => { const { r, lease } = held(TaskStatus.RUNNING); return store(fakeDdb(() => r, rec)).requestCancel(lease, 'root'); }],
  ];
}

/** Words in an expression that are neither a `#name` / `:value` placeholder nor expression syntax: a bare attribute name. */
function bareNames(expression: string): string[] {
  const syntax = new Set(['SET', 'REMOVE', 'ADD', 'DELETE', 'AND', 'OR', 'NOT', 'IN', 'BETWEEN', 'attribute_exists', 'attribute_not_exists', 'attribute_type', 'begins_with', 'contains', 'size', 'if_not_exists', 'list_append']);
  return (expression.replace(/[#:][A-Za-z0-9_]+/g, ' ').match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []).filter((w) => !syntax.has(w));
}

describe.each(Object.keys(SCENARIOS) as TaskWriter[])('%s writes stay within TASK_WRITE_ATTRIBUTES', (writer) => {
  test.each(SCENARIOS[writer])('%s', async (_name, run) => {
    // Prepare
    const rec = newRecorder();
    // Act
    await run(rec);
    // Assess: the path wrote something, only to the tasks table's allowed attributes (and the
    // events table), with aliases only (a bare name would escape this check), never a PutItem
    // on the tasks table (a submit's record is the submitter's own grant, checked below).
    expect(rec.updates.length).toBeGreaterThan(0);
    for (const u of rec.updates) {
      expect(u.attributes.filter((a) => !(TASK_WRITE_ATTRIBUTES[writer] as readonly string[]).includes(a))).toEqual([]);
      expect(u.expressions.flatMap(bareNames)).toEqual([]);
      if (u.returnValues !== undefined) expect(TASK_WRITE_RETURN_VALUES[writer]).toContain(u.returnValues);
    }
    const unexpected = writer === 'resend' ? rec.otherWrites.filter((w) => !/"Put":\{"TableName":"tasks"/.test(w)) : rec.otherWrites;
    expect(unexpected).toEqual([]);
  });
});

describe('the lists', () => {
  test('every list holds the table key (DynamoDB requires it) and nothing only a submitter writes', () => {
    for (const list of Object.values(TASK_WRITE_ATTRIBUTES)) {
      expect(list).toContain(TASKS_TABLE.partitionKey);
      for (const a of SUBMITTER_ONLY_ATTRIBUTES) expect(list).not.toContain(a);
    }
    expect(SUBMITTER_ONLY_ATTRIBUTES).toEqual(expect.arrayContaining(['spec', 'seal', 'max_attempts']));
  });

  test('every attribute a list holds is written or compared by some path of its writer (no stale entries)', async () => {
    for (const writer of Object.keys(SCENARIOS) as TaskWriter[]) {
      // Prepare
      const seen = new Set<string>();
      // Act
      for (const [, run] of SCENARIOS[writer]) {
        const rec = newRecorder();
        await run(rec);
        for (const u of rec.updates) for (const a of u.attributes) seen.add(a);
      }
      // Assess
      expect({ writer, unused: TASK_WRITE_ATTRIBUTES[writer].filter((a) => !seen.has(a)) }).toEqual({ writer, unused: [] });
    }
  });

  test('only the instance role may ask an update for ALL_NEW (the heartbeat reads a cancel request)', () => {
    expect(TASK_WRITE_RETURN_VALUES.instance).toEqual(['NONE', 'ALL_NEW']);
    for (const writer of ['cancel', 'resend', 'reconciler'] as const) expect(TASK_WRITE_RETURN_VALUES[writer]).toEqual(['NONE']);
  });
});
