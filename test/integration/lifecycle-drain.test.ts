/**
 * Drains of real fleetd processes on real Docker + moto + the project's IMDS server: SIGTERM
 * (tasks finish within the budget; past it they are released and another daemon completes
 * them; exit 0), a second signal, and the spot interruption notice.
 */
import { ReceiveMessageCommand, ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import { EventType, TaskStatus, isTerminal, type TaskSpecInput } from '../../daemon/src/contract';
import { sendControlRequest } from '../../daemon/src/control';
import { FleetClient } from '../../scripts/lib/client';
import { setImdsOverrides } from '../../scripts/dev/local/imds-server';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
let client: FleetClient;
const daemons: TestDaemon[] = [];

function demoSpec(sleepS: number): TaskSpecInput {
  return { image: fleet.demoImage, payload: { prompt: 'drain' }, env: { DEMO_SLEEP_S: String(sleepS) }, memory_mb: 128, cpus: 0.5 };
}

function daemon(instanceIndex: number, overrides = {}): TestDaemon {
  const d = new TestDaemon(fleet, fleet.resources.instanceIds[instanceIndex], overrides).start();
  daemons.push(d);
  return d;
}

/** This task's container started on that daemon (a leftover of another test cannot match). */
function started(d: TestDaemon, taskId: string): Promise<string> {
  return d.waitForLog(new RegExp(`"msg":"container started".*"task_id":"${taskId}"`), 60_000);
}

async function terminalEvents(taskId: string) {
  return (await client.listEvents(taskId)).filter((e) => isTerminal(e.type as TaskStatus));
}

beforeAll(async () => {
  fleet = await freshFleet({ instances: 2 });
  client = new FleetClient(fleet.clients, fleet.resources);
});

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

test('SIGTERM: receiving stops at once, the running task finishes within the budget, exit 0', async () => {
  // Prepare
  const a = daemon(0, { drainBudgetSeconds: 60 });
  await a.ready();
  const first = await client.submitTask(demoSpec(4));
  await started(a, first.taskId);
  // Act: SIGTERM mid-task, then a second task arrives during the drain.
  const exit = a.stop();
  await a.waitForLog(/"msg":"draining"/);
  const second = await client.submitTask(demoSpec(1));
  const code = await exit;
  // Assess: A finished its task, took nothing new, exited 0.
  expect(code).toBe(0);
  const record = await client.getTask(first.taskId);
  expect(record?.status).toBe(TaskStatus.COMPLETED);
  expect(record?.attempt).toBe(1);
  const untouched = await client.getTask(second.taskId);
  expect(untouched?.status).toBe(TaskStatus.QUEUED);
  expect(untouched?.attempt).toBe(0);
  // Another daemon serves what A left.
  const b = daemon(1);
  const done = await client.waitForTerminal(second.taskId, { timeoutMs: 60_000 });
  expect(done.status).toBe(TaskStatus.COMPLETED);
  expect(done.instance_id).toBe(b.instanceId);
});

test('SIGTERM past the budget: the task is released (INTERRUPTED, message visible at once), exit 0, a second daemon completes it; one terminal state', async () => {
  // Prepare: a long lease, so a message not made visible by the release would stay hidden 60 s.
  const a = daemon(0, { drainBudgetSeconds: 2, timings: { leaseSeconds: 60, heartbeatSeconds: 2 } });
  await a.ready();
  const { taskId } = await client.submitTask(demoSpec(10));
  await started(a, taskId);
  // Act
  const code = await a.stop();
  const released = await client.getTask(taskId);
  const visible = await fleet.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: fleet.resources.queueUrl, WaitTimeSeconds: 5, VisibilityTimeout: 1 }));
  await Promise.all((visible.Messages ?? []).map((m) => fleet.clients.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: fleet.resources.queueUrl, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 }))));
  const b = daemon(1);
  const record = await client.waitForTerminal(taskId, { timeoutMs: 90_000 });
  // Assess
  expect(code).toBe(0);
  expect(released?.status).toBe(TaskStatus.INTERRUPTED);
  expect(released?.reason).toBe('SIGTERM received: drain budget of 2 s spent');
  expect(visible.Messages ?? []).toHaveLength(1);
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(record.instance_id).toBe(b.instanceId);
  expect(record.attempt).toBe(2);
  const types = (await client.listEvents(taskId)).map((e) => e.type);
  expect(types).toEqual([EventType.SUBMITTED, EventType.CLAIMED, EventType.RUNNING, EventType.INTERRUPTED, EventType.CLAIMED, EventType.RUNNING, EventType.COMPLETED]);
  expect(await terminalEvents(taskId)).toHaveLength(1);
});

test('a second SIGTERM releases at once, whatever the budget; exit 0', async () => {
  const a = daemon(0, { drainBudgetSeconds: 600 });
  await a.ready();
  const { taskId } = await client.submitTask(demoSpec(60));
  await started(a, taskId);
  process.kill(a.pid!, 'SIGTERM');
  await a.waitForLog(/"msg":"draining"/);
  const code = await a.stop();
  const record = await client.getTask(taskId);
  expect(code).toBe(0);
  expect(record?.status).toBe(TaskStatus.INTERRUPTED);
  expect(record?.reason).toBe('SIGTERM received twice');
  // Leave nothing for the next test: an INTERRUPTED task is cancelled at once.
  await client.cancelTask(taskId);
});

test('spot interruption notice: receiving stops and the running task is released at once; another daemon completes it; status says why', async () => {
  // Prepare: the default budget (600 s) would let the task run on: a spot notice must not wait.
  // The first attempt would run for 2 minutes, a later one ends at once.
  const a = daemon(0);
  await a.ready();
  const { taskId } = await client.submitTask({ ...demoSpec(0), command: ['/bin/sh', '-c', 'if [ "$FLEET_ATTEMPT" = 1 ]; then sleep 120; fi; echo "attempt $FLEET_ATTEMPT done"'] });
  await started(a, taskId);
  const b = daemon(1);
  // Act
  await setImdsOverrides(fleet.imdsUrl, a.instanceId, { spotAction: { action: 'terminate', time: new Date(Date.now() + 120_000).toISOString() } });
  const record = await client.waitForTerminal(taskId, { timeoutMs: 90_000 });
  const status = await sendControlRequest(a.socketPath, { cmd: 'status' });
  // Assess
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(record.instance_id).toBe(b.instanceId);
  expect(record.attempt).toBe(2);
  const events = await client.listEvents(taskId);
  const interrupted = events.find((e) => e.type === EventType.INTERRUPTED);
  expect(interrupted?.instance_id).toBe(a.instanceId);
  expect(interrupted?.detail?.reason).toMatch(/^spot interruption notice \(terminate at /);
  expect(await terminalEvents(taskId)).toHaveLength(1);
  expect(record.log_tail?.trim()).toBe('attempt 2 done');
  expect(status).toMatchObject({ ok: true, receiving: false, draining: true, interruption: { kind: 'spot', action: 'terminate' }, not_claiming: expect.stringMatching(/^draining: spot interruption notice/), tasks: [] });
  // Stays up (status answers) until shutdown; SIGTERM then exits 0.
  expect(await a.stop()).toBe(0);
});
