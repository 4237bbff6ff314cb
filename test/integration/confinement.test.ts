/**
 * Confinement (docs/security.md, "Confinement") on an engine like the AMI's: a second dockerd of
 * this test's own, with `--userns-remap=default`, its own socket, data root, exec root, pidfile
 * and bridge, no iptables and no ip_forward change, so it never touches the shared engine or the
 * host's firewall; and a real fleetd whose DOCKER_HOST points at it. (Not `--bridge=none`:
 * dockerd with its bridge disabled deletes the host's `docker0`, the shared engine's bridge.)
 * Shows that a container's root is not host root, that a fleetd task still reads its payload and
 * writes its result under remapping, that the container keeps only the capabilities fleetd
 * grants, and that a task writing past its disk limit fails with a reason while the instance
 * keeps running tasks.
 *
 * Needs root, `ip` and dockerd on PATH (CI has them, .ci/run); without them the test FAILS, it
 * is not skipped. Not testable here: the engine-side bounds (`storage-opt size` and a sized
 * local volume need overlay2 on xfs mounted with pquota; this machine's kernel has no XFS quota
 * support), so /fleet/output is bounded by fleetd's own output disk (output-disk.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type Docker from 'dockerode';
import { engineFacts, type EngineFacts } from '../../daemon/src/confinement';
import { TaskStatus, type TaskSpecInput } from '../../daemon/src/contract';
import { dockerAnswers, dockerClient } from '../../daemon/src/docker';
import { FleetClient } from '../../scripts/lib/client';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';
import { ensureDemoImage } from '../../scripts/dev/local/demo-image';

/** CapEff of a process holding exactly CHOWN, DAC_OVERRIDE, FOWNER, KILL, SETGID, SETUID (bits 0, 1, 3, 5, 6, 7). */
const GRANTED_CAP_EFF = '00000000000000eb';

let dir: string;
/** The test dockerd's own bridge (a name of at most 15 characters, never docker0). */
const bridge = `flconf${process.pid % 100000}`;
let bridgeMade = false;
let dockerd: ChildProcess | undefined;
let dockerdExit: Promise<unknown> | undefined;
let docker: Docker;
let facts: EngineFacts;
let fleet: TestFleet;
let client: FleetClient;
let daemon: TestDaemon;

