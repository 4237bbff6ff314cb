/**
 * reconcileOnce (infra/handlers/reconcile/run.ts) against the real local stack (moto's DynamoDB
 * tables and SQS queue): the store's conditions, the by-status index reads, the envelopes and
 * the event rows are all real. The pure decisions are test/unit/reconciler.test.ts.
 */
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  DEFAULT_TIMINGS,
  EVENTS_TABLE,
  LIMITS,
  TASKS_TABLE,
  TaskStatus,
  decodeEnvelope,
  encodeEnvelope,
  newTaskId,
  parseTaskEvent,
  parseTaskRecord,
  type InstanceRecord,
  type TaskRecord,
} from '../../daemon/src/contract';
import { ABCA_TASK_ID_LABEL, AbcaHeartbeatMirror } from '../../daemon/src/abca-mirror';
import { Logger } from '../../daemon/src/log';
import type { ReconcileOptions } from '../../infra/handlers/reconcile/decide';
import { reconcileOnce, type ReconcilerDeps } from '../../infra/handlers/reconcile/run';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

const MIN = 60_000;
const LEASE_MS = DEFAULT_TIMINGS.leaseSeconds * 1000;

let fleet: TestFleet;
beforeAll(async () => {
  fleet = await freshFleet();
});

function deps(overrides: Partial<ReconcilerDeps> = {}, on: TestFleet = fleet): ReconcilerDeps {
  const r = on.resources;
  return {
    ddb: on.clients.ddb,
    sqs: on.clients.sqs,
    names: { tasksTable: r.tasksTable, eventsTable: r.eventsTable, instancesTable: r.instancesTable, queueUrl: r.queueUrl },
    log: () => undefined,
    ...overrides,
  };
}

const reconcile = (options: ReconcileOptions = {}, overrides: Partial<ReconcilerDeps> = {}) => reconcileOnce(deps(overrides), options);

/** A record as the client library writes it, `ago` ms in the past. */
function aRecord(now: number, overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    task_id: newTaskId(),
    status: TaskStatus.QUEUED,
    spec: { image: 'agent-fleet/demo-agent:latest' },
    created_at: now - 60 * MIN,
    updated_at: now - 60 * MIN,
    attempt: 0,
    attempts_left: DEFAULT_TIMINGS.maxAttempts,
    message_sent_at: now - 60 * MIN,
    ...overrides,
  };
}

async function put(record: TaskRecord, on: TestFleet = fleet): Promise<TaskRecord> {
  await on.clients.ddb.send(new PutCommand({ TableName: on.resources.tasksTable, Item: record }));
  return record;
}

async function read(taskId: string): Promise<TaskRecord> {
  const out = await fleet.clients.ddb.send(new GetCommand({ TableName: fleet.resources.tasksTable, Key: { [TASKS_TABLE.partitionKey]: taskId }, ConsistentRead: true }));
  const parsed = parseTaskRecord(out.Item);
  if (!parsed.ok) throw new Error(parsed.problems.join('; '));
  return parsed.value;
}

async function eventsOf(taskId: string, on: TestFleet = fleet) {
  const out = await on.clients.ddb.send(
    new QueryCommand({
      TableName: on.resources.eventsTable,
      KeyConditionExpression: '#pk = :id',
      ExpressionAttributeNames: { '#pk': EVENTS_TABLE.partitionKey },
      ExpressionAttributeValues: { ':id': taskId },
    }),
  );
  return (out.Items ?? []).map((item) => {
    const parsed = parseTaskEvent(item);
    if (!parsed.ok) throw new Error(parsed.problems.join('; '));
    return parsed.value;
  });
}

/** Every message on the queue right now (received with a short visibility, never deleted). */
async function drainBodies(): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < 5; i++) {
    const out = await fleet.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: fleet.resources.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30 }));
    if (!out.Messages?.length) break;
    bodies.push(...out.Messages.map((m) => m.Body ?? ''));
  }
  return bodies;
}

