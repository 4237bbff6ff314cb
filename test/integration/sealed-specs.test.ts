/**
 * Sealed specs end to end (docs/security.md): a real fleetd with the fleet's KMS HMAC key (moto
 * implements GenerateMac / VerifyMac), the client sealing at submit, and `docker events` (the
 * Docker CLI, a client we did not write) watching the engine. A holder of the cancel grant can
 * UpdateItem a record; it cannot make the record run something else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { CONTAINER_LABELS, TaskStatus, encodeEnvelope, newTaskId, type TaskSpecInput } from '../../daemon/src/contract';
import { FleetClient } from '../../scripts/lib/client';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
let client: FleetClient;
let daemon: TestDaemon;
let events: ChildProcess;
const eventLines: string[] = [];

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
  client = new FleetClient(fleet.clients, fleet.resources);
  // Every container event on the engine, as the Docker CLI reports it.
  events = spawn('docker', ['events', '--filter', 'type=container', '--format', '{{json .}}'], { env: { ...process.env, DOCKER_HOST: fleet.env.DOCKER_HOST } });
  events.stdout!.setEncoding('utf8').on('data', (chunk: string) => eventLines.push(...chunk.split('\n').filter(Boolean)));
  daemon = new TestDaemon(fleet, fleet.resources.instanceIds[0]).start();
  await daemon.ready();
});

afterAll(async () => {
  await daemon?.stop();
  events?.kill();
});

function spec(extra: Partial<TaskSpecInput> = {}): TaskSpecInput & Record<string, unknown> {
  return { image: fleet.demoImage, env: { DEMO_SLEEP_S: '0' }, memory_mb: 128, cpus: 0.5, timeout_s: 60, ...extra };
}

/** Container events of one task seen by `docker events` so far. */
function containerEventsOf(taskId: string): string[] {
  return eventLines.filter((l) => (JSON.parse(l) as { Actor?: { Attributes?: Record<string, string> } }).Actor?.Attributes?.[CONTAINER_LABELS.taskId] === taskId);
}

test('a sealed task runs; its seal names the fleet key', async () => {
  const { taskId, record } = await client.submitTask(spec());
  expect(record.seal).toMatchObject({ v: 1, key_id: fleet.resources.sealKeyId, mac: expect.any(String) });
  const done = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  expect(done.status).toBe(TaskStatus.COMPLETED);
  expect(containerEventsOf(taskId).some((l) => /"(Action|status)":"start"/.test(l))).toBe(true);
});

test("a QUEUED record's spec rewritten with a raw UpdateItem (what a cancel-grant holder could do) ends FAILED with a seal reason; no container starts", async () => {
  // Prepare: a sealed record with no message yet, then the tamper: another command and a secret.
  const taskId = await client.submitTaskRecordOnly(spec());
  await fleet.clients.ddb.send(new UpdateCommand({
    TableName: fleet.resources.tasksTable,
    Key: { task_id: taskId },
    UpdateExpression: 'SET spec.#cmd = :cmd, spec.secrets = :secrets',
    ExpressionAttributeNames: { '#cmd': 'command' },
    ExpressionAttributeValues: { ':cmd': ['sh', '-c', 'echo "$STOLEN"'], ':secrets': { STOLEN: fleet.resources.demoSecretArn } },
  }));
  // Act: its message goes out (as redrive or the reconciler would send it).
  expect(await client.resendMessage(taskId)).toBe('sent');
  const done = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  // Assess
  expect(done.status).toBe(TaskStatus.FAILED);
  expect(done.reason).toMatch(/seal does not match/);
  expect(done.started_at).toBeUndefined();
  expect(containerEventsOf(taskId)).toEqual([]);
});

test('a record written with no seal (a PutItem by a non-submitter) ends FAILED with a seal reason; no container starts', async () => {
  const taskId = newTaskId();
  const now = Date.now();
  await fleet.clients.ddb.send(new PutCommand({
    TableName: fleet.resources.tasksTable,
    Item: { task_id: taskId, status: TaskStatus.QUEUED, spec: spec(), created_at: now, updated_at: now, attempt: 0, attempts_left: 3 },
  }));
  await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.queueUrl, MessageBody: encodeEnvelope(taskId) }));
  const done = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  expect(done.status).toBe(TaskStatus.FAILED);
  expect(done.reason).toMatch(/has no seal/);
  expect(containerEventsOf(taskId)).toEqual([]);
});

test("a payload_ref to another task's payload is refused; no container starts", async () => {
  // Prepare: a large payload uploaded for task A; task B names A's key, and is sealed so (the submitter chose it).
  const big = { text: 'x'.repeat(40_000) };
  const a = await client.submitTask(spec({ payload: big }));
  const aRecord = await client.waitForTerminal(a.taskId, { timeoutMs: 60_000 });
  const ref = (aRecord.spec as { payload_ref?: { bucket: string; key: string } }).payload_ref;
  expect(ref?.key).toContain(a.taskId);
  // Act
  const b = await client.submitTask(spec({ payload_ref: ref }));
  const done = await client.waitForTerminal(b.taskId, { timeoutMs: 60_000 });
  // Assess
  expect(done.status).toBe(TaskStatus.FAILED);
  expect(done.reason).toMatch(/not under this task's own prefix/);
  expect(containerEventsOf(b.taskId)).toEqual([]);
});
