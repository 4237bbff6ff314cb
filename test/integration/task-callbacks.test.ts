/**
 * Step Functions callbacks (docs/integration.md): a task submitted through the intake with a
 * task token gets exactly one SendTaskSuccess or SendTaskFailure with the right payload, from
 * the tasks stream's consumer, and none while it is INTERRUPTED and retried. The local intake
 * runner runs in this process so its Step Functions client can carry a recorder at the SDK
 * boundary (moto accepts SendTask* for any token and records nothing); the test plays fleetd's
 * part with the store (claim, RUNNING, heartbeats, release, finish) on a clock it sets.
 */
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { TaskStatus, stateChangeEventId, taskIdForIdempotencyKey, type TaskRecord } from '../../daemon/src/contract';
import { TaskStore, type Lease } from '../../daemon/src/store';
import { IntakeRunner } from '../../scripts/dev/local/intake-runner';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

interface SfnCall {
  readonly command: string;
  readonly input: { taskToken?: string; output?: string; error?: string; cause?: string };
}

const HEARTBEAT_SECONDS = 300;
let fleet: TestFleet;
let runner: IntakeRunner;
const calls: SfnCall[] = [];
const lines: Record<string, unknown>[] = [];
let clock = 0;
let store: TaskStore;

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
  const base = { region: fleet.clients.region };
  const sfn = new SFNClient(base);
  sfn.middlewareStack.add(
    (next, context) => async (args) => {
      calls.push({ command: (context.commandName ?? '').replace(/Command$/, ''), input: { ...(args.input as SfnCall['input']) } });
      return next(args);
    },
    { step: 'initialize', name: 'testRecordSfnCalls' },
  );
  runner = new IntakeRunner({
    clients: { ...fleet.clients, streams: new DynamoDBStreamsClient(base), eventbridge: new EventBridgeClient(base), sfn },
    names: { ...fleet.resources, intakeQueueUrl: fleet.resources.intakeQueueUrl, intakeDlqUrl: fleet.resources.intakeDlqUrl },
    taskEvents: { fleetName: fleet.resources.fleetName, heartbeatSeconds: HEARTBEAT_SECONDS },
    from: 'trim-horizon',
    waitSeconds: 1,
    log: (line) => lines.push(line),
  }).start();
  // The store as fleetd holds it, on a clock the test moves (heartbeat windows are 5 minutes).
  store = new TaskStore({ ddb: fleet.clients.ddb, tasksTable: fleet.resources.tasksTable, eventsTable: fleet.resources.eventsTable, timings: { leaseSeconds: 60 }, now: () => clock });
});

afterAll(async () => {
  await runner?.stop();
});

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; runner said:\n${lines.slice(-10).map((l) => JSON.stringify(l)).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The runner has handled the stream record of this state (its event is published). Matched on
 * task, attempt and status: the record read here may already carry a later `updated_at` than the
 * transition's own (a submit's send time is recorded right after the QUEUED record is created).
 */
async function published(record: Pick<TaskRecord, 'task_id' | 'attempt' | 'status' | 'updated_at'>): Promise<void> {
  const id = stateChangeEventId(record);
  const state = id.slice(0, id.lastIndexOf(':') + 1);
  await until(`event ${state}*`, () => (lines.some((l) => l.event === 'task-events.published' && typeof l.event_id === 'string' && l.event_id.startsWith(state)) ? true : undefined));
}

async function current(taskId: string): Promise<TaskRecord> {
  return (await store.get(taskId)).record!;
}

/** Submits through the intake queue with a task token; resolves with the QUEUED record. */
async function submitWithToken(key: string, token: string): Promise<TaskRecord> {
  await fleet.clients.sqs.send(new SendMessageCommand({
    QueueUrl: fleet.resources.intakeQueueUrl,
    MessageBody: JSON.stringify({ v: 1, idempotency_key: key, task_token: token, spec: { image: fleet.demoImage, memory_mb: 128, timeout_s: 60 } }),
  }));
  const taskId = taskIdForIdempotencyKey(key);
  const record = await until(`record ${taskId}`, async () => (await store.get(taskId)).record);
  expect(record.task_token).toBe(token);
  return record;
}

/** A clock just after the start of a heartbeat window, at or after real time. */
function windowStart(): number {
  const w = HEARTBEAT_SECONDS * 1000;
  return (Math.floor(Date.now() / w) + 1) * w + 1000;
}

const callsFor = (token: string) => calls.filter((c) => c.input.taskToken === token);

