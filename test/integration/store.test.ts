/**
 * The store (daemon/src/store/) against moto, every conditional branch, on an injected clock:
 * the claim's outcomes (including a takeover whose condition fails and a record that keeps
 * changing), heartbeat and fencing, the terminal write, release falling back to CANCELLED, the
 * client's create / transition / resend, the reconciler's endUnleased, and the TTL rule.
 * Races are played at the SDK boundary: a hook runs another writer's write just before ours
 * reaches moto, so the condition really meets a changed record.
 */
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  DEFAULT_TIMINGS,
  EventType,
  LIMITS,
  TaskStatus,
  newTaskId,
  parseTaskEvent,
  type TaskEvent,
  type TaskRecord,
} from '../../daemon/src/contract';
import { InstanceStore, StoreError, TaskStore, type Lease } from '../../daemon/src/store';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const LEASE_MS = 60_000;
const ME = 'i-0000000000000aaaa';
const OTHER = 'i-0000000000000bbbb';

/** A clock the test moves by hand. */
function manualClock(start = T0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
});

function storeAt(clock: { now: () => number }, ddb: DynamoDBDocumentClient = fleet.clients.ddb, sqs: SQSClient = fleet.clients.sqs): TaskStore {
  return new TaskStore({
    ddb,
    tasksTable: fleet.resources.tasksTable,
    eventsTable: fleet.resources.eventsTable,
    timings: { leaseSeconds: LEASE_MS / 1000 },
    queue: { sqs, queueUrl: fleet.resources.queueUrl },
    now: clock.now,
  });
}

function aRecord(overrides: Partial<TaskRecord> = {}): TaskRecord {
  return { task_id: newTaskId(), status: TaskStatus.QUEUED, spec: { image: 'agent:1' }, created_at: T0, updated_at: T0, attempt: 0, attempts_left: DEFAULT_TIMINGS.maxAttempts, ...overrides };
}

async function created(store: TaskStore, overrides: Partial<TaskRecord> = {}): Promise<TaskRecord> {
  const record = aRecord(overrides);
  expect(await store.create(record)).toBe('created');
  return record;
}

async function recordOf(store: TaskStore, taskId: string): Promise<TaskRecord> {
  const { record } = await store.get(taskId);
  if (!record) throw new Error(`no record for ${taskId}`);
  return record;
}

async function eventsOf(taskId: string): Promise<TaskEvent[]> {
  const res = await fleet.clients.ddb.send(new QueryCommand({ TableName: fleet.resources.eventsTable, KeyConditionExpression: 'task_id = :t', ExpressionAttributeValues: { ':t': taskId }, ConsistentRead: true }));
  return (res.Items ?? []).map((i) => {
    const e = parseTaskEvent(i);
    if (!e.ok) throw new Error(e.problems.join('; '));
    return e.value;
  });
}

/**
 * A DynamoDB client that runs `before` once, just before the first command named `commandName`
 * is sent: another writer acting between our read and our write.
 */
function withRaceBefore(commandName: string, before: () => Promise<unknown>): DynamoDBDocumentClient {
  const ddb = fleet.clients.ddb;
  let fired = false;
  return {
    send: async (command: { constructor: { name: string } }) => {
      if (!fired && command.constructor.name === commandName) {
        fired = true;
        await before();
      }
      return ddb.send(command as never);
    },
  } as unknown as DynamoDBDocumentClient;
}

async function claimed(store: TaskStore, instanceId = ME): Promise<{ record: TaskRecord; lease: Lease }> {
  const record = await created(store);
  const outcome = await store.claim(record.task_id, instanceId);
  if (outcome.kind !== 'claimed') throw new Error(`expected a claim, got ${outcome.kind}`);
  return { record: outcome.record, lease: outcome.lease };
}

