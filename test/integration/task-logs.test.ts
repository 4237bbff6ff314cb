/**
 * Logs and artifacts leave the instance (docs/logs.md, issue #16), against the real local stack:
 * real fleetd processes, real containers, moto's CloudWatch Logs and S3.
 *
 * - What fleetd shipped is read with a client the project did not write: the AWS CLI
 *   (`aws logs get-log-events`, `aws s3 ls`), and it equals fleetd's local log file.
 * - `fleet logs` reads the stream after fleetd's work directory is gone; `fleet artifacts`
 *   lists and downloads; hostile names, a symlink and result.json are handled as documented.
 * - `fleet logs --follow`, run as a child process with a cwd and environment that cannot reach
 *   fleetd's work directory, sees each line soon after the container printed it (the engine's
 *   own timestamp of the line, from the json-file log): the lag is printed, only a generous
 *   bound is asserted.
 * - A flood (a container writing 100 MiB to stdout as fast as it can): the task completes,
 *   heartbeats keep coming (largest gap printed, generous bound), fleetd's RSS is printed and
 *   bounded, and the stream records how much was dropped.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { TaskStatus, taskLogStreamName, type TaskRecord } from '../../daemon/src/contract';
import { FleetClient } from '../../scripts/lib/client';
import { TaskLogStreamReader, createLogsClient } from '../../scripts/lib/task-logs';
import { PROJECT_ROOT } from '../../scripts/dev/local/paths';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

const run = promisify(execFile);
const FLEET = path.join(PROJECT_ROOT, 'bin', 'fleet.js');

let fleet: TestFleet;
let client: FleetClient;
const daemons: TestDaemon[] = [];

beforeAll(async () => {
  fleet = await freshFleet({ instances: 2, minSize: 1 });
  client = new FleetClient(fleet.clients, { ...fleet.resources, logGroup: fleet.resources.logGroup });
});

afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop(20_000)));
});

function daemon(index: number, overrides: ConstructorParameters<typeof TestDaemon>[2] = {}): TestDaemon {
  const d = new TestDaemon(fleet, fleet.resources.instanceIds[index], overrides).start();
  daemons.push(d);
  return d;
}

/** The environment of a shell with the AWS CLI (v1 ignores AWS_REGION: --region is passed). */
const awsEnv = () => ({ ...process.env, ...fleet.env }) as NodeJS.ProcessEnv;

async function aws(args: string[]): Promise<string> {
  const { stdout } = await run('aws', [...args, '--region', fleet.resources.region, '--endpoint-url', fleet.env.AWS_ENDPOINT_URL], { env: awsEnv(), timeout: 60_000, maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}

/** Every event of a stream, through the AWS CLI (paging with the forward token). */
async function cliLogEvents(stream: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  for (let i = 0; i < 500; i++) {
    const page = JSON.parse(await aws(['logs', 'get-log-events', '--log-group-name', fleet.resources.logGroup, '--log-stream-name', stream, '--start-from-head', ...(token ? ['--next-token', token] : [])])) as { events: Array<{ message: string }>; nextForwardToken?: string };
    out.push(...page.events.map((e) => e.message));
    if (!page.nextForwardToken || page.nextForwardToken === token || page.events.length === 0) break;
    token = page.nextForwardToken;
  }
  return out;
}

function fleetCli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLEET, ...args], { cwd: opts.cwd ?? PROJECT_ROOT, env: (opts.env ?? { ...process.env, ...fleet.env }) as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function submit(command: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const r = await client.submitTask({ image: fleet.demoImage, command, memory_mb: 256, cpus: 1, timeout_s: 600, ...extra });
  return r.taskId;
}

/** An environment for a `fleet` process that knows the fleet's names and AWS endpoint, and nothing of fleetd's work dir. */
function outsiderEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'NODE_OPTIONS'];
  const base = Object.fromEntries(keep.filter((k) => process.env[k]).map((k) => [k, process.env[k]!]));
  const env: Record<string, string> = { ...base };
  for (const [k, v] of Object.entries(fleet.env)) if (/^(AWS_|FLEET_)/.test(k) && !k.startsWith('FLEET_LOCAL')) env[k] = v;
  env.FLEETD_WORK_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'not-fleetd-'));
  return env;
}

