/**
 * The fleet as ABCA's `ec2` compute strategy, on the local stack, against an ABCA-shaped
 * TaskTable in moto (ABCA's key `task_id`, its attribute names and statuses). The tests play
 * ABCA's writers with ABCA's own conditional writes: the cancel handler (CANCELLED), the agent
 * (RUNNING, COMPLETED). fleetd (config abcaTaskTable) keeps ABCA's record honest without any
 * pollSession call: failures, a silent exit 0, an interruption and a pull error end it FAILED
 * with a reason; ABCA's cancel stops the container; what the agent wrote stands.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { AbcaHeartbeatMirror } from '../../daemon/src/abca-mirror';
import { CONTAINER_LABELS, TaskStatus } from '../../daemon/src/contract';
import { Logger } from '../../daemon/src/log';
import { MAX_ENV_PAYLOAD_BYTES } from '../../daemon/src/runner';
import { AbcaAdapterError, Ec2ComputeStrategy, FLEETD_ENV_PAYLOAD_BYTES, createFleetComputeStrategy, type AbcaSessionStatus, type Ec2SessionHandle, type Ec2ComputeStrategyOptions } from '../../scripts/lib/abca-adapter';
import { FleetClient } from '../../scripts/lib/client';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, uniqueName, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
let client: FleetClient;
let abcaTable: string;
let events: ChildProcess;
const eventLines: string[] = [];
const daemons: TestDaemon[] = [];

const blueprintConfig = { compute_type: 'ec2' as const, runtime_arn: '', model_id: 'anthropic.claude-sonnet' };
const HEARTBEAT_S = 1;
const GRACE_S = 2;

function strategy(env: Record<string, string> = {}, extra: Partial<Ec2ComputeStrategyOptions> = {}): Ec2ComputeStrategy {
  return new Ec2ComputeStrategy({
    client,
    image: fleet.demoImage,
    resources: { cpus: 0.5, memoryMb: 128 },
    readOnlyResources: { cpus: 0.25, memoryMb: 64 },
    env: { DEMO_SLEEP_S: '1', ...env },
    abca: { taskTable: abcaTable, taskEventsTable: `${abcaTable}-events`, userConcurrencyTable: `${abcaTable}-concurrency`, logGroup: '/abca/agent', githubTokenSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:abca-github-token' },
    ...extra,
  });
}

function daemon(index = 0, overrides: Record<string, unknown> = {}): TestDaemon {
  const d = new TestDaemon(fleet, fleet.resources.instanceIds[index], { abcaTaskTable: abcaTable, timings: { heartbeatSeconds: HEARTBEAT_S, cancelGraceSeconds: GRACE_S }, ...overrides }).start();
  daemons.push(d);
  return d;
}

/** An ABCA task id (ULID-like) and its TaskTable row as ABCA's create-task writes it. */
async function abcaTask(status: string): Promise<string> {
  const id = uniqueName('ABCA').toUpperCase();
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  await fleet.clients.ddb.send(new PutCommand({ TableName: abcaTable, Item: { task_id: id, user_id: 'user-1', status, created_at: now, status_created_at: `${status}#${now}`, repo: 'org/repo' } }));
  return id;
}