describe('create', () => {
  test('writes the QUEUED record and its SUBMITTED event (with a TTL) in one transaction; a second create of the id writes nothing', async () => {
    const store = storeAt(manualClock());
    const record = await created(store);
    expect(await store.create({ ...record, spec: { image: 'other:1' } })).toBe('exists');
    expect((await recordOf(store, record.task_id)).spec).toEqual({ image: 'agent:1' });
    const events = await eventsOf(record.task_id);
    expect(events).toEqual([expect.objectContaining({ type: EventType.SUBMITTED, status: TaskStatus.QUEUED, at: T0 })]);
    expect(events[0].expires_at).toBe(Math.floor(T0 / 1000) + 30 * 86400);
  });
});

describe('claim', () => {
  test('a QUEUED task: CLAIMED at attempt 1 with a lease, an attempt spent, a CLAIMED event', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const record = await created(store);
    const outcome = await store.claim(record.task_id, ME);
    expect(outcome).toMatchObject({ kind: 'claimed', takeover: false, lease: { taskId: record.task_id, instanceId: ME, attempt: 1 } });
    const now = await recordOf(store, record.task_id);
    expect(now).toMatchObject({ status: TaskStatus.CLAIMED, attempt: 1, attempts_left: DEFAULT_TIMINGS.maxAttempts - 1, instance_id: ME, lease_expires_at: T0 + LEASE_MS, claimed_at: T0 });
    expect((await eventsOf(record.task_id)).map((e) => e.type)).toEqual([EventType.SUBMITTED, EventType.CLAIMED]);
  });

  test('no record: missing; an invalid record: invalid-record with the problems', async () => {
    const store = storeAt(manualClock());
    expect(await store.claim(newTaskId(), ME)).toEqual({ kind: 'missing' });
    const bad = aRecord();
    await store.create(bad);
    // An invalid record can only come from another tool; moto's raw client plays it.
    await fleet.clients.ddb.send(new UpdateCommand({ TableName: fleet.resources.tasksTable, Key: { task_id: bad.task_id }, UpdateExpression: 'SET attempt = :x', ExpressionAttributeValues: { ':x': 'three' } }));
    const outcome = await store.claim(bad.task_id, ME);
    expect(outcome.kind).toBe('invalid-record');
  });

  test('a live lease elsewhere: leased, nothing written', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const { record } = await claimed(store, OTHER);
    clock.advance(LEASE_MS - 1);
    expect(await store.claim(record.task_id, ME)).toMatchObject({ kind: 'leased', record: { instance_id: OTHER, attempt: 1 } });
    expect((await recordOf(store, record.task_id)).attempt).toBe(1);
  });

  test('an expired lease: taken over at attempt 2 with a TAKEN_OVER event naming the previous instance', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const { record } = await claimed(store, OTHER);
    clock.advance(LEASE_MS + 1);
    expect(await store.claim(record.task_id, ME)).toMatchObject({ kind: 'claimed', takeover: true, lease: { attempt: 2, instanceId: ME } });
    const events = await eventsOf(record.task_id);
    expect(events.at(-1)).toMatchObject({ type: EventType.TAKEN_OVER, attempt: 2, instance_id: ME, detail: { previous_instance: OTHER, takeover: 1, attempt_refunded: 1 } });
  });

  test('a takeover refunds the attempt the dead owner spent: attempts_left is as before the takeover, even on the last attempt', async () => {
    // Prepare: OTHER claims the task's last attempt (attempts_left 1 → 0), then stops heartbeating.
    const clock = manualClock();
    const store = storeAt(clock);
    const record = await created(store, { attempt: 2, attempts_left: 1 });
    expect(await store.claim(record.task_id, OTHER)).toMatchObject({ kind: 'claimed', takeover: false, record: { attempts_left: 0 } });
    clock.advance(LEASE_MS + 1);
    // Act: its lease expired; we take it over.
    const outcome = await store.claim(record.task_id, ME);
    // Assess: claimed (not FAILED for attempts), attempt 4, OTHER's attempt given back and ours spent.
    expect(outcome).toMatchObject({ kind: 'claimed', takeover: true, lease: { attempt: 4, instanceId: ME }, record: { attempts_left: 0, takeovers: 1 } });
    expect(await recordOf(store, record.task_id)).toMatchObject({ status: TaskStatus.CLAIMED, attempt: 4, attempts_left: 0, takeovers: 1, instance_id: ME });
  });

  test(`takeovers are capped (${LIMITS.maxTakeovers}): a task whose every host dies ends FAILED with a reason naming the takeovers`, async () => {
    // Prepare: the task is claimed, then taken over LIMITS.maxTakeovers times, each owner dying.
    const clock = manualClock();
    const store = storeAt(clock);
    const { record } = await claimed(store, OTHER);
    for (let i = 1; i <= LIMITS.maxTakeovers; i++) {
      clock.advance(LEASE_MS + 1);
      expect(await store.claim(record.task_id, i % 2 ? ME : OTHER)).toMatchObject({ kind: 'claimed', takeover: true, record: { takeovers: i, attempts_left: DEFAULT_TIMINGS.maxAttempts - 1 } });
    }
    clock.advance(LEASE_MS + 1);
    // Act: one takeover past the cap.
    const outcome = await store.claim(record.task_id, 'i-0000000000000cccc');
    // Assess: FAILED, not claimed; the reason and the FAILED event name the takeovers.
    const reason = `takeovers exhausted: taken over ${LIMITS.maxTakeovers} time(s) (the cap is ${LIMITS.maxTakeovers})`;
    expect(outcome).toMatchObject({ kind: 'ended', status: TaskStatus.FAILED, reason: expect.stringContaining(reason) });
    const after = await recordOf(store, record.task_id);
    expect(after).toMatchObject({ status: TaskStatus.FAILED, attempt: LIMITS.maxTakeovers + 1, takeovers: LIMITS.maxTakeovers, reason: expect.stringContaining(reason) });
    expect(after.lease_expires_at).toBeUndefined();
    expect((await eventsOf(record.task_id)).at(-1)).toMatchObject({ type: EventType.FAILED, detail: { by: 'i-0000000000000cccc', reason: expect.stringContaining(reason) } });
  });

  test('a takeover whose condition fails: the old owner heartbeats between our read and our write, and keeps its task', async () => {
    // Prepare: OTHER's lease has expired when we read; it heartbeats just before our write lands.
    const clock = manualClock();
    const owner = storeAt(clock);
    const { record, lease } = await claimed(owner, OTHER);
    clock.advance(LEASE_MS + 1);
    let ownerBeat: Awaited<ReturnType<TaskStore['heartbeat']>> | undefined;
    const racing = storeAt(clock, withRaceBefore('TransactWriteCommand', async () => {
      // The owner's heartbeat happens "later" than our read: its lease moves past our now.
      const later = storeAt({ now: () => clock.now() + 1000 });
      ownerBeat = await later.heartbeat(lease);
    }));
    // Act
    const outcome = await racing.claim(record.task_id, ME);
    // Assess: the first round lost its condition; the second round sees a live lease.
    expect(ownerBeat).toEqual({ kind: 'ok', status: TaskStatus.CLAIMED });
    expect(outcome).toMatchObject({ kind: 'leased', record: { instance_id: OTHER, attempt: 1 } });
    expect((await recordOf(owner, record.task_id)).attempt).toBe(1);
  });

  test('a record that changes under both rounds: contended, the message left for a later receive', async () => {
    const clock = manualClock();
    const setup = storeAt(clock);
    const record = await created(setup);
    // Before each of our two claim writes, another daemon claims and releases the task
    // (attempt +1, back to claimable): each of our reads is stale by the time we write.
    let rounds = 0;
    const ddb = fleet.clients.ddb;
    const racer = {
      send: async (command: { constructor: { name: string } }) => {
        if (command.constructor.name === 'TransactWriteCommand' && rounds < 2) {
          rounds++;
          const other = storeAt(clock);
          const got = await other.claim(record.task_id, OTHER);
          if (got.kind !== 'claimed') throw new Error(`racer could not claim: ${got.kind}`);
          await other.release(got.lease, 'racer released');
        }
        return ddb.send(command as never);
      },
    } as unknown as DynamoDBDocumentClient;
    const outcome = await storeAt(clock, racer).claim(record.task_id, ME);
    expect(outcome).toEqual({ kind: 'contended' });
    expect(await recordOf(setup, record.task_id)).toMatchObject({ status: TaskStatus.INTERRUPTED, attempt: 2 });
  });

  test('CANCEL_REQUESTED with its lease expired: ended CANCELLED by the claimer', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const { lease } = await claimed(store, OTHER);
    expect(await storeAt(clock).requestCancel(lease, 'test')).toBe(true);
    clock.advance(LEASE_MS + 1);
    const outcome = await store.claim(lease.taskId, ME);
    expect(outcome).toMatchObject({ kind: 'ended', status: TaskStatus.CANCELLED });
    const record = await recordOf(store, lease.taskId);
    expect(record.status).toBe(TaskStatus.CANCELLED);
    expect(record.expires_at).toBe(Math.floor(clock.now() / 1000) + 30 * 86400);
  });

  test('no attempts left: ended FAILED with a reason naming the attempts', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const record = await created(store, { attempts_left: 0, attempt: 3, status: TaskStatus.QUEUED });
    const outcome = await store.claim(record.task_id, ME);
    expect(outcome).toMatchObject({ kind: 'ended', status: TaskStatus.FAILED, reason: expect.stringMatching(/attempts exhausted: 3 attempt/) });
  });

  test('a terminal task: terminal, nothing written', async () => {
    const store = storeAt(manualClock());
    const { lease } = await claimed(store);
    expect(await store.finish(lease, TaskStatus.FAILED, { reason: 'x' })).toBe(true);
    expect(await store.claim(lease.taskId, OTHER)).toMatchObject({ kind: 'terminal', record: { status: TaskStatus.FAILED, attempt: 1 } });
    expect((await recordOf(store, lease.taskId)).instance_id).toBe(ME);
  });
});