beforeAll(async () => {
  // Prerequisites: a failure, not a skip, when absent.
  expect(process.getuid?.()).toBe(0);
  expect(spawnSync('dockerd', ['--version']).status).toBe(0);
  expect(spawnSync('ip', ['-V']).status).toBe(0);
  // A short path: the socket's path must fit in sun_path.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fl-userns-'));
  // dockerd asks that the remapped root may traverse to its data root (o+x), nothing more.
  fs.chmodSync(dir, 0o711);
  const socket = path.join(dir, 'docker.sock');
  ip(['link', 'add', 'name', bridge, 'type', 'bridge']);
  bridgeMade = true;
  ip(['addr', 'add', `10.199.${process.pid % 250}.1/24`, 'dev', bridge]);
  ip(['link', 'set', bridge, 'up']);
  const log = fs.openSync(path.join(dir, 'dockerd.log'), 'a');
  dockerd = spawn('dockerd', [
    '--userns-remap=default',
    '--host', `unix://${socket}`,
    '--data-root', path.join(dir, 'root'),
    '--exec-root', path.join(dir, 'exec'),
    '--pidfile', path.join(dir, 'dockerd.pid'),
    `--bridge=${bridge}`,
    '--iptables=false',
    '--ip-forward=false',
  ], { stdio: ['ignore', log, log] });
  dockerdExit = new Promise((resolve) => dockerd!.once('exit', resolve));
  docker = dockerClient(`unix://${socket}`);
  const deadline = Date.now() + 60_000;
  while (!(await dockerAnswers(docker))) {
    if (dockerd.exitCode !== null || Date.now() > deadline) throw new Error(`the test's dockerd did not answer; its log:\n${fs.readFileSync(path.join(dir, 'dockerd.log'), 'utf8').slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  facts = engineFacts(await docker.info());
  await ensureDemoImage(docker);
  fleet = await freshFleet({ instances: 1 });
  client = new FleetClient(fleet.clients, fleet.resources);
  daemon = new TestDaemon(fleet, fleet.resources.instanceIds[0], { outputDisks: 'loop' }, { DOCKER_HOST: `unix://${socket}` }).start();
  await daemon.ready();
}, 180_000);

afterAll(async () => {
  await daemon?.stop();
  if (dockerd && dockerd.exitCode === null) {
    dockerd.kill('SIGTERM');
    const timer = setTimeout(() => dockerd?.kill('SIGKILL'), 30_000);
    await dockerdExit;
    clearTimeout(timer);
  }
  if (bridgeMade) ip(['link', 'del', bridge]);
  // Its mounts are gone with it; what is left are files (some owned by the remapped uid).
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 90_000);

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr}`);
}

function spec(extra: Partial<TaskSpecInput> = {}): TaskSpecInput & Record<string, unknown> {
  return { image: fleet.demoImage, env: { DEMO_SLEEP_S: '0' }, memory_mb: 128, cpus: 0.5, timeout_s: 60, ...extra };
}

test("the engine remaps: docker info says so, and the remapped root's ids come from its data root", () => {
  expect(facts.userns).toBe(true);
  expect(facts.rootUid).toBeGreaterThan(0);
  expect(facts.rootGid).toBeGreaterThan(0);
  console.log(`remapped root: host uid ${facts.rootUid}, gid ${facts.rootGid}`);
});

test("a container's root is not host root: what it creates in a bind mount belongs to the remapped uid", async () => {
  const shared = fs.mkdtempSync(path.join(dir, 'bind-'));
  fs.chmodSync(shared, 0o777);
  const container = await docker.createContainer({
    Image: fleet.demoImage,
    User: '0:0',
    Cmd: ['sh', '-c', 'id -u; cat /proc/self/uid_map; touch /m/made-by-root'],
    HostConfig: { Binds: [`${shared}:/m`] },
  });
  try {
    await container.start();
    expect((await container.wait()).StatusCode).toBe(0);
    const out = (await container.logs({ stdout: true, stderr: true })).toString('utf8');
    console.log(`inside: ${out.replace(/[^ -~]+/g, ' ')}`);
    // Root inside (uid 0), mapped to the unprivileged range outside: "0 <rootUid> <count>".
    expect(out).toMatch(new RegExp(`\\b0\\s+${facts.rootUid}\\s+\\d+`));
    const made = fs.statSync(path.join(shared, 'made-by-root'));
    console.log(`host owner of the file container root made: ${made.uid}:${made.gid}`);
    expect(made.uid).toBe(facts.rootUid);
    expect(made.uid).not.toBe(0);
  } finally {
    await container.remove({ force: true });
  }
});

test('a fleetd task on the remapped engine reads its payload, writes result.json, keeps only the granted capabilities, and COMPLETES', async () => {
  const { taskId } = await client.submitTask(
    spec({
      payload: { note: 'confined' },
      command: ['sh', '-c', 'grep CapEff /proc/self/status; cat /proc/self/uid_map; ls -ld /fleet/output; exec sh /agent/agent.sh'],
    }),
  );
  const done = await client.waitForTerminal(taskId, { timeoutMs: 90_000 });
  console.log(`log tail:\n${done.log_tail}`);
  expect(done.status).toBe(TaskStatus.COMPLETED);
  expect(done.result).toMatchObject({ summary: 'demo agent finished', task_id: taskId });
  expect((done.result as { payload_bytes: number }).payload_bytes).toBeGreaterThan(0);
  expect(done.log_tail).toMatch(new RegExp(`CapEff:\\s+${GRANTED_CAP_EFF}`));
  expect(done.log_tail).toMatch(new RegExp(`\\b0\\s+${facts.rootUid}\\s+\\d+`));
  // The output directory belongs to the container's root (uid 0 inside: the image has no passwd file).
  expect(done.log_tail).toMatch(/drwxrwxrwx\s+\d+\s+0\s+0\s.*\/fleet\/output/);
});

test('a task that writes more than its disk limit to /fleet/output FAILS with a reason saying so; the instance runs the next task', async () => {
  // 32 MiB into a 16 MiB output disk.
  const { taskId } = await client.submitTask(spec({ disk_mb: 16, command: ['sh', '-c', 'head -c 33554432 /dev/zero > /fleet/output/big'] }));
  const done = await client.waitForTerminal(taskId, { timeoutMs: 90_000 });
  console.log(`over quota: ${done.status}: ${done.reason}; log tail: ${done.log_tail?.trim()}`);
  expect(done.status).toBe(TaskStatus.FAILED);
  expect(done.reason).toBe('the task wrote more than its disk limit (16 MiB) to /fleet/output (exit code 1)');
  // busybox head reports ENOSPC on its stdout as "I/O error"; GNU tools say "No space left on device".
  expect(done.log_tail).toMatch(/I\/O error|No space left on device/);
  // The task's directory (its output disk included) goes, and nothing stays mounted. fleetd
  // removes it after the terminal write (and the container's removal), so wait for it.
  const taskDir = path.join(daemon.workDir, 'lib', 'tasks', taskId);
  const deadline = Date.now() + 30_000;
  while ((fs.existsSync(taskDir) || fs.readFileSync('/proc/self/mounts', 'utf8').includes(taskId)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  expect(fs.existsSync(taskDir)).toBe(false);
  expect(fs.readFileSync('/proc/self/mounts', 'utf8')).not.toContain(taskId);
  // The instance is fine: the next task runs to completion.
  const next = await client.submitTask(spec());
  expect((await client.waitForTerminal(next.taskId, { timeoutMs: 90_000 })).status).toBe(TaskStatus.COMPLETED);
});