async function abcaRow(id: string): Promise<Record<string, unknown>> {
  return (await fleet.clients.ddb.send(new GetCommand({ TableName: abcaTable, Key: { task_id: id }, ConsistentRead: true }))).Item ?? {};
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

async function pollUntil(s: Ec2ComputeStrategy, handle: Ec2SessionHandle, done: (st: AbcaSessionStatus) => boolean, timeoutMs = 90_000): Promise<AbcaSessionStatus> {
  return until(() => s.pollSession(handle), done, timeoutMs, 500);
}

/** `docker events` lines about one fleet task's containers, with their times (ms). */
function containerEventsOf(fleetTaskId: string): Array<{ action: string; at: number }> {
  return eventLines
    .map((l) => JSON.parse(l) as { Action?: string; status?: string; timeNano?: number; Actor?: { Attributes?: Record<string, string> } })
    .filter((e) => e.Actor?.Attributes?.[CONTAINER_LABELS.taskId] === fleetTaskId)
    .map((e) => ({ action: e.Action ?? e.status ?? '', at: Math.floor((e.timeNano ?? 0) / 1e6) }));
}

/** ABCA's cancel-task: a plain conditional UpdateItem, nothing sent to the fleet. */
async function abcaCancels(id: string): Promise<number> {
  const now = new Date().toISOString();
  await fleet.clients.ddb.send(new UpdateCommand({
    TableName: abcaTable,
    Key: { task_id: id },
    UpdateExpression: 'SET #status = :cancelled, updated_at = :now, completed_at = :now, status_created_at = :sca',
    ConditionExpression: 'attribute_exists(task_id) AND NOT #status IN (:s1, :s2, :s3, :s4)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':cancelled': 'CANCELLED', ':now': now, ':sca': `CANCELLED#${now}`, ':s1': 'COMPLETED', ':s2': 'FAILED', ':s3': 'CANCELLED', ':s4': 'TIMED_OUT' },
  }));
  return Date.now();
}

beforeAll(async () => {
  fleet = await freshFleet({ instances: 2 });
  client = new FleetClient(fleet.clients, fleet.resources);
  abcaTable = `${fleet.resources.fleetName}-abca-TaskTable`;
  await fleet.clients.ddb.send(new CreateTableCommand({
    TableName: abcaTable,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'task_id', AttributeType: 'S' },
      { AttributeName: 'user_id', AttributeType: 'S' },
      { AttributeName: 'status_created_at', AttributeType: 'S' },
    ],
    KeySchema: [{ AttributeName: 'task_id', KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [{ IndexName: 'UserStatusIndex', KeySchema: [{ AttributeName: 'user_id', KeyType: 'HASH' }, { AttributeName: 'status_created_at', KeyType: 'RANGE' }], Projection: { ProjectionType: 'ALL' } }],
  }));
  events = spawn('docker', ['events', '--filter', 'type=container', '--format', '{{json .}}'], { env: { ...process.env, DOCKER_HOST: fleet.env.DOCKER_HOST } });
  let partial = '';
  events.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    eventLines.push(...lines.filter(Boolean));
  });
  events.stderr!.setEncoding('utf8').on('data', (chunk: string) => process.stderr.write(`docker events: ${chunk}`));
});

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

afterAll(() => {
  events?.kill();
});