describe('after the claim: fenced writes', () => {
  test('markRunning: RUNNING (the container id follows with the first heartbeat); a cancel first: cancel-requested; another attempt: fenced', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const a = await claimed(store);
    expect(await store.markRunning(a.lease)).toBe('ok');
    expect(await recordOf(store, a.lease.taskId)).toMatchObject({ status: TaskStatus.RUNNING, started_at: T0 });
    expect(await store.heartbeat(a.lease, { container_id: 'c1' })).toEqual({ kind: 'ok', status: TaskStatus.RUNNING });
    expect(await recordOf(store, a.lease.taskId)).toMatchObject({ status: TaskStatus.RUNNING, container_id: 'c1', started_at: T0 });

    const b = await claimed(store);
    expect(await store.requestCancel(b.lease, 'socket')).toBe(true);
    expect(await store.markRunning(b.lease)).toBe('cancel-requested');

    const c = await claimed(store);
    expect(await store.markRunning({ ...c.lease, attempt: c.lease.attempt + 1 })).toBe('fenced');
    expect(await store.markRunning({ ...c.lease, instanceId: OTHER })).toBe('fenced');
  });

  test('heartbeat: moves the lease and reports the status (a cancel request is read on the beat); fenced once another attempt owns it', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const { lease } = await claimed(store);
    clock.advance(20_000);
    expect(await store.heartbeat(lease)).toEqual({ kind: 'ok', status: TaskStatus.CLAIMED });
    expect((await recordOf(store, lease.taskId)).lease_expires_at).toBe(T0 + 20_000 + LEASE_MS);
    await store.requestCancel(lease, 'client');
    expect(await store.heartbeat(lease)).toEqual({ kind: 'ok', status: TaskStatus.CANCEL_REQUESTED });

    const second = await claimed(store);
    clock.advance(LEASE_MS + 1);
    const takeover = await storeAt(clock).claim(second.lease.taskId, OTHER);
    expect(takeover.kind).toBe('claimed');
    expect(await store.heartbeat(second.lease)).toMatchObject({ kind: 'fenced', record: { instance_id: OTHER, attempt: 2 } });
  });

  test('finish: one fenced terminal write with its event and TTL; a stale attempt writes nothing', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const { lease } = await claimed(store);
    await store.markRunning(lease);
    expect(await store.finish({ ...lease, attempt: 99 }, TaskStatus.COMPLETED, { exit_code: 0 })).toBe(false);
    clock.advance(5000);
    expect(await store.finish(lease, TaskStatus.COMPLETED, { exit_code: 0, result: { ok: true } })).toBe(true);
    const record = await recordOf(store, lease.taskId);
    expect(record).toMatchObject({ status: TaskStatus.COMPLETED, exit_code: 0, result: { ok: true }, finished_at: T0 + 5000, expires_at: Math.floor((T0 + 5000) / 1000) + 30 * 86400 });
    expect(record.lease_expires_at).toBeUndefined();
    expect((await eventsOf(lease.taskId)).at(-1)).toMatchObject({ type: EventType.COMPLETED, detail: { exit_code: 0 } });
    await expect(store.finish(lease, TaskStatus.RUNNING, {})).rejects.toBeInstanceOf(StoreError);
  });

  test('release: INTERRUPTED with the attempt refunded; without refund when asked; CANCELLED when a cancel came first', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const a = await claimed(store);
    expect(await store.release(a.lease, 'drain')).toBe('released');
    expect(await recordOf(store, a.lease.taskId)).toMatchObject({ status: TaskStatus.INTERRUPTED, attempts_left: DEFAULT_TIMINGS.maxAttempts, reason: 'drain' });

    const b = await claimed(store);
    expect(await store.release(b.lease, 'engine 500', { refund: false })).toBe('released');
    expect((await recordOf(store, b.lease.taskId)).attempts_left).toBe(DEFAULT_TIMINGS.maxAttempts - 1);

    const c = await claimed(store);
    await store.requestCancel(c.lease, 'client');
    expect(await store.release(c.lease, 'drain')).toBe('cancelled');
    expect((await recordOf(store, c.lease.taskId)).status).toBe(TaskStatus.CANCELLED);

    const d = await claimed(store);
    expect(await store.release({ ...d.lease, attempt: 7 }, 'drain')).toBe('fenced');
  });

});

