/**
 * The ABCA adapter against the local stack through its three methods (startSession → a fleet
 * task, pollSession → running / completed / failed from the record, stopSession → cancel), and
 * the heartbeat mirror into an ABCA TaskTable written by a real fleetd (config abcaTaskTable).
 */
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { AbcaHeartbeatMirror } from '../../daemon/src/abca-mirror';
import { Logger } from '../../daemon/src/log';
import { AbcaAdapterError, Ec2ComputeStrategy, type AbcaSessionStatus, type Ec2SessionHandle } from '../../scripts/lib/abca-adapter';
import { FleetClient } from '../../scripts/lib/client';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, uniqueName, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
let client: FleetClient;
let abcaTable: string;
const daemons: TestDaemon[] = [];

const blueprintConfig = { compute_type: 'ec2', model_id: 'anthropic.claude-sonnet' };

function strategy(env: Record<string, string> = {}): Ec2ComputeStrategy {
  return new Ec2ComputeStrategy({ client, image: fleet.demoImage, cpus: 0.5, memoryMb: 128, env: { DEMO_SLEEP_S: '1', ...env } });
}

/** An ABCA-style task id (ULID) and its TaskTable row. */
async function abcaTask(status: string): Promise<string> {
  const id = uniqueName('ABCA').toUpperCase();
  await fleet.clients.ddb.send(new PutCommand({ TableName: abcaTable, Item: { task_id: id, status, created_at: new Date().toISOString() } }));
  return id;
}

async function abcaRow(id: string): Promise<Record<string, unknown>> {
  return (await fleet.clients.ddb.send(new GetCommand({ TableName: abcaTable, Key: { task_id: id }, ConsistentRead: true }))).Item ?? {};
}

async function pollUntil(s: Ec2ComputeStrategy, handle: Ec2SessionHandle, done: (st: AbcaSessionStatus) => boolean, timeoutMs = 90_000): Promise<AbcaSessionStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await s.pollSession(handle);
    if (done(st) || Date.now() > deadline) return st;
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  fleet = await freshFleet({ instances: 2 });
  client = new FleetClient(fleet.clients, fleet.resources);
  abcaTable = `${fleet.resources.fleetName}-abca-tasks`;
  await fleet.clients.ddb.send(new CreateTableCommand({
    TableName: abcaTable,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: 'task_id', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'task_id', KeyType: 'HASH' }],
  }));
});

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