test('a finished task: its stream (read with the AWS CLI) equals the local log file; artifacts are in S3 (aws s3 ls) and on the record; fleet logs/artifacts work after the work dir is gone', async () => {
  const d = daemon(0);
  await d.ready();
  const script = [
    'echo "first line"',
    'echo "to stderr" >&2',
    'echo',
    'i=0; while [ $i -lt 200 ]; do echo "numbered line $i"; i=$((i+1)); done',
    'mkdir -p "$FLEET_OUTPUT_DIR/sub"',
    'echo report > "$FLEET_OUTPUT_DIR/report.md"',
    'echo nested > "$FLEET_OUTPUT_DIR/sub/notes.txt"',
    'echo newline > "$FLEET_OUTPUT_DIR/$(printf "a\\nb")"',
    'ln -s /etc/passwd "$FLEET_OUTPUT_DIR/passwd-link"',
    'echo \'{"ok":true}\' > "$FLEET_OUTPUT_DIR/result.json"',
    'echo "last line"',
  ].join('; ');
  const taskId = await submit(['/bin/sh', '-c', script]);
  const record = await client.waitForTerminal(taskId, { timeoutMs: 120_000 });
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(record.result).toEqual({ ok: true });

  const logFile = path.join(d.workDir, 'lib', 'logs', `${taskId}.log`);
  const fileLines = fs.readFileSync(logFile, 'utf8').replace(/\n$/, '').split('\n');
  const shipped = await cliLogEvents(taskLogStreamName(taskId, record.attempt));
  // A blank line is shipped as one space (CloudWatch refuses empty events).
  expect(shipped.map((m) => (m === ' ' ? '' : m))).toEqual(fileLines);
  expect(shipped).toContain('first line');
  expect(shipped).toContain('to stderr');
  // stdout and stderr are two streams: each keeps its own order in the file and the stream, not
  // the order between them (task-output.ts holds a stream's tail back for redaction until more of
  // that stream or its end; under load stderr's one line was written after stdout's last).
  expect(shipped.filter((m) => m !== 'to stderr').at(-1)).toBe('last line');
  console.log(`stream ${taskLogStreamName(taskId, record.attempt)}: ${shipped.length} events, equal to the ${fileLines.length}-line local file`);

  const listing = await aws(['s3', 'ls', '--recursive', `s3://${fleet.resources.payloadBucket}/artifacts/${taskId}/`]);
  console.log(`aws s3 ls:\n${listing}`);
  const keys = listing.trim().split('\n').map((l) => l.trim().split(/\s+/).slice(3).join(' ')).sort();
  const prefix = `artifacts/${taskId}/${record.attempt}/`;
  expect(keys).toEqual([`${prefix}a_b`, `${prefix}report.md`, `${prefix}sub/notes.txt`]);
  expect(record.artifacts).toEqual({ prefix, count: 3, bytes: 'newline\n'.length + 'report\n'.length + 'nested\n'.length, truncated: true });
  expect(record.artifacts_error).toBeUndefined();

  // fleetd's work directory is gone (the instance was terminated): the stream still answers.
  await d.stop(20_000);
  fs.rmSync(d.workDir, { recursive: true, force: true });
  const logs = await fleetCli(['logs', taskId], { cwd: os.tmpdir(), env: outsiderEnv() });
  expect(logs.code).toBe(0);
  expect(logs.stderr).toMatch(/from CloudWatch Logs/);
  expect(logs.stdout.split('\n')).toEqual([...fileLines, '']);

  const dl = fs.mkdtempSync(path.join(os.tmpdir(), 'artifacts-dl-'));
  const arts = await fleetCli(['artifacts', taskId, '--download', dl, '--json'], { cwd: os.tmpdir(), env: outsiderEnv() });
  expect(arts.code).toBe(0);
  const doc = JSON.parse(arts.stdout) as { artifacts: Array<{ path: string; size: number }>; summary: TaskRecord['artifacts'] };
  expect(doc.artifacts.map((a) => a.path).sort()).toEqual(['a_b', 'report.md', 'sub/notes.txt']);
  expect(doc.summary).toEqual(record.artifacts);
  expect(fs.readFileSync(path.join(dl, 'sub', 'notes.txt'), 'utf8')).toBe('nested\n');
});