test('a lost enqueue gets its message re-sent, recorded and evented', async () => {
  // Prepare: a QUEUED record whose SendMessage never happened (the queue is empty).
  const now = Date.now();
  const lost = await put(aRecord(now, { message_sent_at: now - 10 * MIN, updated_at: now - 10 * MIN }));
  const fresh = await put(aRecord(now, { message_sent_at: now - 1 * MIN, updated_at: now - 1 * MIN }));
  // Act
  const report = await reconcile();
  // Assess
  expect(report.errors).toEqual([]);
  expect(report.resent).toContain(lost.task_id);
  expect(report.resent).not.toContain(fresh.task_id);
  const envelopes = (await drainBodies()).map((b) => decodeEnvelope(b));
  expect(envelopes).toContainEqual(expect.objectContaining({ ok: true, value: expect.objectContaining({ task_id: lost.task_id }) }));
  const after = await read(lost.task_id);
  expect(after).toMatchObject({ status: 'QUEUED', attempt: 0 });
  expect(after.message_sent_at).toBeGreaterThanOrEqual(now);
  expect(await eventsOf(lost.task_id)).toEqual([expect.objectContaining({ type: 'MESSAGE_RESENT', status: 'QUEUED', detail: expect.objectContaining({ by: 'reconciler' }) })]);
  // A second run inside the window does not send it again.
  const again = await reconcile();
  expect(again.resent).not.toContain(lost.task_id);
});

test('an expired lease past the takeover cap ends FAILED with the reason (no attempts left is no cause: a takeover refunds the dead owner\'s)', async () => {
  // Prepare: the instance of the fourth attempt (the third takeover) died two minutes ago; a
  // task on its last attempt whose instance died, with takeovers to spare, is left to a takeover.
  const now = Date.now();
  const dead = await put(
    aRecord(now, {
      status: TaskStatus.RUNNING,
      attempt: 4,
      attempts_left: 2,
      takeovers: LIMITS.maxTakeovers,
      instance_id: 'i-0deadbeefdeadbeef',
      claimed_at: now - 20 * MIN,
      started_at: now - 19 * MIN,
      lease_expires_at: now - 2 * MIN,
      heartbeat_at: now - 4 * MIN,
    }),
  );
  const alive = await put(aRecord(now, { status: TaskStatus.RUNNING, attempt: 3, attempts_left: 0, instance_id: 'i-0a11ce0a11ce0a11c', lease_expires_at: now + LEASE_MS }));
  const lastAttempt = await put(aRecord(now, { status: TaskStatus.RUNNING, attempt: 3, attempts_left: 0, instance_id: 'i-0deadbeefdeadbee2', lease_expires_at: now - 30_000 }));
  // Act
  const report = await reconcile();
  // Assess
  expect(report.failed).toContain(dead.task_id);
  expect(report.failed).not.toContain(alive.task_id);
  expect(report.failed).not.toContain(lastAttempt.task_id);
  const after = await read(dead.task_id);
  expect(after.status).toBe('FAILED');
  expect(after.reason).toMatch(/takeovers exhausted: taken over 3 time\(s\) \(the cap is 3\) and the instance of attempt 4 \(i-0deadbeefdeadbeef\) stopped heartbeating too.*failed by the reconciler/);
  expect(after.finished_at).toBeGreaterThanOrEqual(now);
  expect(after.expires_at).toBeGreaterThan(Math.floor(now / 1000));
  expect(await eventsOf(dead.task_id)).toEqual([expect.objectContaining({ type: 'FAILED', status: 'FAILED', attempt: 4, instance_id: 'i-0deadbeefdeadbeef' })]);
  expect((await read(alive.task_id)).status).toBe('RUNNING');
  expect((await read(lastAttempt.task_id)).status).toBe('RUNNING');
});

test('CANCEL_REQUESTED without a live lease becomes CANCELLED; with one it is left to the daemon', async () => {
  // Prepare
  const now = Date.now();
  const orphan = await put(aRecord(now, { status: TaskStatus.CANCEL_REQUESTED, attempt: 1, attempts_left: 2, instance_id: 'i-0bbbbbbbbbbbbbbbb', cancel_requested_at: now - 3 * MIN, lease_expires_at: now - 1 * MIN }));
  const held = await put(aRecord(now, { status: TaskStatus.CANCEL_REQUESTED, attempt: 1, attempts_left: 2, instance_id: 'i-0cccccccccccccccc', cancel_requested_at: now - 10_000, lease_expires_at: now + LEASE_MS }));
  // Act
  const report = await reconcile();
  // Assess
  expect(report.cancelled).toContain(orphan.task_id);
  expect(report.cancelled).not.toContain(held.task_id);
  expect(await read(orphan.task_id)).toMatchObject({ status: 'CANCELLED', reason: expect.stringContaining('no daemon holds the lease') });
  expect(await eventsOf(orphan.task_id)).toEqual([expect.objectContaining({ type: 'CANCELLED', status: 'CANCELLED' })]);
  expect((await read(held.task_id)).status).toBe('CANCEL_REQUESTED');
});