describe('Ec2ComputeStrategy', () => {
  it('startSession submits once per ABCA task; pollSession reports running, then completed', async () => {
    // Prepare
    const s = strategy();
    const abcaId = await abcaTask('RUNNING');
    const payload = { task_id: abcaId, prompt: 'fix the bug', repo_url: 'https://github.com/org/repo' };
    // Act
    const handle = await s.startSession({ taskId: abcaId, userId: 'user-1', payload, blueprintConfig });
    const again = await s.startSession({ taskId: abcaId, userId: 'user-1', payload, blueprintConfig });
    const before = await s.pollSession(handle);
    const d = new TestDaemon(fleet, fleet.resources.instanceIds[0]).start();
    daemons.push(d);
    const after = await pollUntil(s, handle, (st) => st.status !== 'running');
    // Assess
    expect(handle).toEqual({ sessionId: handle.fleetTaskId, strategyType: 'ec2', fleetTaskId: expect.stringMatching(/^k-[0-9a-f]{40}$/) });
    expect(again).toEqual(handle);
    expect(before).toEqual({ status: 'running', reason: 'QUEUED' });
    expect(after).toEqual({ status: 'completed' });
    const record = await client.getTask(handle.fleetTaskId);
    expect(record.spec).toMatchObject({ payload, labels: { 'abca.task-id': abcaId }, repo: 'https://github.com/org/repo', idempotency_key: `abca:${abcaId}` });
    expect(record.result).toMatchObject({ summary: 'demo agent finished', task_id: handle.fleetTaskId });
  });

  it('pollSession reports a failing agent as failed with the reason', async () => {
    const s = strategy({ DEMO_EXIT_CODE: '7' });
    const abcaId = await abcaTask('RUNNING');
    const handle = await s.startSession({ taskId: abcaId, userId: 'u', payload: { task_id: abcaId }, blueprintConfig });
    daemons.push(new TestDaemon(fleet, fleet.resources.instanceIds[0]).start());
    expect(await pollUntil(s, handle, (st) => st.status !== 'running')).toEqual({ status: 'failed', error: 'fleet task FAILED: exit code 7 (exit code 7)', reason: 'FAILED' });
  });

  it('stopSession cancels a running agent (container gone, failed: CANCELLED); stopping it again is a no-op', async () => {
    // Prepare
    const s = strategy({ DEMO_SLEEP_S: '300' });
    const abcaId = await abcaTask('RUNNING');
    const d = new TestDaemon(fleet, fleet.resources.instanceIds[1], {}, {}, { ssmReachable: true }).start();
    daemons.push(d);
    const handle = await s.startSession({ taskId: abcaId, userId: 'u', payload: { task_id: abcaId }, blueprintConfig });
    await d.waitForLog(/container started/, 120_000);
    // Act
    const stopped = await s.stopSession(handle);
    const final = await pollUntil(s, handle, (st) => st.status !== 'running');
    const again = await s.stopSession(handle);
    // Assess
    expect(stopped).toMatchObject({ outcome: 'cancel-requested', from: 'RUNNING', instanceId: d.instanceId });
    expect(final).toEqual({ status: 'failed', error: 'fleet task CANCELLED: cancelled by request (exit code 143)', reason: 'CANCELLED' });
    expect(again).toMatchObject({ outcome: 'already-ended', status: 'CANCELLED' });
    expect(await fleet.docker.listContainers({ all: true, filters: { label: [`agent-fleet.task-id=${handle.fleetTaskId}`] } })).toHaveLength(0);
  });

  it('refuses other compute types and foreign handles; an unknown fleet task is a failed session', async () => {
    const s = strategy();
    await expect(s.startSession({ taskId: 'X1', userId: 'u', payload: {}, blueprintConfig: { compute_type: 'ecs' } })).rejects.toThrow(AbcaAdapterError);
    await expect(s.pollSession({ sessionId: 'arn', strategyType: 'ecs' } as unknown as Ec2SessionHandle)).rejects.toThrow(/non-ec2 session handle/);
    expect(await s.pollSession({ sessionId: 't-gone', strategyType: 'ec2', fleetTaskId: 't-gone' })).toEqual({ status: 'failed', error: 'fleet task t-gone not found' });
    expect(await s.stopSession({ sessionId: 't-gone', strategyType: 'ec2', fleetTaskId: 't-gone' })).toBeUndefined();
  });
});

describe('heartbeat mirror into the ABCA TaskTable', () => {
  it("fleetd (abcaTaskTable set) writes agent_heartbeat_at on each heartbeat while ABCA says RUNNING, and nothing otherwise", async () => {
    // Prepare: one ABCA task RUNNING, one still HYDRATING; a daemon with 1 s heartbeats and 2 slots.
    const d = new TestDaemon(fleet, fleet.resources.instanceIds[0], { abcaTaskTable: abcaTable, slots: 2 }, { FLEETD_LOG_LEVEL: 'debug' }).start();
    daemons.push(d);
    const s = strategy({ DEMO_SLEEP_S: '4' });
    const running = await abcaTask('RUNNING');
    const hydrating = await abcaTask('HYDRATING');
    // Act
    const handles = await Promise.all([running, hydrating].map((id) => s.startSession({ taskId: id, userId: 'u', payload: { task_id: id }, blueprintConfig })));
    const ends = await Promise.all(handles.map((h) => pollUntil(s, h, (st) => st.status !== 'running')));
    // Assess
    expect(ends).toEqual([{ status: 'completed' }, { status: 'completed' }]);
    const mirrored = await abcaRow(running);
    expect(mirrored.agent_heartbeat_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(Date.now() - Date.parse(mirrored.agent_heartbeat_at as string)).toBeLessThan(60_000);
    expect(mirrored.status).toBe('RUNNING');
    expect(await abcaRow(hydrating)).not.toHaveProperty('agent_heartbeat_at');
    await d.waitForLog(new RegExp(`abca heartbeat not mirrored: the ABCA task is not RUNNING.*${hydrating}`));
  });

  it('a failing ABCA table is logged, never thrown', async () => {
    const lines: string[] = [];
    const mirror = new AbcaHeartbeatMirror({ ddb: fleet.clients.ddb, table: 'no-such-abca-table', log: new Logger({}, undefined, 'debug', (l) => lines.push(l)) });
    expect(await mirror.beat('ABCA1')).toBe('failed');
    expect(lines.join('\n')).toMatch(/abca heartbeat mirror failed \(the fleet task is unaffected\).*ResourceNotFoundException/);
  });
});