describe('the client and the reconciler', () => {
  test('transitionSeen: a cancel of a QUEUED task lands; one racing a claim loses', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const a = await created(store);
    expect(await store.transitionSeen(a, TaskStatus.CANCELLED, { reason: 'by client' }, { type: EventType.CANCELLED, detail: { by: 'client' } })).toBe(true);
    expect(await recordOf(store, a.task_id)).toMatchObject({ status: TaskStatus.CANCELLED, expires_at: expect.any(Number), finished_at: T0 });

    const b = await created(store);
    await store.claim(b.task_id, ME);
    expect(await store.transitionSeen(b, TaskStatus.CANCELLED, {}, { type: EventType.CANCELLED, detail: {} })).toBe(false);
    expect((await recordOf(store, b.task_id)).status).toBe(TaskStatus.CLAIMED);
  });

  test('endUnleased: refused while the lease is live, and when a late heartbeat lands between read and write', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const { lease } = await claimed(store, OTHER);
    const read = await recordOf(store, lease.taskId);
    expect(await store.endUnleased(read, TaskStatus.FAILED, 'gone', 'reconciler')).toBe(false);

    clock.advance(LEASE_MS + 1);
    const stale = await recordOf(store, lease.taskId);
    const racing = storeAt(clock, withRaceBefore('TransactWriteCommand', () => storeAt({ now: () => clock.now() + 1000 }).heartbeat(lease)));
    expect(await racing.endUnleased(stale, TaskStatus.FAILED, 'gone', 'reconciler')).toBe(false);
    expect((await recordOf(store, lease.taskId)).status).toBe(TaskStatus.CLAIMED);

    clock.advance(2 * LEASE_MS);
    const abandoned = await recordOf(store, lease.taskId);
    expect(await store.endUnleased(abandoned, TaskStatus.FAILED, 'gone', 'reconciler')).toBe(true);
    expect((await eventsOf(lease.taskId)).at(-1)).toMatchObject({ type: EventType.FAILED, detail: { by: 'reconciler', reason: 'gone' } });
  });

  test('resend: records the send then sends; a second sender with the same reading sends nothing; never for a terminal task', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const record = await created(store);
    const before = await queueDepth();
    expect(await store.resend(record, { why: 'lost enqueue', by: 'reconciler', event: true })).toBe('sent');
    expect(await store.resend(record, { why: 'lost enqueue', by: 'client' })).toBe('raced');
    expect(await queueDepth()).toBe(before + 1);
    const after = await recordOf(store, record.task_id);
    expect(after.message_sent_at).toBe(T0);
    expect((await eventsOf(record.task_id)).at(-1)).toMatchObject({ type: EventType.MESSAGE_RESENT, detail: { by: 'reconciler' } });

    const { lease } = await claimed(store);
    await store.finish(lease, TaskStatus.FAILED, { reason: 'x' });
    expect(await store.resend(await recordOf(store, lease.taskId), { why: 'x', by: 'client' })).toBe('ended');
  });

  test('resend with requeue: INTERRUPTED back to QUEUED with a REQUEUED event', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const { lease } = await claimed(store);
    await store.release(lease, 'spot');
    const interrupted = await recordOf(store, lease.taskId);
    expect(await store.resend(interrupted, { why: 'release message lost', by: 'reconciler', requeue: true })).toBe('sent');
    expect((await recordOf(store, lease.taskId)).status).toBe(TaskStatus.QUEUED);
    expect((await eventsOf(lease.taskId)).map((e) => e.type)).toContain(EventType.REQUEUED);
  });

  test('resend whose event row cannot be appended: still sent and recorded, and says so (a caller must not send again)', async () => {
    // Prepare: a store whose events table does not exist (the append fails for real on moto).
    const clock = manualClock();
    const store = storeAt(clock);
    const record = await created(store);
    const before = await queueDepth();
    const noEvents = new TaskStore({ ddb: fleet.clients.ddb, tasksTable: fleet.resources.tasksTable, eventsTable: `${fleet.resources.eventsTable}-missing`, timings: { leaseSeconds: LEASE_MS / 1000 }, queue: { sqs: fleet.clients.sqs, queueUrl: fleet.resources.queueUrl }, now: clock.now });
    // Act
    const outcome = await noEvents.resend(record, { why: 'lost enqueue', by: 'reconciler', event: true });
    // Assess
    expect(outcome).toBe('sent-without-event');
    expect(await queueDepth()).toBe(before + 1);
    expect((await recordOf(store, record.task_id)).message_sent_at).toBe(T0);
    expect((await eventsOf(record.task_id)).map((e) => e.type)).not.toContain(EventType.MESSAGE_RESENT);
  });

  test('resend whose send fails: the recorded send time is put back, so the task looks stale again at once', async () => {
    const clock = manualClock();
    const store = storeAt(clock);
    const record = await created(store);
    const broken = new SQSClient({ region: fleet.resources.region, endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
    const failing = storeAt(clock, fleet.clients.ddb, broken);
    await expect(failing.resend(record, { why: 'x', by: 'client' })).rejects.toBeInstanceOf(StoreError);
    expect((await recordOf(store, record.task_id)).message_sent_at).toBeUndefined();
    broken.destroy();
  });
});

test('instance rows expire by the TTL rule (7 days after the last write)', async () => {
  const rows = new InstanceStore({ ddb: fleet.clients.ddb, instancesTable: fleet.resources.instancesTable });
  await rows.put({ instance_id: ME, status: 'idle', updated_at: T0, heartbeat_at: T0 });
  const row = await fleet.clients.ddb.send(new GetCommand({ TableName: fleet.resources.instancesTable, Key: { instance_id: ME } }));
  expect(row.Item?.expires_at).toBe(Math.floor(T0 / 1000) + 7 * 86400);
});

async function queueDepth(): Promise<number> {
  const res = await fleet.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: fleet.resources.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
}