/**
 * The fleet's DynamoDB client, except that the first write the reconciler makes to `taskId`
 * is preceded by `daemon` (a real write to moto): a daemon acting between our read and write.
 */
function withDaemonActingFirst(taskId: string, daemon: (update: (input: Omit<UpdateCommand['input'], 'TableName' | 'Key'>) => Promise<unknown>) => Promise<unknown>) {
  const real = fleet.clients.ddb;
  const state = { acted: false };
  const touches = (cmd: unknown) =>
    (cmd instanceof UpdateCommand && cmd.input.Key?.[TASKS_TABLE.partitionKey] === taskId) ||
    (cmd instanceof TransactWriteCommand && cmd.input.TransactItems?.some((i) => i.Update?.Key?.[TASKS_TABLE.partitionKey] === taskId));
  const ddb = {
    send: async (cmd: Parameters<DynamoDBDocumentClient['send']>[0]) => {
      if (!state.acted && touches(cmd)) {
        state.acted = true;
        await daemon((input) => real.send(new UpdateCommand({ TableName: fleet.resources.tasksTable, Key: { [TASKS_TABLE.partitionKey]: taskId }, ...input })));
      }
      return real.send(cmd as never);
    },
  } as unknown as DynamoDBDocumentClient;
  return { ddb, state };
}

test('a takeover claim that lands between the read and the write wins on real DynamoDB', async () => {
  // Prepare: an abandoned lease with attempts left, stale enough to be resent; a daemon takes it
  // over (the claim of issue 3: attempt + 1, new lease) just before the reconciler writes.
  const now = Date.now();
  const task = await put(aRecord(now, { status: TaskStatus.RUNNING, attempt: 1, attempts_left: 2, instance_id: 'i-0ddddddddddddddd1', lease_expires_at: now - 10 * MIN, updated_at: now - 20 * MIN }));
  const { ddb, state } = withDaemonActingFirst(task.task_id, (update) =>
    update({
      UpdateExpression: 'SET #status = :claimed, #attempt = #attempt + :one, #attempts_left = #attempts_left - :one, #instance_id = :me, #lease = :lease',
      ConditionExpression: '#status = :running AND #lease < :now',
      ExpressionAttributeNames: { '#status': 'status', '#attempt': 'attempt', '#attempts_left': 'attempts_left', '#instance_id': 'instance_id', '#lease': 'lease_expires_at' },
      ExpressionAttributeValues: { ':claimed': 'CLAIMED', ':running': 'RUNNING', ':one': 1, ':me': 'i-0eeeeeeeeeeeeeee2', ':lease': Date.now() + LEASE_MS, ':now': Date.now() },
    }),
  );
  // Act
  const report = await reconcile({ limitResendsToQueueDeficit: false }, { ddb });
  // Assess: the daemon's claim stands, nothing was sent for it, and that is not an error.
  expect(state.acted).toBe(true);
  expect(report.raced).toContain(task.task_id);
  expect(report.resent).not.toContain(task.task_id);
  expect(report.errors).toEqual([]);
  expect(await read(task.task_id)).toMatchObject({ status: 'CLAIMED', attempt: 2, attempts_left: 1, instance_id: 'i-0eeeeeeeeeeeeeee2' });
  expect(await eventsOf(task.task_id)).toEqual([]);
});

test('a late heartbeat that lands before the FAILED write keeps the task alive (transaction on moto)', async () => {
  // Prepare: the last attempt's lease expired 30 s ago; its daemon was only slow, and its
  // heartbeat lands just before the reconciler's transactional FAILED write.
  const now = Date.now();
  const task = await put(aRecord(now, { status: TaskStatus.RUNNING, attempt: 3, attempts_left: 0, takeovers: LIMITS.maxTakeovers, instance_id: 'i-0f0f0f0f0f0f0f0f0', lease_expires_at: now - 30_000 }));
  const { ddb, state } = withDaemonActingFirst(task.task_id, (update) =>
    update({
      UpdateExpression: 'SET #lease = :lease, #hb = :now',
      ConditionExpression: '#instance_id = :me AND #attempt = :attempt',
      ExpressionAttributeNames: { '#lease': 'lease_expires_at', '#hb': 'heartbeat_at', '#instance_id': 'instance_id', '#attempt': 'attempt' },
      ExpressionAttributeValues: { ':lease': Date.now() + LEASE_MS, ':now': Date.now(), ':me': 'i-0f0f0f0f0f0f0f0f0', ':attempt': 3 },
    }),
  );
  // Act
  const report = await reconcile({}, { ddb });
  // Assess
  expect(state.acted).toBe(true);
  expect(report.raced).toContain(task.task_id);
  expect(report.failed).not.toContain(task.task_id);
  expect(report.errors).toEqual([]);
  expect((await read(task.task_id)).status).toBe('RUNNING');
  expect(await eventsOf(task.task_id)).toEqual([]);
});