test('a task INTERRUPTED and retried gets heartbeats while running, no outcome until it ends, then exactly one SendTaskSuccess with its result', async () => {
  const token = `token-success-${Date.now()}`;
  const queued = await submitWithToken(`sfn-success-${Date.now()}`, token);
  const taskId = queued.task_id;
  await published(queued);
  // Attempt 1: claimed, RUNNING (one heartbeat), lease heartbeats within the window (none), released.
  clock = windowStart();
  const claim1 = await store.claim(taskId, 'i-0000000000000aaa1');
  expect(claim1.kind).toBe('claimed');
  const lease1: Lease = (claim1 as { lease: Lease }).lease;
  clock += 1000;
  expect(await store.markRunning(lease1)).toBe('ok');
  clock += 30_000;
  await store.heartbeat(lease1);
  clock += 30_000;
  await store.heartbeat(lease1);
  clock += 1000;
  expect(await store.release(lease1, 'spot interruption (test)')).toBe('released');
  const interrupted = await current(taskId);
  expect(interrupted.status).toBe(TaskStatus.INTERRUPTED);
  await published(interrupted);
  // Assess: while INTERRUPTED, only the one heartbeat of the RUNNING transition.
  expect(callsFor(token).map((c) => c.command)).toEqual(['SendTaskHeartbeat']);
  // Attempt 2: claimed again, RUNNING (a heartbeat), a lease heartbeat in the next window (a heartbeat), COMPLETED.
  clock += 1000;
  const claim2 = await store.claim(taskId, 'i-0000000000000aaa2');
  const lease2: Lease = (claim2 as { lease: Lease }).lease;
  expect(lease2.attempt).toBe(2);
  clock += 1000;
  expect(await store.markRunning(lease2)).toBe('ok');
  clock += HEARTBEAT_SECONDS * 1000;
  await store.heartbeat(lease2);
  clock += 1000;
  expect(await store.finish(lease2, TaskStatus.COMPLETED, { exit_code: 0, duration_ms: 4321, result: { summary: 'done', n: 3 } })).toBe(true);
  const done = await current(taskId);
  await published(done);
  await until('the success callback', () => (callsFor(token).some((c) => c.command === 'SendTaskSuccess') ? true : undefined));
  // Assess
  expect(callsFor(token).map((c) => c.command)).toEqual(['SendTaskHeartbeat', 'SendTaskHeartbeat', 'SendTaskHeartbeat', 'SendTaskSuccess']);
  const success = callsFor(token)[3];
  expect(JSON.parse(success.input.output!)).toEqual({ task_id: taskId, status: 'COMPLETED', attempt: 2, exit_code: 0, duration_ms: 4321, result: { summary: 'done', n: 3 } });
  expect(calls.filter((c) => c.input.taskToken === token && c.command === 'SendTaskFailure')).toEqual([]);
});

test('a FAILED task gets exactly one SendTaskFailure: the status as error, the reason as cause (cut to 32,768 characters)', async () => {
  const token = `token-failure-${Date.now()}`;
  const queued = await submitWithToken(`sfn-failure-${Date.now()}`, token);
  clock = Math.max(clock, Date.now()) + 1000;
  const claim = await store.claim(queued.task_id, 'i-0000000000000bbb1');
  const lease: Lease = (claim as { lease: Lease }).lease;
  clock += 1000;
  await store.markRunning(lease);
  clock += 1000;
  const reason = `agent exited 2: ${'x'.repeat(40_000)}`;
  await store.finish(lease, TaskStatus.FAILED, { exit_code: 2, reason });
  await published(await current(queued.task_id));
  await until('the failure callback', () => (callsFor(token).some((c) => c.command === 'SendTaskFailure') ? true : undefined));
  const outcomes = callsFor(token).filter((c) => c.command !== 'SendTaskHeartbeat');
  expect(outcomes).toEqual([{ command: 'SendTaskFailure', input: { taskToken: token, error: 'FAILED', cause: reason.slice(0, 32_768) } }]);
});

test('a task cancelled while QUEUED gets one SendTaskFailure CANCELLED, and no heartbeat', async () => {
  const token = `token-cancel-${Date.now()}`;
  const queued = await submitWithToken(`sfn-cancel-${Date.now()}`, token);
  clock = Math.max(clock, Date.now()) + 1000;
  expect(await store.transitionSeen(queued, TaskStatus.CANCELLED, { reason: 'cancelled by test before it started' }, { type: 'CANCELLED', detail: { by: 'test' } })).toBe(true);
  await published(await current(queued.task_id));
  await until('the failure callback', () => (callsFor(token).length > 0 ? true : undefined));
  expect(callsFor(token)).toEqual([{ command: 'SendTaskFailure', input: { taskToken: token, error: 'CANCELLED', cause: 'cancelled by test before it started' } }]);
});
