/**
 * fleetd on real Docker + moto: the task lifecycle end to end, each outcome, and the
 * exactly-once guarantees (duplicate delivery, two daemons, kill -9 and takeover).
 */
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { DescribeTagsCommand } from '@aws-sdk/client-ec2';
import { CONTAINER_LABELS, EventType, TaskStatus, encodeEnvelope, tagKeys, type TaskSpecInput } from '../../daemon/src/contract';
import { RUNNING_ONLY_WAIT_MS } from '../../daemon/src/instance';
import { FleetClient } from '../../scripts/lib/client';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
let client: FleetClient;
const daemons: TestDaemon[] = [];

function demoSpec(env: Record<string, string> = {}, extra: Partial<TaskSpecInput> = {}): TaskSpecInput & Record<string, unknown> {
  return { image: fleet.demoImage, payload: { prompt: 'fix the bug' }, env: { DEMO_SLEEP_S: '1', ...env }, memory_mb: 128, cpus: 0.5, ...extra };
}

function daemon(instanceIndex = 0, overrides = {}): TestDaemon {
  const d = new TestDaemon(fleet, fleet.resources.instanceIds[instanceIndex], overrides).start();
  daemons.push(d);
  return d;
}

async function runningContainers(taskId: string): Promise<number> {
  const list = await fleet.docker.listContainers({ all: false, filters: { label: [`agent-fleet.task-id=${taskId}`] } });
  return list.length;
}

beforeAll(async () => {
  fleet = await freshFleet({ instances: 2 });
  client = new FleetClient(fleet.clients, fleet.resources);
});

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

test('happy path: submit → claimed → RUNNING → COMPLETED with result, events, tags idle again and the message deleted', async () => {
  // Prepare
  const d = daemon();
  await d.ready();
  // Act
  const { taskId } = await client.submitTask(demoSpec());
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  // Assess
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(record.exit_code).toBe(0);
  expect(record.oom_killed).toBe(false);
  expect(record.attempt).toBe(1);
  expect(record.instance_id).toBe(d.instanceId);
  expect(record.result).toEqual({ summary: 'demo agent finished', task_id: taskId, payload_bytes: JSON.stringify({ prompt: 'fix the bug' }).length });
  expect(record.log_tail).toContain(`demo agent: task ${taskId} attempt 1`);
  const types = (await client.listEvents(taskId)).map((e) => e.type);
  expect(types).toEqual([EventType.SUBMITTED, EventType.CLAIMED, EventType.RUNNING, EventType.COMPLETED]);
  await d.waitForLog(/task finished/);
  const keys = tagKeys();
  const tags = await fleet.clients.ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [d.instanceId] }] }));
  const byKey = Object.fromEntries((tags.Tags ?? []).map((t) => [t.Key, t.Value]));
  // Busy → idle is written once nothing followed for RUNNING_ONLY_WAIT_MS (instance.ts): the
  // status tag, then the task-id tag's removal (two EC2 calls), so wait for both.
  let after: Record<string, string | undefined> = {};
  const settled = () => after[keys.status] === 'idle' && after[keys.taskId] === undefined;
  for (const until = Date.now() + RUNNING_ONLY_WAIT_MS + 5000; Date.now() < until && !settled(); await new Promise((r) => setTimeout(r, 200))) {
    const tagsAfter = await fleet.clients.ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [d.instanceId] }] }));
    after = Object.fromEntries((tagsAfter.Tags ?? []).map((t) => [t.Key, t.Value]));
  }
  expect(after[keys.status]).toBe('idle');
  expect(after[keys.taskId]).toBeUndefined();
  expect(byKey[keys.fleet] ?? after[keys.fleet]).toBe(fleet.resources.fleetName);
  const left = await fleet.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: fleet.resources.queueUrl, WaitTimeSeconds: 0, VisibilityTimeout: 0 }));
  expect(left.Messages ?? []).toHaveLength(0);
  expect(await runningContainers(taskId)).toBe(0);
});