describe('the adapter', () => {
  it('startSession submits once per ABCA task with the handle PR #32 declares, ABCA agent env, 8 h, one attempt; pollSession reports', async () => {
    // Prepare
    const s = strategy();
    const abcaId = await abcaTask('HYDRATING');
    const payload = { task_id: abcaId, prompt: 'fix the bug', repo_url: 'https://github.com/org/repo' };
    // Act
    const handle = await s.startSession({ taskId: abcaId, userId: 'user-1', payload, blueprintConfig });
    const again = await s.startSession({ taskId: abcaId, payload, blueprintConfig });
    const before = await s.pollSession(handle);
    daemon(0);
    const after = await pollUntil(s, handle, (st) => st.status !== 'running');
    // Assess
    expect(handle).toEqual({ sessionId: expect.stringMatching(/^k-[0-9a-f]{40}$/), strategyType: 'ec2', instanceId: '', commandId: handle.sessionId });
    expect(again).toEqual(handle);
    expect(before).toEqual({ status: 'running', reason: 'QUEUED' });
    expect(after).toEqual({ status: 'completed' });
    const record = await client.getTask(handle.sessionId);
    expect(record.max_attempts).toBe(1);
    expect(record.spec).toMatchObject({
      payload, labels: { 'abca.task-id': abcaId }, repo: 'https://github.com/org/repo', idempotency_key: `abca:${abcaId}`, timeout_s: 8 * 3600, cpus: 0.5, memory_mb: 128,
      env: {
        TASK_TABLE_NAME: abcaTable, TASK_EVENTS_TABLE_NAME: `${abcaTable}-events`, USER_CONCURRENCY_TABLE_NAME: `${abcaTable}-concurrency`, LOG_GROUP_NAME: '/abca/agent',
        GITHUB_TOKEN_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:abca-github-token', CLAUDE_CODE_USE_BEDROCK: '1', ANTHROPIC_MODEL: 'anthropic.claude-sonnet',
      },
    });
    expect(record.spec.env).not.toHaveProperty('AGENT_PAYLOAD_S3_URI');
  });

  it('readOnly sessions get the smaller profile; a payload over fleetd\'s AGENT_PAYLOAD limit is named by AGENT_PAYLOAD_S3_URI', async () => {
    const s = strategy();
    const small = await s.startSession({ taskId: await abcaTask('HYDRATING'), userId: 'u', payload: { prompt: 'plan' }, blueprintConfig, readOnly: true });
    const bigId = await abcaTask('HYDRATING');
    const big = await s.startSession({ taskId: bigId, userId: 'u', payload: { prompt: 'x'.repeat(FLEETD_ENV_PAYLOAD_BYTES + 10) }, blueprintConfig });
    expect((await client.getTask(small.sessionId)).spec).toMatchObject({ cpus: 0.25, memory_mb: 64 });
    const bigRecord = await client.getTask(big.sessionId);
    expect(bigRecord.spec).toMatchObject({ payload_ref: { bucket: fleet.resources.payloadBucket, key: `tasks/${big.sessionId}/payload.json` } });
    expect((bigRecord.spec.env as Record<string, string>).AGENT_PAYLOAD_S3_URI).toBe(`s3://${fleet.resources.payloadBucket}/tasks/${big.sessionId}/payload.json`);
    expect(FLEETD_ENV_PAYLOAD_BYTES).toBe(MAX_ENV_PAYLOAD_BYTES);
    await Promise.all([small, big].map((h) => s.stopSession(h)));
  });

  it('refuses other compute types, foreign handles and timeouts past the fleet cap; defaults and the factory', async () => {
    const s = strategy();
    await expect(s.startSession({ taskId: 'X1', userId: 'u', payload: {}, blueprintConfig: { compute_type: 'ecs' } })).rejects.toThrow(AbcaAdapterError);
    await expect(s.pollSession({ sessionId: 'arn', strategyType: 'ecs' })).rejects.toThrow(/non-ec2 session handle/);
    expect(await s.pollSession({ sessionId: 't-gone', strategyType: 'ec2', instanceId: '', commandId: 't-gone' } as Ec2SessionHandle)).toEqual({ status: 'failed', error: 'fleet task t-gone not found' });
    await expect(s.stopSession({ sessionId: 't-gone', strategyType: 'ec2', instanceId: '', commandId: 't-gone' } as Ec2SessionHandle)).resolves.toBeUndefined();
    expect(() => strategy({}, { timeoutSeconds: 12 * 3600 })).toThrow(/outside 1\.\.39600/);
    const fromEnv = createFleetComputeStrategy({}, { ...process.env, ...fleet.env, FLEET_ABCA_IMAGE: fleet.demoImage, FLEET_ABCA_COMMAND: '["python","/app/batch.py"]', TASK_TABLE_NAME: abcaTable });
    expect(fromEnv.type).toBe('ec2');
    expect(() => createFleetComputeStrategy({}, { ...fleet.env })).toThrow(/FLEET_ABCA_IMAGE is not set/);
  });
});