test('fleet logs --follow from a process with no access to the work dir sees each line soon after the container printed it', async () => {
  const d = daemon(1);
  await d.ready();
  const lines = 8;
  const taskId = await submit(['/bin/sh', '-c', `sleep 3; i=1; while [ $i -le ${lines} ]; do echo "tick $i"; i=$((i+1)); sleep 1.5; done; sleep 6`]);
  const seen = new Map<string, number>();
  const env = outsiderEnv();
  const child = spawn(process.execPath, [FLEET, 'logs', taskId, '--follow'], { cwd: os.tmpdir(), env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let partial = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', (c: Buffer) => {
    const now = Date.now();
    partial += c.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) if (!seen.has(p)) seen.set(p, now);
  });
  // The engine's own timestamp of each line (json-file log), read while the container still sleeps.
  const printedAt = new Map<string, number>();
  const deadline = Date.now() + 120_000;
  while (printedAt.size < lines && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    const found = await fleet.docker.listContainers({ filters: { label: [`agent-fleet.task-id=${taskId}`] } });
    if (!found.length) continue;
    const buf = (await fleet.docker.getContainer(found[0].Id).logs({ stdout: true, stderr: true, timestamps: true, follow: false })) as unknown as Buffer;
    // Multiplexed frames: 8-byte header, then the payload ("<RFC3339Nano> <line>").
    for (let off = 0; off + 8 <= buf.length; ) {
      const len = buf.readUInt32BE(off + 4);
      const text = buf.subarray(off + 8, off + 8 + len).toString('utf8');
      off += 8 + len;
      for (const l of text.split('\n').filter(Boolean)) {
        const sp = l.indexOf(' ');
        printedAt.set(l.slice(sp + 1), Date.parse(l.slice(0, sp)));
      }
    }
  }
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code).toBe(0);
  expect(stderr).toMatch(/from CloudWatch Logs.*following/);
  const lags: number[] = [];
  for (let i = 1; i <= lines; i++) {
    const line = `tick ${i}`;
    expect(printedAt.has(line)).toBe(true);
    expect(seen.has(line)).toBe(true);
    lags.push(seen.get(line)! - printedAt.get(line)!);
  }
  console.log(`follow lag per line (ms, container print -> fleet logs --follow stdout): ${lags.join(', ')}; max ${Math.max(...lags)} ms`);
  expect(Math.max(...lags)).toBeLessThanOrEqual(10_000);
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  expect(record.status).toBe(TaskStatus.COMPLETED);
  await d.stop(20_000);
});

test('a flood of 100 MiB on stdout: the task completes, heartbeats keep coming, fleetd RSS stays bounded, the stream counts what was dropped', async () => {
  // Production-like proportions (a beat every 2 s, a 20 s lease): "on time" means no gap the lease would not cover.
  const d = daemon(0, { timings: { heartbeatSeconds: 2, leaseSeconds: 20 } });
  await d.ready();
  const taskId = await submit(['/bin/sh', '-c', 'echo "flood starts"; yes "flood line to fill the log, as fast as it can go" | head -c 104857600; echo "flood ends"']);
  let lastBeat: number | undefined;
  let maxGap = 0;
  let maxRssKb = 0;
  let record: TaskRecord;
  const started = Date.now();
  for (;;) {
    record = await client.getTask(taskId);
    if (record.heartbeat_at !== undefined && record.status === TaskStatus.RUNNING) {
      if (lastBeat !== undefined && record.heartbeat_at !== lastBeat) maxGap = Math.max(maxGap, record.heartbeat_at - lastBeat);
      lastBeat = record.heartbeat_at;
    }
    const status = fs.readFileSync(`/proc/${d.pid}/status`, 'utf8');
    maxRssKb = Math.max(maxRssKb, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
    if (record.status === TaskStatus.COMPLETED || record.status === TaskStatus.FAILED || Date.now() - started > 170_000) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(`flood: ${record.status} after ${seconds.toFixed(1)} s; largest heartbeat gap ${maxGap} ms (interval 2000 ms, lease 20000 ms); fleetd max RSS ${(maxRssKb / 1024).toFixed(0)} MiB`);
  expect(record.status).toBe(TaskStatus.COMPLETED);
  // Heartbeats on time: every gap well inside the lease, so the task was never at risk of takeover.
  expect(maxGap).toBeLessThan(15_000);
  expect(maxRssKb / 1024).toBeLessThan(600);
  // 300k+ events: read with the client library (the AWS CLI reads the stream in the first test).
  const reader = new TaskLogStreamReader(await createLogsClient(fleet.resources.region), fleet.resources.logGroup, taskId, record.attempt);
  const shipped = ((await reader.read()) ?? []).map((l) => l.message);
  const marker = shipped.find((m) => /^\[fleetd\] dropped \d+ lines \(\d+ bytes\) under back-pressure$/.test(m));
  const shippedBytes = shipped.reduce((n, m) => n + Buffer.byteLength(m) + 1, 0);
  console.log(`stream: ${shipped.length} events, ${(shippedBytes / 1024 / 1024).toFixed(1)} MiB shipped; ${shipped.filter((m) => m.startsWith('[fleetd] dropped')).join(' | ')}`);
  expect(marker).toBeDefined();
  expect(shipped[0]).toBe('flood starts');
  const shippedLine = d.lines.find((l) => l.includes('task log shipped') && l.includes(taskId));
  // Without it, the task's last log-related lines say what happened instead (a failed close, …).
  console.log(`fleetd: ${shippedLine ?? `no "task log shipped" line; the task's last lines about its log:\n${d.lines.filter((l) => l.includes(taskId) && /log/i.test(l)).slice(-8).join('\n')}`}`);
  expect(shippedLine).toBeDefined();
}, 240_000);
