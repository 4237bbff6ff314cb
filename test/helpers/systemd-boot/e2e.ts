/**
 * The AMI's fleetd unit, booted for real, runs tasks from the local stack (issue 8):
 *
 *   npx tsx test/helpers/systemd-boot/e2e.ts [--keep]   (needs `npm run local -- up`)
 *
 * 1. A fresh, isolated fleet on the local stack (own queue, tables, bucket, instances).
 * 2. fleetd bundled with scripts/bundle.ts; boot-check.sh --prepare-only boots the systemd box,
 *    provisions it with packer/scripts/20-fleetd.sh and 30-host.sh, reboots it and checks host
 *    isolation.
 * 3. As user data would: /etc/fleetd/config.json + fleetd.env, `systemctl start fleetd`.
 * 4. A demo task completes; `kill -9` of fleetd → systemd restarts it and the next task
 *    completes; `systemctl stop` during a running task drains it (the task completes) and
 *    returns well within TimeoutStopSec.
 * 5. The lease guard under its real unit: the timer is enabled, a pass leaves a renewed task
 *    alone, and with fleetd stopped a pass removes an unleased container of the instance.
 *
 * What differs from an instance, and why:
 * - The box has no network (`--network none`); the local stack's AWS endpoint and IMDS, which
 *   listen on the host's loopback, are relayed through Unix sockets in a shared folder
 *   (relay.mjs in the box, unixToTcp below on the host).
 * - Task containers run on the local engine (its socket is mounted as /run/docker.sock), which
 *   resolves bind-mount sources on the host: fleetd's workDir is therefore a shared folder with
 *   the same path on both sides, made writable by a drop-in (ReadWritePaths=), instead of
 *   /var/lib/fleetd.
 */
import '../../../daemon/src/quiet-sdk-warning';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { CONTAINER_LABELS, CONTAINER_LABEL_MANAGED_BY_VALUE, TaskStatus } from '../../../daemon/src/contract';
import { FleetClient } from '../../../scripts/lib/client';
import { BUNDLE_ENTRIES, bundle } from '../../../scripts/bundle';
import { fleetdConfigFor } from '../../../scripts/dev/local/provision';
import { freshFleet } from '../../../scripts/dev/harness/fleet';

const HERE = __dirname;
/** Generous: on a 2-core machine shared with other test runs, a task can wait a while. */
const TASK_TIMEOUT_MS = 180_000;
const ROOT = path.resolve(HERE, '..', '..', '..');

let passed = 0;
let failed = 0;
function result(name: string, ok: boolean, detail: string): void {
  if (ok) passed++;
  else failed++;
  console.log(`e2e: ${(ok ? 'ok' : 'FAIL').padEnd(4)} ${name.padEnd(12)} ${detail}`);
}