test('a released task whose message was lost goes back to QUEUED with a new message', async () => {
  // Prepare
  const now = Date.now();
  const released = await put(aRecord(now, { status: TaskStatus.INTERRUPTED, attempt: 1, attempts_left: 3, instance_id: 'i-0a0a0a0a0a0a0a0a0', updated_at: now - 7 * MIN, message_sent_at: now - 7 * MIN }));
  // Act
  const report = await reconcile({ limitResendsToQueueDeficit: false });
  // Assess
  expect(report.requeued).toContain(released.task_id);
  expect(await read(released.task_id)).toMatchObject({ status: 'QUEUED', attempt: 1 });
  expect((await drainBodies()).map((b) => decodeEnvelope(b))).toContainEqual(expect.objectContaining({ value: expect.objectContaining({ task_id: released.task_id }) }));
  expect((await eventsOf(released.task_id)).map((e) => e.type).sort()).toEqual(['MESSAGE_RESENT', 'REQUEUED']);
});

test('instances whose heartbeat stopped are reported', async () => {
  // Prepare
  const now = Date.now();
  const row = (id: string, heartbeatAgo: number): InstanceRecord => ({ instance_id: id, status: 'busy', updated_at: now - heartbeatAgo, heartbeat_at: now - heartbeatAgo, running: ['t-x'] });
  for (const r of [row('i-0silent000000001', 20 * MIN), row('i-0healthy00000001', 10_000)]) {
    await fleet.clients.ddb.send(new PutCommand({ TableName: fleet.resources.instancesTable, Item: r }));
  }
  // Act
  const report = await reconcile();
  // Assess
  expect(report.staleInstances.map((s) => s.instance_id)).toContain('i-0silent000000001');
  expect(report.staleInstances.map((s) => s.instance_id)).not.toContain('i-0healthy00000001');
});

test('resends only as many messages as the queue is short of, the longest-silent first', async () => {
  // Prepare: a fleet of its own (the budget counts every record of the table); three stale
  // QUEUED records, and two messages still waiting in the queue (every slot busy, say).
  const own = await freshFleet({ instances: 0, minSize: 0, maxSize: 1 });
  const now = Date.now();
  const silent = (ago: number) => put(aRecord(now, { created_at: now - ago, message_sent_at: now - ago, updated_at: now - ago }), own);
  const newest = await silent(6 * MIN);
  const oldest = await silent(30 * MIN);
  const middle = await silent(10 * MIN);
  for (const r of [newest, middle]) {
    await own.clients.sqs.send(new SendMessageCommand({ QueueUrl: own.resources.queueUrl, MessageBody: encodeEnvelope(r.task_id, now - MIN) }));
  }
  // Act
  const report = await reconcileOnce(deps({}, own));
  // Assess
  expect(report.errors).toEqual([]);
  expect(report.resent).toEqual([oldest.task_id]);
  expect(report.resendDeferred).toBe(2);
  expect(await eventsOf(oldest.task_id, own)).toEqual([expect.objectContaining({ type: 'MESSAGE_RESENT', detail: expect.objectContaining({ by: 'reconciler' }) })]);
  expect(await eventsOf(middle.task_id, own)).toEqual([]);
  expect(await eventsOf(newest.task_id, own)).toEqual([]);
});

test('a resend whose event row cannot be appended counts as resent and is reported (the message went out: no second one)', async () => {
  // Prepare: a fleet of its own with one lost enqueue, and a pass whose events table does not exist.
  const own = await freshFleet({ instances: 0, minSize: 0, maxSize: 1 });
  const now = Date.now();
  const lost = await put(aRecord(now, { created_at: now - 30 * MIN, message_sent_at: now - 30 * MIN, updated_at: now - 30 * MIN }), own);
  const base = deps({}, own);
  // Act
  const report = await reconcileOnce({ ...base, names: { ...base.names, eventsTable: `${own.resources.eventsTable}-missing` } });
  // Assess
  expect(report.resent).toEqual([lost.task_id]);
  expect(report.errors).toEqual([expect.objectContaining({ task_id: lost.task_id, during: 'resend event', name: 'EventNotRecorded' })]);
  const messages = await own.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: own.resources.queueUrl, MaxNumberOfMessages: 10 }));
  expect((messages.Messages ?? []).map((m) => decodeEnvelope(m.Body)).map((d) => (d.ok ? d.value.task_id : d.problems))).toEqual([lost.task_id]);
});