describe("fleetd keeps ABCA's record honest (no pollSession call)", () => {
  it('a container that exits 2 without reporting: ABCA FAILED with the reason within one heartbeat of the fleet outcome', async () => {
    // Prepare: ABCA's orchestrator moved the task RUNNING after startSession.
    const s = strategy({ DEMO_EXIT_CODE: '2' });
    const abcaId = await abcaTask('RUNNING');
    const handle = await s.startSession({ taskId: abcaId, userId: 'u', payload: { task_id: abcaId }, blueprintConfig });
    daemon(0);
    // Act: only the fleet record is watched, never pollSession.
    const fleetEnd = await client.waitForTerminal(handle.sessionId, { timeoutMs: 90_000, intervalMs: 100 });
    const endedAt = Date.now();
    const row = await until(() => abcaRow(abcaId), (r) => r.status === 'FAILED', HEARTBEAT_S * 1000);
    // Assess
    expect(fleetEnd).toMatchObject({ status: TaskStatus.FAILED, exit_code: 2 });
    expect(Date.now() - endedAt).toBeLessThanOrEqual(HEARTBEAT_S * 1000 + 200);
    expect(row).toMatchObject({ status: 'FAILED', error_message: 'fleet task FAILED: exit code 2 (exit code 2)', completed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) });
    expect(row.status_created_at).toBe(`FAILED#${row.completed_at as string}`);
  });

  it('exit 0 without the agent reporting: ABCA FAILED with a reason that says so', async () => {
    const s = strategy();
    const abcaId = await abcaTask('RUNNING');
    const handle = await s.startSession({ taskId: abcaId, userId: 'u', payload: { task_id: abcaId }, blueprintConfig });
    daemon(0);
    expect((await client.waitForTerminal(handle.sessionId, { timeoutMs: 90_000, intervalMs: 100 })).status).toBe(TaskStatus.COMPLETED);
    const row = await until(() => abcaRow(abcaId), (r) => r.status === 'FAILED', HEARTBEAT_S * 1000);
    expect(row.status).toBe('FAILED');
    expect(row.error_message).toMatch(/^the agent exited 0 without reporting: .*never wrote a terminal status/);
  });

  it('an agent that writes RUNNING and COMPLETED itself: ABCA stays COMPLETED, untouched; heartbeats were mirrored while RUNNING', async () => {
    // Prepare: the orchestrator left the task HYDRATING; the agent's own conditional writes follow.
    const s = strategy({ DEMO_SLEEP_S: '5' });
    const abcaId = await abcaTask('HYDRATING');
    const handle = await s.startSession({ taskId: abcaId, userId: 'u', payload: { task_id: abcaId }, blueprintConfig });
    const d = daemon(0);
    await d.waitForLog(/container started/, 90_000);
    // Act: the agent's write_running, then (after a few heartbeats) its write_terminal.
    const t1 = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    await fleet.clients.ddb.send(new UpdateCommand({
      TableName: abcaTable, Key: { task_id: abcaId },
      UpdateExpression: 'SET #s = :s, started_at = :t, status_created_at = :sca',
      ConditionExpression: '#s IN (:submitted, :hydrating)',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':s': 'RUNNING', ':t': t1, ':sca': `RUNNING#${t1}`, ':submitted': 'SUBMITTED', ':hydrating': 'HYDRATING' },
    }));
    const beat = await until(() => abcaRow(abcaId), (r) => r.agent_heartbeat_at !== undefined, 5000);
    const t2 = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    await fleet.clients.ddb.send(new UpdateCommand({
      TableName: abcaTable, Key: { task_id: abcaId },
      UpdateExpression: 'SET #s = :s, completed_at = :t, status_created_at = :sca, pr_url = :pr',
      ConditionExpression: '#s IN (:running, :hydrating, :finalizing, :awaiting_approval)',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':s': 'COMPLETED', ':t': t2, ':sca': `COMPLETED#${t2}`, ':pr': 'https://github.com/org/repo/pull/1', ':running': 'RUNNING', ':hydrating': 'HYDRATING', ':finalizing': 'FINALIZING', ':awaiting_approval': 'AWAITING_APPROVAL' },
    }));
    const written = await abcaRow(abcaId);
    const fleetEnd = await client.waitForTerminal(handle.sessionId, { timeoutMs: 90_000 });
    await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_S * 1000));
    // Assess
    expect(beat.agent_heartbeat_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(fleetEnd.status).toBe(TaskStatus.COMPLETED);
    expect(await abcaRow(abcaId)).toEqual(written);
    expect(written).toMatchObject({ status: 'COMPLETED', completed_at: t2, status_created_at: `COMPLETED#${t2}` });
    expect(written).not.toHaveProperty('error_message');
  });

  it("ABCA's record set CANCELLED by a conditional UpdateItem: the container is gone within heartbeat + grace, the fleet task CANCELLED", async () => {
    // Prepare
    const s = strategy({ DEMO_SLEEP_S: '300' });
    const abcaId = await abcaTask('RUNNING');
    const handle = await s.startSession({ taskId: abcaId, userId: 'u', payload: { task_id: abcaId }, blueprintConfig });
    const d = daemon(0);
    await d.waitForLog(/container started/, 90_000);
    // Act
    const cancelledAt = await abcaCancels(abcaId);
    const fleetEnd = await client.waitForTerminal(handle.sessionId, { timeoutMs: 60_000, intervalMs: 100 });
    const gone = await until(async () => containerEventsOf(handle.sessionId).find((e) => e.action === 'die'), (e) => e !== undefined, 10_000);
    // Assess: one heartbeat (±10% jitter) to see it, the grace for SIGTERM → SIGKILL, slack for a loaded machine.
    expect(gone).toBeDefined();
    expect(gone!.at - cancelledAt).toBeLessThan((HEARTBEAT_S * 1.1 + GRACE_S) * 1000 + 2000);
    expect(fleetEnd).toMatchObject({ status: TaskStatus.CANCELLED, reason: 'cancelled by request' });
    const row = await abcaRow(abcaId);
    expect(row.status).toBe('CANCELLED');
    expect(row).not.toHaveProperty('error_message');
    expect((await client.listEvents(handle.sessionId)).find((e) => e.type === 'CANCEL_REQUESTED')?.detail).toMatchObject({ by: 'abca-cancelled' });
  });

  it('a drain mid-task: ABCA FAILED "interrupted", and no second container anywhere', async () => {
    // Prepare: a 2 s drain budget; a second daemon ready to take anything handed back.
    const s = strategy({ DEMO_SLEEP_S: '60' });
    const abcaId = await abcaTask('RUNNING');
    const handle = await s.startSession({ taskId: abcaId, userId: 'u', payload: { task_id: abcaId }, blueprintConfig });
    const a = daemon(0, { drainBudgetSeconds: 2 });
    await a.waitForLog(/container started/, 90_000);
    daemon(1);
    // Act
    await a.stop();
    daemons.splice(daemons.indexOf(a), 1);
    const fleetEnd = await client.waitForTerminal(handle.sessionId, { timeoutMs: 60_000 });
    // Assess
    const row = await abcaRow(abcaId);
    expect(row.status).toBe('FAILED');
    expect(row.error_message).toMatch(/^interrupted: SIGTERM received: drain budget of 2 s spent; not run again/);
    expect(fleetEnd.status).toBe(TaskStatus.FAILED);
    expect(fleetEnd.reason).toMatch(/^attempts exhausted: 1 attempt/);
    expect(containerEventsOf(handle.sessionId).filter((e) => e.action === 'start')).toHaveLength(1);
  });

  it('an image that cannot be pulled: ABCA FAILED with the pull error', async () => {
    const s = new Ec2ComputeStrategy({ client, image: '127.0.0.1:1/abca/agent:missing', resources: { cpus: 0.5, memoryMb: 128 } });
    const abcaId = await abcaTask('RUNNING');
    const handle = await s.startSession({ taskId: abcaId, userId: 'u', payload: { task_id: abcaId }, blueprintConfig });
    daemon(0, { allowedRegistries: ['local', '127.0.0.1:1'] });
    const fleetEnd = await client.waitForTerminal(handle.sessionId, { timeoutMs: 90_000, intervalMs: 100 });
    const row = await until(() => abcaRow(abcaId), (r) => r.status === 'FAILED', HEARTBEAT_S * 1000);
    expect(fleetEnd.status).toBe(TaskStatus.FAILED);
    expect(row.status).toBe('FAILED');
    expect(row.error_message).toMatch(/^fleet task FAILED: pulling 127\.0\.0\.1:1\/abca\/agent:missing failed: /);
    expect((row.error_message as string).length).toBeLessThanOrEqual(1000);
  });

  it('a failing ABCA table is logged, never thrown', async () => {
    const lines: string[] = [];
    const mirror = new AbcaHeartbeatMirror({ ddb: fleet.clients.ddb, table: 'no-such-abca-table', log: new Logger({}, undefined, 'debug', (l) => lines.push(l)) });
    expect(await mirror.beat('ABCA1')).toBe('failed');
    expect(await mirror.ended('ABCA1', { status: TaskStatus.FAILED, reason: 'x' })).toBe('failed');
    expect(lines.join('\n')).toMatch(/abca heartbeat mirror failed \(the fleet task is unaffected\).*ResourceNotFoundException/);
  });
});
