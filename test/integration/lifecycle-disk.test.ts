/**
 * Disk hygiene on real Docker + moto: a short disk (bytes, then inodes) stops claiming and
 * `fleetd status` says why; claiming resumes when space is back. The work dir is a small tmpfs
 * (root, as on these machines) so "low disk" is real, not simulated. And the scheduled prune
 * through dockerode: what it removes and what it must keep.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONTAINER_LABELS, CONTAINER_LABEL_MANAGED_BY_VALUE, TaskStatus } from '../../daemon/src/contract';
import { Logger, Redactor } from '../../daemon/src/log';
import { Pruner } from '../../daemon/src/prune';
import { FleetClient } from '../../scripts/lib/client';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

const FLEETD = path.join(__dirname, '..', '..', 'bin', 'fleetd.js');
const MiB = 1024 * 1024;

let fleet: TestFleet;
const daemons: TestDaemon[] = [];
const mounts: string[] = [];

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
});

afterAll(() => {
  for (const m of mounts) execFileSync('umount', ['-l', m]);
});

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

function fleetdStatus(d: TestDaemon): string {
  return execFileSync(process.execPath, [FLEETD, 'status'], { env: { ...process.env, FLEETD_SOCKET: d.socketPath }, encoding: 'utf8' });
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('low disk, then low inodes: claiming stops and `fleetd status` says why; it resumes when space is back', async () => {
  // Prepare: the work dir on a 48 MiB / 3000-inode tmpfs; claiming needs 24 MiB and 1500 inodes.
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetd-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m,nr_inodes=3000', 'tmpfs', workDir]);
  mounts.push(workDir);
  const d = new TestDaemon(fleet, fleet.resources.instanceIds[0], { workDir, minFreeDiskBytes: 24 * MiB, minFreeInodes: 1500, prune: { intervalSeconds: 20 } }).start();
  daemons.push(d);
  await d.ready();
  const client = new FleetClient(fleet.clients, fleet.resources);

  // Act 1: fill 32 MiB; a task arrives.
  const filler = path.join(workDir, 'filler');
  fs.writeFileSync(filler, Buffer.alloc(32 * MiB));
  await d.waitForLog(/not claiming: disk short/);
  const { taskId } = await client.submitTask({ image: fleet.demoImage, payload: {}, env: { DEMO_SLEEP_S: '1' }, memory_mb: 128, cpus: 0.5 });
  const lowDisk = fleetdStatus(d);
  await new Promise((r) => setTimeout(r, 3000));
  const waiting = await client.getTask(taskId);

  // Assess 1
  expect(lowDisk).toMatch(new RegExp(`^not claiming: low disk on ${workDir}: 0\\.\\d\\d GiB free, need 0\\.02 GiB$`, 'm'));
  expect(waiting.status).toBe(TaskStatus.QUEUED);

  // Act 2: inodes short, then the space back (never a moment with room for both).
  const many = path.join(workDir, 'many');
  fs.mkdirSync(many);
  for (let i = 0; i < 1600; i++) fs.writeFileSync(path.join(many, String(i)), '');
  fs.rmSync(filler);
  await until('the status to name the inodes', () => /low inodes/.test(fleetdStatus(d)));
  const lowInodes = fleetdStatus(d);
  expect((await client.getTask(taskId)).status).toBe(TaskStatus.QUEUED);

  // Act 3: room again.
  fs.rmSync(many, { recursive: true });
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });

  // Assess 2 and 3
  expect(lowInodes).toMatch(new RegExp(`^not claiming: low inodes on ${workDir}: \\d+ free, need 1500$`, 'm'));
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(fleetdStatus(d)).toMatch(/^claiming: polling the queue$/m);
  // The scheduled prune ran (first run after 1–10 % of the 20 s interval).
  await d.waitForLog(/"msg":"prune done"/, 30_000);
});

test('prune: stopped containers no live run owns and images fleetd used long ago go; live runs, other instances, baked and recently used images and fresh logs stay', async () => {
  // Prepare: containers labelled as fleetd's on "our" instance and on another one.
  const docker = fleet.docker;
  const me = `i-prune${randomBytes(5).toString('hex')}`;
  const other = `i-other${randomBytes(5).toString('hex')}`;
  const labels = (instanceId: string, taskId: string) => ({ [CONTAINER_LABELS.managedBy]: CONTAINER_LABEL_MANAGED_BY_VALUE, [CONTAINER_LABELS.instanceId]: instanceId, [CONTAINER_LABELS.taskId]: taskId, [CONTAINER_LABELS.attempt]: '1' });
  const make = (name: string, l: Record<string, string>) => docker.createContainer({ name, Image: fleet.demoImage, Cmd: ['true'], Labels: l });
  const suffix = randomBytes(4).toString('hex');
  const orphan = await make(`prune-orphan-${suffix}`, labels(me, 'orphan-task'));
  const live = await make(`prune-live-${suffix}`, labels(me, 'live-task'));
  const foreign = await make(`prune-foreign-${suffix}`, labels(other, 'orphan-task'));
  // An image of our own (a commit of the demo image: a new id no other test's container uses),
  // under three tags.
  const repo = `agent-fleet/prune-test-${suffix}`;
  const base = await docker.createContainer({ Image: fleet.demoImage, Cmd: ['true'] });
  const committed = (await base.commit({ repo, tag: 'old' })) as { Id: string };
  await base.remove();
  for (const tag of ['recent', 'baked']) await docker.getImage(committed.Id).tag({ repo, tag });
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetd-prune-'));
  const now = Date.now();
  const log = new Logger({ component: 'test' }, new Redactor(), 'warn', () => undefined);
  const pruner = new Pruner({ docker, instanceId: me, workDir, afterHours: 24, liveTaskIds: () => new Set(['live-task']), log });
  pruner.imageUse.touch(`${repo}:old`, now - 48 * 3600_000);
  pruner.imageUse.touch(`${repo}:recent`, now - 3600_000);
  fs.mkdirSync(path.join(workDir, 'logs'));
  const oldLog = path.join(workDir, 'logs', 'old-task.log');
  const freshLog = path.join(workDir, 'logs', 'fresh-task.log');
  fs.writeFileSync(oldLog, 'old');
  fs.writeFileSync(freshLog, 'fresh');
  fs.utimesSync(oldLog, new Date(now - 48 * 3600_000), new Date(now - 48 * 3600_000));
  try {
    // Act
    const report = await pruner.pruneOnce();
    // Assess
    const exists = (c: { inspect: () => Promise<unknown> }) => c.inspect().then(() => true, () => false);
    expect(report.containers).toContain(`prune-orphan-${suffix}`);
    expect(await exists(orphan)).toBe(false);
    expect(await exists(live)).toBe(true);
    expect(await exists(foreign)).toBe(true);
    expect(report.images).toContain(`${repo}:old`);
    const tags = (await docker.getImage(committed.Id).inspect()).RepoTags;
    expect(tags.sort()).toEqual([`${repo}:baked`, `${repo}:recent`]);
    expect(tags).not.toContain(`${repo}:old`);
    expect(Object.keys(pruner.imageUse.read())).toEqual([`${repo}:recent`]);
    expect(fs.existsSync(oldLog)).toBe(false);
    expect(fs.existsSync(freshLog)).toBe(true);
  } finally {
    await Promise.all([live, foreign].map((c) => c.remove({ force: true }).catch(() => undefined)));
    for (const tag of ['old', 'recent', 'baked']) await docker.getImage(`${repo}:${tag}`).remove().catch(() => undefined);
  }
});