test('three slots, one receive loop: five tasks submitted at once each run once, and never more than three containers run at a time', async () => {
  // Prepare: a daemon with three slots, and the engine's start / die events of its containers.
  const d = daemon(0, { slots: 3 });
  await d.ready();
  const events = (await fleet.docker.getEvents({ filters: { type: ['container'], event: ['start', 'die'], label: [`${CONTAINER_LABELS.instanceId}=${d.instanceId}`] } })) as NodeJS.ReadableStream & { destroy(): void };
  let running = 0;
  let mostRunning = 0;
  const startsByTask = new Map<string, number>();
  let partial = '';
  events.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) {
      const e = JSON.parse(line) as { Action?: string; Actor?: { Attributes?: Record<string, string> } };
      const taskId = e.Actor?.Attributes?.[CONTAINER_LABELS.taskId] ?? '?';
      if (e.Action === 'start') {
        running++;
        mostRunning = Math.max(mostRunning, running);
        startsByTask.set(taskId, (startsByTask.get(taskId) ?? 0) + 1);
      } else if (e.Action === 'die') running--;
    }
  });
  try {
    // Act
    const submitted = await Promise.all(Array.from({ length: 5 }, () => client.submitTask(demoSpec({ DEMO_SLEEP_S: '2' }))));
    const records = await Promise.all(submitted.map(({ taskId }) => client.waitForTerminal(taskId, { timeoutMs: 120_000 })));
    // Assess: each completed in its first attempt, started once; the slots bound the containers.
    expect(records.map((r) => [r.status, r.attempt])).toEqual(submitted.map(() => [TaskStatus.COMPLETED, 1]));
    expect(submitted.map(({ taskId }) => startsByTask.get(taskId))).toEqual([1, 1, 1, 1, 1]);
    expect(mostRunning).toBeLessThanOrEqual(3);
    expect(mostRunning).toBeGreaterThanOrEqual(2);
    expect(d.lines.filter((l) => /"claimed task"/.test(l))).toHaveLength(5);
  } finally {
    events.destroy();
  }
});

test('a non-zero exit ends FAILED with the exit code and the reason', async () => {
  daemon();
  const { taskId } = await client.submitTask(demoSpec({ DEMO_EXIT_CODE: '3' }));
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  expect(record.status).toBe(TaskStatus.FAILED);
  expect(record.exit_code).toBe(3);
  expect(record.reason).toBe('exit code 3');
});

test('a container over its memory limit ends FAILED with oom_killed = true', async () => {
  daemon();
  const { taskId } = await client.submitTask(demoSpec({ DEMO_MODE: 'oom' }, { memory_mb: 64 }));
  const record = await client.waitForTerminal(taskId, { timeoutMs: 90_000 });
  expect(record.status).toBe(TaskStatus.FAILED);
  expect(record.oom_killed).toBe(true);
  expect(record.reason).toMatch(/out of memory/);
});

test('a task past its timeout_s is stopped through the ladder and ends TIMED_OUT', async () => {
  daemon();
  const { taskId } = await client.submitTask(demoSpec({ DEMO_SLEEP_S: '120' }, { timeout_s: 2 }));
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  expect(record.status).toBe(TaskStatus.TIMED_OUT);
  expect(record.reason).toBe('timed out after 2 s');
  expect(await runningContainers(taskId)).toBe(0);
});

test('the same message delivered to two daemons runs exactly one container: the duplicates meet the live lease', async () => {
  // Prepare: two daemons; once the task runs, its envelope is sent twice more (duplicate deliveries).
  const [a, b] = [daemon(0), daemon(1)];
  await Promise.all([a.ready(), b.ready()]);
  const { taskId } = await client.submitTask(demoSpec({ DEMO_SLEEP_S: '8' }));
  await waitForStatus(taskId, TaskStatus.RUNNING);
  // Act
  for (let i = 0; i < 2; i++) await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.queueUrl, MessageBody: encodeEnvelope(taskId) }));
  // Assess: a duplicate took the claim's `leased` branch (logged by whichever daemon got it)...
  const leased = new RegExp(`"task_id":"${taskId}".*task is leased by another attempt|task is leased by another attempt.*"task_id":"${taskId}"`);
  const hit = await Promise.any([a.waitForLog(leased, 20_000), b.waitForLog(leased, 20_000)]);
  expect(JSON.parse(hit)).toMatchObject({ task_id: taskId, attempt: 1 });
  // ...and the task ran once: one claim, one container start, one terminal write, attempt 1.
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  const types = (await client.listEvents(taskId)).map((e) => e.type);
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(record.attempt).toBe(1);
  expect(types.filter((t) => t === EventType.CLAIMED)).toHaveLength(1);
  expect(types.filter((t) => t === EventType.RUNNING)).toHaveLength(1);
  expect(types.filter((t) => t === EventType.COMPLETED)).toHaveLength(1);
});