function sh(cmd: string, args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/**
 * For commands that take long: spawnSync would block this process's event loop, and with it
 * the host side of the relay that fleetd in the box needs to finish its work.
 */
function shAsync(cmd: string, args: string[]): Promise<{ status: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}`.trim() }),
    );
  });
}

/** Host side of the relay: a Unix socket in the shared folder → 127.0.0.1:port. */
function unixToTcp(socketPath: string, port: number): Promise<net.Server> {
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((c) => {
    const upstream = net.connect(port, '127.0.0.1');
    c.pipe(upstream).pipe(c);
    c.on('error', () => upstream.destroy());
    upstream.on('error', () => c.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}

async function waitFor(what: string, timeoutMs: number, probe: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function main(): Promise<void> {
  const fleet = await freshFleet();
  const client = new FleetClient(fleet.clients, fleet.resources);
  const instanceId = fleet.resources.instanceIds[0];
  const awsPort = Number(new URL(fleet.env.AWS_ENDPOINT_URL).port);
  const imdsPort = Number(new URL(fleet.imdsUrl).port);

  const share = fs.mkdtempSync(path.join(ROOT, '.fleet', 'systemd-boot', 'e2e-'));
  const work = path.join(share, 'work');
  const relayDir = path.join(share, 'relay');
  fs.mkdirSync(work, { recursive: true });
  fs.mkdirSync(relayDir, { recursive: true });
  fs.copyFileSync(path.join(HERE, 'relay.mjs'), path.join(share, 'relay.mjs'));
  const relays = await Promise.all([awsPort, imdsPort].map((p) => unixToTcp(path.join(relayDir, `${p}.sock`), p)));
  let box = '';
  try {
    const built = await bundle(
      BUNDLE_ENTRIES.filter((e) => e.name === 'fleetd'),
      path.join(share, 'bundle'),
    );
    result('bundle', true, `${built.files.map((f) => path.basename(f)).join(', ')} in ${built.seconds.toFixed(1)} s`);

    const prepared = await shAsync('bash', [path.join(HERE, 'boot-check.sh'), '--bundle', path.join(share, 'bundle'), '--share', share, '--prepare-only']);
    console.log(prepared.out.replace(/^/gm, '  '));
    box = /boot-check: box (\S+)/.exec(prepared.out)?.[1] ?? '';
    if (prepared.status !== 0 || !box) throw new Error('boot-check.sh --prepare-only failed');
    const inBox = (args: string[], input?: string) => sh('docker', ['exec', '-i', box, ...args], input);
    const prop = (name: string) => inBox(['systemctl', 'show', '-p', name, '--value', 'fleetd.service']).out;
    const journal = () => inBox(['journalctl', '-u', 'fleetd.service', '-o', 'cat', '--no-pager']).out;
    const count = (re: RegExp) => journal().split('\n').filter((l) => re.test(l)).length;

    // The relay inside the box, then what user data writes, then start.
    const relayArgs = [awsPort, imdsPort].map((p) => `${p}=${path.join(relayDir, `${p}.sock`)}`);
    inBox(['systemd-run', '--unit=boot-relay', '/usr/bin/node-20', path.join(share, 'relay.mjs'), ...relayArgs]);
    await waitFor('the relay in the box', 15_000, () => [awsPort, imdsPort].every((p) => inBox(['nc', '-z', '127.0.0.1', String(p)]).status === 0));
    const config = fleetdConfigFor(fleet.resources, { workDir: work, minFreeDiskBytes: 64 * 1024 * 1024, minFreeInodes: 1000 });
    inBox(['sh', '-c', 'cat >/etc/fleetd/config.json'], JSON.stringify(config, null, 2));
    const env = {
      AWS_ENDPOINT_URL: fleet.env.AWS_ENDPOINT_URL,
      AWS_REGION: fleet.env.AWS_REGION,
      AWS_ACCESS_KEY_ID: fleet.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: fleet.env.AWS_SECRET_ACCESS_KEY,
      AWS_EC2_METADATA_SERVICE_ENDPOINT: `${fleet.imdsUrl}/${instanceId}/`,
    };
    inBox(['sh', '-c', 'cat >/etc/fleetd/fleetd.env'], Object.entries(env).map(([k, v]) => `${k}=${v}\n`).join(''));
    inBox(['mkdir', '-p', '/etc/systemd/system/fleetd.service.d']);
    inBox(['sh', '-c', 'cat >/etc/systemd/system/fleetd.service.d/boot-e2e.conf'], `[Service]\nReadWritePaths=${work}\n`);
    inBox(['systemctl', 'daemon-reload']);
    inBox(['systemctl', 'start', 'fleetd.service']);
    await waitFor('fleetd ready', 60_000, () => count(/fleetd ready/) >= 1 || prop('ActiveState') === 'failed');
    result('start', count(/fleetd ready/) >= 1, `fleetd.service ${prop('ActiveState')}, pid ${prop('MainPID')}, instance ${instanceId}, NRestarts ${prop('NRestarts')}`);
    for (const line of journal().split('\n').filter((l) => /"level":"(error|warn)"|Main process exited/.test(l))) console.log(`  ${line.slice(0, 300)}`);

    const demo = (sleep: string) => ({ image: fleet.demoImage, payload: { prompt: 'boot test' }, env: { DEMO_SLEEP_S: sleep }, memory_mb: 128, cpus: 0.5 });
    const first = await client.submitTask(demo('1'));
    const r1 = await client.waitForTerminal(first.taskId, { timeoutMs: TASK_TIMEOUT_MS });
    result('task', r1.status === TaskStatus.COMPLETED, `${first.taskId}: ${r1.status}, exit ${r1.exit_code}, on ${r1.instance_id}`);

    const pid = prop('MainPID');
    const restartsBefore = Number(prop('NRestarts'));
    const readyBefore = count(/fleetd ready/);
    inBox(['kill', '-9', pid]);
    await waitFor('fleetd restarted', 60_000, () => count(/fleetd ready/) > readyBefore);
    const second = await client.submitTask(demo('1'));
    const r2 = await client.waitForTerminal(second.taskId, { timeoutMs: TASK_TIMEOUT_MS });
    const restarts = Number(prop('NRestarts')) - restartsBefore;
    result('restart', restarts === 1 && r2.status === TaskStatus.COMPLETED, `kill -9 ${pid}: restarted by systemd as ${prop('MainPID')} (${restarts} restart); next task ${r2.status}`);

    const third = await client.submitTask(demo('8'));
    await waitFor('the task to run', TASK_TIMEOUT_MS, async () => (await client.getTask(third.taskId)).status === TaskStatus.RUNNING);
    // The lease guard under its real unit and sandbox: enabled, a pass succeeds, and a task whose
    // lease fleetd keeps renewing is left alone.
    const guardPass = inBox(['systemctl', 'start', 'fleetd-guard.service']);
    const guardResult = inBox(['systemctl', 'show', '-p', 'Result', '--value', 'fleetd-guard.service']).out.trim();
    const timerEnabled = inBox(['systemctl', 'is-enabled', 'fleetd-guard.timer']).out.trim();
    const stillRunning = (await fleet.docker.listContainers({ filters: { label: [`${CONTAINER_LABELS.taskId}=${third.taskId}`] } })).length === 1;
    const guardLog = inBox(['journalctl', '-u', 'fleetd-guard.service', '-o', 'cat', '--no-pager']).out.trim();
    result('guard', guardPass.status === 0 && guardResult === 'success' && timerEnabled === 'enabled' && stillRunning && !/stopped a container|error/.test(guardLog),
      `fleetd-guard.timer ${timerEnabled}; one pass: ${guardResult}; the running task's container ${stillRunning ? 'left alone' : 'GONE'}${guardLog ? `; journal: ${guardLog.split('\n').slice(-2).join(' | ').slice(0, 200)}` : ''}`);
    const t0 = Date.now();
    const stop = await shAsync('docker', ['exec', box, 'systemctl', 'stop', 'fleetd.service']);
    const tookS = (Date.now() - t0) / 1000;
    const r3 = await client.waitForTerminal(third.taskId, { timeoutMs: 30_000 });
    result(
      'stop',
      stop.status === 0 && prop('Result') === 'success' && r3.status === TaskStatus.COMPLETED && tookS < 900,
      `systemctl stop during ${third.taskId}: ${tookS.toFixed(1)} s (TimeoutStopSec ${prop('TimeoutStopUSec')}), Result=${prop('Result')}, task drained: ${r3.status}`,
    );

    // fleetd is stopped now: a running task container of this instance without a lease (what a
    // dead fleetd leaves) must be removed by one pass of the guard, through its real sandbox.
    const orphan = await fleet.docker.createContainer({
      Image: fleet.demoImage,
      Cmd: ['sleep', '120'],
      Labels: { [CONTAINER_LABELS.managedBy]: CONTAINER_LABEL_MANAGED_BY_VALUE, [CONTAINER_LABELS.taskId]: 't-e2e-orphan', [CONTAINER_LABELS.attempt]: '1', [CONTAINER_LABELS.instanceId]: instanceId },
    });
    await orphan.start();
    const orphanPass = inBox(['systemctl', 'start', 'fleetd-guard.service']);
    const orphanGone = await orphan.inspect().then(() => false, () => true);
    if (!orphanGone) await orphan.remove({ force: true }).catch(() => undefined);
    const orphanLog = inBox(['journalctl', '-u', 'fleetd-guard.service', '-o', 'cat', '--no-pager']).out;
    result('orphan', orphanPass.status === 0 && orphanGone && /stopped a container whose lease fleetd did not renew.*t-e2e-orphan/.test(orphanLog),
      `an unleased container of ${instanceId} with fleetd stopped: ${orphanGone ? 'removed by one guard pass' : 'STILL THERE'}`);
  } catch (err) {
    result('run', false, (err as Error).message);
    if (box) {
      const tail = sh('docker', ['exec', box, 'journalctl', '-u', 'fleetd.service', '-o', 'cat', '--no-pager', '-n', '25']).out;
      console.log(tail.replace(/^/gm, '  journal: '));
    }
  } finally {
    if (box && process.argv.includes('--keep')) console.log(`e2e: kept the box: docker rm -f ${box}`);
    else if (box) sh('docker', ['rm', '-f', box]);
    for (const r of relays) r.close();
    fs.rmSync(share, { recursive: true, force: true });
  }
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

void main();
