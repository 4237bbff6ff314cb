/**
 * The lease guard (daemon/src/lease-guard.ts, `fleetd guard`): no container outlives the lease
 * its fleetd last renewed, even when fleetd is dead. The chaos suite's open window: a fleetd
 * down for longer than a lease while its container runs, then a takeover elsewhere.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONTAINER_LABELS, CONTAINER_LABEL_MANAGED_BY_VALUE, TaskStatus } from '../../daemon/src/contract';
import { LeaseFiles, guardMarginMs, guardOnce } from '../../daemon/src/lease-guard';
import { FleetClient } from '../../scripts/lib/client';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
let client: FleetClient;
const created: string[] = [];

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
  client = new FleetClient(fleet.clients, fleet.resources);
});

afterAll(async () => {
  const left = await fleet.docker.listContainers({ all: true, filters: { label: [`${CONTAINER_LABELS.instanceId}=${fleet.resources.instanceIds[0]}`] } });
  await Promise.all([...created, ...left.map((c) => c.Id)].map((id) => fleet.docker.getContainer(id).remove({ force: true }).catch(() => undefined)));
});

/** A running container labelled as fleetd labels a task's container. */
async function taskContainer(instanceId: string, taskId: string, attempt: number): Promise<string> {
  const c = await fleet.docker.createContainer({
    Image: fleet.demoImage,
    Cmd: ['sleep', '120'],
    Labels: { [CONTAINER_LABELS.managedBy]: CONTAINER_LABEL_MANAGED_BY_VALUE, [CONTAINER_LABELS.taskId]: taskId, [CONTAINER_LABELS.attempt]: String(attempt), [CONTAINER_LABELS.instanceId]: instanceId },
    HostConfig: { Init: true },
  });
  created.push(c.id);
  await c.start();
  return c.id;
}

const exists = async (id: string) => fleet.docker.getContainer(id).inspect().then(() => true, () => false);

test('one pass stops exactly the containers without a live lease of their own attempt, on this instance only', async () => {
  // Prepare: five containers of this instance and one of another; lease files for some.
  const files = new LeaseFiles(fs.mkdtempSync(path.join(os.tmpdir(), 'guard-')));
  const me = `i-guard${Date.now().toString(16)}`;
  files.writeInstanceId(me);
  const now = Date.now();
  const margin = guardMarginMs(40); // 10 s
  const live = await taskContainer(me, 't-live', 1);
  files.write({ task_id: 't-live', attempt: 1, lease_expires_at: now + 30_000 });
  const nearEnd = await taskContainer(me, 't-near-end', 1);
  files.write({ task_id: 't-near-end', attempt: 1, lease_expires_at: now + 5_000 });
  const staleAttempt = await taskContainer(me, 't-stale', 1);
  files.write({ task_id: 't-stale', attempt: 2, lease_expires_at: now + 30_000 });
  const noLease = await taskContainer(me, 't-none', 1);
  const otherInstance = await taskContainer('i-someoneelse', 't-other', 1);

  // Act
  const pass = await guardOnce({ docker: fleet.docker, files, marginMs: margin, now });

  // Assess
  expect(pass.checked).toBe(4);
  expect(pass.killed.map((k) => k.taskId).sort()).toEqual(['t-near-end', 't-none', 't-stale']);
  expect(pass.killed.find((k) => k.taskId === 't-stale')?.why).toMatch(/attempt 1 no longer holds the lease \(attempt 2 does\)/);
  expect(await exists(live)).toBe(true);
  expect(await exists(otherInstance)).toBe(true);
  for (const id of [nearEnd, staleAttempt, noLease]) expect(await exists(id)).toBe(false);
});

test('a guard pass with no fleetd ever booted in its work dir touches nothing', async () => {
  const files = new LeaseFiles(fs.mkdtempSync(path.join(os.tmpdir(), 'guard-')));
  const pass = await guardOnce({ docker: fleet.docker, files, marginMs: 1000 });
  expect(pass).toEqual({ checked: 0, killed: [] });
});

test('fleetd killed for good: `fleetd guard` stops its container before the lease can be taken over', async () => {
  // Prepare: a real fleetd runs a long task, then dies and is not restarted.
  const instanceId = fleet.resources.instanceIds[0];
  const timings = { leaseSeconds: 16, heartbeatSeconds: 2 };
  const daemon = new TestDaemon(fleet, instanceId, { timings }).start();
  await daemon.ready(90_000);
  const { taskId } = await client.submitTask({ image: fleet.demoImage, env: { DEMO_SLEEP_S: '300' }, memory_mb: 64, cpus: 0.25 });
  await daemon.waitForLog(/container started/, 90_000);
  await daemon.kill9();
  const leaseEnd = (await client.getTask(taskId)).lease_expires_at ?? 0;
  expect(leaseEnd).toBeGreaterThan(Date.now());

  // Act: the guard as its systemd timer would run it, every second here.
  const guard = spawn(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'fleetd.js'), 'guard', '--every', '1'], {
    env: { ...process.env, ...fleet.env, FLEETD_CONFIG: path.join(daemon.workDir, 'config.json') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  guard.stdout.on('data', (c: Buffer) => (out += c.toString()));
  guard.stderr.on('data', (c: Buffer) => (out += c.toString()));
  let goneAt = 0;
  try {
    while (Date.now() < leaseEnd + 10_000) {
      const running = await fleet.docker.listContainers({ filters: { label: [`${CONTAINER_LABELS.taskId}=${taskId}`] } });
      if (running.length === 0) {
        goneAt = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    // The guard logs after its pass: give the line a moment before the guard is stopped.
    for (let i = 0; i < 40 && !/stopped a container/.test(out); i++) await new Promise((r) => setTimeout(r, 250));
  } finally {
    guard.kill('SIGKILL');
  }

  // Assess: gone before the lease ended (the earliest moment another instance may take over),
  // the guard said why, and the record still shows the dead attempt's lease for a takeover.
  expect(goneAt).toBeGreaterThan(0);
  expect(goneAt).toBeLessThan(leaseEnd);
  expect(out).toMatch(/stopped a container whose lease fleetd did not renew.*has not renewed it/);
  expect((await client.getTask(taskId)).status).toBe(TaskStatus.RUNNING);
});