async function waitForStatus(taskId: string, status: TaskStatus, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await client.getTask(taskId)).status !== status) {
    if (Date.now() > deadline) throw new Error(`task ${taskId} never reached ${status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('kill -9 of a daemon and its instance mid-task: another daemon takes over after the lease expires; one terminal state', async () => {
  // Prepare: daemon A runs a long-ish task.
  const a = daemon(0);
  await a.ready();
  const { taskId } = await client.submitTask(demoSpec({ DEMO_SLEEP_S: '4' }));
  await a.waitForLog(/container started/, 60_000);
  // Act: the instance dies: fleetd killed, and its container with it.
  await a.kill9();
  const containers = await fleet.docker.listContainers({ filters: { label: [`agent-fleet.task-id=${taskId}`] } });
  await Promise.all(containers.map((c) => fleet.docker.getContainer(c.Id).remove({ force: true })));
  const b = daemon(1);
  const record = await client.waitForTerminal(taskId, { timeoutMs: 90_000 });
  // Assess
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(record.attempt).toBe(2);
  expect(record.instance_id).toBe(b.instanceId);
  const events = await client.listEvents(taskId);
  expect(events.map((e) => e.type)).toEqual([EventType.SUBMITTED, EventType.CLAIMED, EventType.RUNNING, EventType.TAKEN_OVER, EventType.RUNNING, EventType.COMPLETED]);
  expect(events.filter((e) => e.type === EventType.COMPLETED)).toHaveLength(1);
});

test("a running task's record names its container and its dispatch timings within seconds of the start, long before the heartbeat interval (the RUNNING write goes out beside the create)", async () => {
  // Prepare: the production interval (30 s), so only the early beat (2 s after the start) can write them while the 8 s task runs.
  const d = daemon(0, { timings: { leaseSeconds: 90, heartbeatSeconds: 30 } });
  await d.ready();
  const { taskId } = await client.submitTask(demoSpec({ DEMO_SLEEP_S: '8' }));
  await waitForStatus(taskId, TaskStatus.RUNNING);
  // Act: wait for the early beat while the container runs.
  const deadline = Date.now() + 7_000;
  let running = await client.getTask(taskId);
  while (running.container_id === undefined && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    running = await client.getTask(taskId);
  }
  // Assess: still RUNNING, with the id of the container the engine runs, and the timings.
  expect(running.status).toBe(TaskStatus.RUNNING);
  const containers = await fleet.docker.listContainers({ filters: { label: [`${CONTAINER_LABELS.taskId}=${taskId}`] } });
  expect(containers.map((c) => c.Id)).toEqual([running.container_id]);
  expect(running.dispatch?.container_start_ms).toEqual(expect.any(Number));
  const done = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  expect(done.status).toBe(TaskStatus.COMPLETED);
  expect(done.container_id).toBe(running.container_id);
});

test('a daemon restarted after kill -9 re-adopts the container whose lease it still holds; no second container', async () => {
  const a = daemon(0, { timings: { leaseSeconds: 30, heartbeatSeconds: 2 } });
  await a.ready();
  const { taskId } = await client.submitTask(demoSpec({ DEMO_SLEEP_S: '5' }));
  await a.waitForLog(/container started/, 60_000);
  await a.kill9();
  a.restart();
  await a.waitForLog(/re-adopting a container/, 30_000);
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(record.attempt).toBe(1);
  // Written by the adopting run when the first daemon died before its first heartbeat carried it.
  expect(record.container_id).toMatch(/^[0-9a-f]{64}$/);
  const types = (await client.listEvents(taskId)).map((e) => e.type);
  expect(types).toEqual([EventType.SUBMITTED, EventType.CLAIMED, EventType.RUNNING, EventType.COMPLETED]);
  expect(await runningContainers(taskId)).toBe(0);
});

test('malformed messages go to the dead-letter queue with the reason and change no record, not even one they name; the daemon keeps serving', async () => {
  // Prepare: a queued task whose message came from a future client version, and pure garbage.
  const d = daemon();
  await d.ready();
  const queued = await client.submitTask(demoSpec());
  await d.waitForLog(new RegExp(`task finished.*${queued.taskId}|${queued.taskId}.*task finished`), 60_000);
  const victim = await client.submitTaskRecordOnly(demoSpec());
  await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.queueUrl, MessageBody: JSON.stringify({ v: 2, task_id: victim }) }));
  await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.queueUrl, MessageBody: 'not json at all' }));
  // Act: and a valid task after them.
  const { taskId } = await client.submitTask(demoSpec());
  const good = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  // Assess
  expect(good.status).toBe(TaskStatus.COMPLETED);
  const named = await client.getTask(victim);
  expect(named).toMatchObject({ status: TaskStatus.QUEUED, attempt: 0 });
  expect(named.reason).toBeUndefined();
  expect((await client.listEvents(victim)).map((e) => e.type)).toEqual([EventType.SUBMITTED]);
  const dlq = await fleet.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: fleet.resources.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
  const reasons = (dlq.Messages ?? []).map((m) => m.MessageAttributes?.['fleet-rejection-reason']?.StringValue);
  expect(reasons).toEqual(expect.arrayContaining([expect.stringMatching(/unsupported envelope version/), expect.stringMatching(/not JSON/)]));
});

test("a secret's value appears in no log line, log tail, event or record", async () => {
  // Prepare: the agent prints the secret it was given.
  const d = daemon();
  const { demoSecretArn, demoSecretValue } = fleet.resources;
  // Act
  const { taskId } = await client.submitTask(demoSpec({}, { secrets: { DEMO_SECRET_ECHO: demoSecretArn } }));
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  await d.waitForLog(/task finished/);
  // Assess: it ran with the secret (the agent printed it, redacted) and it leaked nowhere.
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(record.log_tail).toContain('the token is [REDACTED]');
  const everything = [JSON.stringify(record), JSON.stringify(await client.listEvents(taskId)), ...d.lines].join('\n');
  expect(everything).not.toContain(demoSecretValue);
  expect(d.lines.length).toBeGreaterThan(3);
});