describe("ABCA's TaskTable (abcaMirror): the ABCA tasks a pass ends", () => {
  /** An ABCA-shaped TaskTable (key `task_id`) and ABCA rows in it, as test/integration/abca.test.ts makes them. */
  async function abcaTable(): Promise<string> {
    const table = `${fleet.resources.fleetName}-abca-${Date.now().toString(36)}`;
    await fleet.clients.ddb.send(new CreateTableCommand({ TableName: table, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'task_id', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'task_id', KeyType: 'HASH' }] }));
    return table;
  }
  const abcaRow = async (table: string, id: string) => (await fleet.clients.ddb.send(new GetCommand({ TableName: table, Key: { task_id: id }, ConsistentRead: true }))).Item;
  const abcaLabelled = (id: string) => ({ image: 'agent-fleet/demo-agent:latest', labels: { [ABCA_TASK_ID_LABEL]: id } });
  const mirrorOn = (table: string) => new AbcaHeartbeatMirror({ ddb: fleet.clients.ddb, table, log: new Logger({}, undefined, 'error', () => undefined) });

  test('FAILED over a non-terminal ABCA status with the pass\'s reason; an ended ABCA record and an unlabelled task are left alone', async () => {
    // Prepare: three tasks the pass will end, two of them ABCA's (one whose ABCA record the agent already ended).
    const now = Date.now();
    const table = await abcaTable();
    const running = `ABCA-RUN-${now}`;
    const done = `ABCA-DONE-${now}`;
    for (const [id, status] of [[running, 'RUNNING'], [done, 'COMPLETED']]) await fleet.clients.ddb.send(new PutCommand({ TableName: table, Item: { task_id: id, status, status_created_at: `${status}#2026-12-03T10:00:00Z` } }));
    const exhausted = await put(aRecord(now, { spec: abcaLabelled(running), attempt: 3, attempts_left: 0 }));
    const orphanCancel = await put(aRecord(now, { spec: abcaLabelled(done), status: TaskStatus.CANCEL_REQUESTED, attempt: 1, attempts_left: 0, instance_id: 'i-0dddddddddddddddd', cancel_requested_at: now - 3 * MIN, lease_expires_at: now - MIN }));
    const plain = await put(aRecord(now, { attempt: 3, attempts_left: 0 }));
    // Act
    const report = await reconcile({}, { abcaMirror: mirrorOn(table) });
    // Assess: the fleet's outcomes, then ABCA's records.
    expect(report.errors).toEqual([]);
    expect(report.failed).toEqual(expect.arrayContaining([exhausted.task_id, plain.task_id]));
    expect(report.cancelled).toContain(orphanCancel.task_id);
    const reason = (await read(exhausted.task_id)).reason!;
    expect(reason).toMatch(/attempts/);
    expect(await abcaRow(table, running)).toMatchObject({ status: 'FAILED', error_message: `fleet task FAILED: ${reason}`, status_created_at: expect.stringMatching(/^FAILED#/), completed_at: expect.any(String) });
    expect(await abcaRow(table, done)).toEqual({ task_id: done, status: 'COMPLETED', status_created_at: 'COMPLETED#2026-12-03T10:00:00Z' });
  });

  test('an ABCA write that fails is an error of the pass (the operator\'s cue); the fleet task still ends', async () => {
    // Prepare: a mirror on a table that does not exist.
    const now = Date.now();
    const task = await put(aRecord(now, { spec: abcaLabelled(`ABCA-LOST-${now}`), attempt: 3, attempts_left: 0 }));
    // Act
    const report = await reconcile({}, { abcaMirror: mirrorOn(`${fleet.resources.fleetName}-no-such-abca-table`) });
    // Assess
    expect(report.failed).toContain(task.task_id);
    expect((await read(task.task_id)).status).toBe('FAILED');
    expect(report.errors).toEqual([expect.objectContaining({ task_id: task.task_id, during: 'abca mirror', name: 'AbcaMirrorFailed' })]);
  });
});
