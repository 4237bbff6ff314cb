/**
 * `npm run demo`: the main job on the local stack. Brings the stack up (when it is not
 * running), provisions a fresh fleet, starts one fleetd with 2 slots acting as an instance of
 * its Auto Scaling group, submits four demo tasks (one succeeds with a result, one fails with
 * an exit code, one times out, one reads a secret that the log tail shows redacted), prints
 * progress as the records change, then a summary table. It ends with what leaves the instance
 * (docs/logs.md): fleetd's work directory is deleted (as when the instance is terminated), and
 * the succeeding task's output is read back from CloudWatch Logs and its artifacts listed from
 * S3. Everything it started is stopped.
 */
import '../../daemon/src/quiet-sdk-warning';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createAwsClients } from '../../daemon/src/aws';
import { FLEETD_PROCESS_ENV, artifactsPrefix, isTerminal, type TaskRecord, type TaskSpecInput } from '../../daemon/src/contract';
import { listArtifacts } from '../lib/artifacts';
import { FleetClient } from '../lib/client';
import { createLogsClient, displayLine, TaskLogStreamReader } from '../lib/task-logs';
import { FLEET_DIR, PROJECT_ROOT } from './local/paths';
import { fleetEnvironment, fleetdConfigFor, provisionFleet } from './local/provision';
import { down, readEnvFile, status, up } from './local/stack';

interface DemoTask {
  readonly name: string;
  readonly spec: TaskSpecInput & Record<string, unknown>;
}

const pad = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));
const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)}s`);

async function main(): Promise<void> {
  const t0 = Date.now();
  const wasUp = (await status()).components.every((c) => c.up);
  if (!wasUp) {
    console.log('starting the local stack (dockerd, moto, IMDS, SSM agent)...');
    await up();
  }
  const env = readEnvFile()!;
  Object.assign(process.env, env);
  const clients = createAwsClients();
  const fleetName = `demo${Date.now().toString(36)}`;
  const resources = await provisionFleet(clients, fleetName, { instances: 1, minSize: 1 });
  const client = new FleetClient(clients, resources);
  const image = env.FLEET_LOCAL_DEMO_IMAGE;

  const workDir = path.join(FLEET_DIR, 'demo', fleetName);
  fs.mkdirSync(workDir, { recursive: true });
  const configPath = path.join(workDir, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify(fleetdConfigFor(resources, { slots: 2, workDir: path.join(workDir, 'lib'), socketPath: path.join(workDir, 'fleetd.sock'), minFreeDiskBytes: 256 * 1024 * 1024, minFreeInodes: 10_000 })));
  const instanceId = resources.instanceIds[0];
  const daemonLog = path.join(workDir, 'fleetd.log');
  const logFd = fs.openSync(daemonLog, 'a');
  const fleetd = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'fleetd.js'), 'run'], {
    // FLEET_* variables override the config file: point them at this demo's fleet too.
    env: { ...process.env, ...FLEETD_PROCESS_ENV, ...fleetEnvironment(resources), FLEETD_CONFIG: configPath, AWS_EC2_METADATA_SERVICE_ENDPOINT: `${env.FLEET_LOCAL_IMDS_URL}/${instanceId}/` },
    stdio: ['ignore', logFd, logFd],
  });
  const exited = new Promise<number | null>((resolve) => fleetd.once('exit', resolve));
  console.log(`fleet "${fleetName}": fleetd (pid ${fleetd.pid}) acting as ${instanceId} with 2 slots; its log: ${path.relative(PROJECT_ROOT, daemonLog)}`);

  // Submit once fleetd polls, so "dispatch" measures an idle daemon, not its boot.
  const readyBy = Date.now() + 60_000;
  while (!fs.readFileSync(daemonLog, 'utf8').includes('fleetd ready')) {
    if (Date.now() > readyBy || fleetd.exitCode !== null) throw new Error(`fleetd did not become ready; see ${daemonLog}`);
    await new Promise((res) => setTimeout(res, 200));
  }

  const tasks: DemoTask[] = [
    {
      name: 'succeeds',
      spec: {
        image,
        payload: { prompt: 'Summarise the repository README' },
        env: { DEMO_SLEEP_S: '3' },
        // The demo agent, after it left an artifact (a report) in /fleet/output for fleetd to upload.
        command: ['/bin/sh', '-c', 'mkdir -p "$FLEET_OUTPUT_DIR/reports" && printf "# Summary\\n\\nThe README describes a pull-based EC2 fleet.\\n" > "$FLEET_OUTPUT_DIR/reports/summary.md" && exec /bin/sh /agent/agent.sh'],
        memory_mb: 128,
        cpus: 0.5,
      },
    },
    { name: 'fails', spec: { image, payload: { prompt: 'Run the failing migration' }, env: { DEMO_SLEEP_S: '1', DEMO_EXIT_CODE: '2' }, memory_mb: 128 } },
    { name: 'times out', spec: { image, payload: { prompt: 'Wait forever' }, env: { DEMO_SLEEP_S: '600' }, timeout_s: 4, memory_mb: 128 } },
    { name: 'uses a secret', spec: { image, payload: { prompt: 'Call the API with the token' }, env: { DEMO_SLEEP_S: '1' }, secrets: { DEMO_SECRET_ECHO: resources.demoSecretArn }, memory_mb: 128 } },
  ];
  const submitted: Array<{ name: string; taskId: string }> = [];
  for (const t of tasks) {
    const { taskId } = await client.submitTask(t.spec);
    submitted.push({ name: t.name, taskId });
    console.log(`${seconds(Date.now() - t0).padStart(6)}  submitted ${taskId}  (${t.name})`);
  }

  // Live progress: one line per status change, until every task is terminal (or 3 minutes).
  const last = new Map<string, string>();
  const records = new Map<string, TaskRecord>();
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    for (const s of submitted) {
      const r = await client.getTask(s.taskId);
      records.set(s.taskId, r);
      if (last.get(s.taskId) !== r.status) {
        console.log(`${seconds(Date.now() - t0).padStart(6)}  ${s.taskId}  ${pad(s.name, 14)} ${last.get(s.taskId) ?? ''}${last.has(s.taskId) ? ' → ' : ''}${r.status}`);
        last.set(s.taskId, r.status);
      }
    }
    if ([...records.values()].every((r) => isTerminal(r.status))) break;
    await new Promise((res) => setTimeout(res, 500));
  }

  fleetd.kill('SIGTERM');
  await exited;
  fs.closeSync(logFd);

  console.log('\nsummary');
  console.log(`${pad('task', 30)} ${pad('demo', 14)} ${pad('status', 10)} ${pad('exit', 5)} ${pad('run', 7)} ${pad('dispatch', 9)} result / reason`);
  for (const s of submitted) {
    const r = records.get(s.taskId)!;
    const outcome = r.result ? JSON.stringify(r.result) : (r.reason ?? '');
    const dispatch = r.started_at !== undefined ? r.started_at - r.created_at : undefined;
    console.log(`${pad(s.taskId, 30)} ${pad(s.name, 14)} ${pad(r.status, 10)} ${pad(r.exit_code === undefined ? '-' : String(r.exit_code), 5)} ${pad(seconds(r.duration_ms), 7)} ${pad(seconds(dispatch), 9)} ${outcome.slice(0, 70)}`);
  }
  const secretTask = records.get(submitted[3].taskId);
  console.log(`\nlog tail of "uses a secret" (the agent printed its token; fleetd redacted it):\n  ${secretTask?.log_tail?.split('\n').filter((l) => l.includes('token')).join('\n  ')}`);
  console.log('"dispatch" = enqueue → container started; "run" = container run time.');

  // What leaves the instance: the work directory goes (the instance is terminated), the output stays.
  fs.rmSync(path.join(workDir, 'lib'), { recursive: true, force: true });
  const done = records.get(submitted[0].taskId)!;
  const reader = new TaskLogStreamReader(await createLogsClient(clients.region), resources.logGroup, done.task_id, done.attempt);
  const shipped = (await reader.read()) ?? [];
  console.log(`
fleetd's work directory is deleted; "${submitted[0].name}" (${done.task_id}) read back from CloudWatch Logs (group ${resources.logGroup}, stream ${reader.stream}), ${shipped.length} lines:`);
  for (const l of shipped) console.log(`  | ${displayLine(l.message)}`);
  const artifacts = await listArtifacts(clients.s3, resources.payloadBucket, done.task_id, done.attempt);
  console.log(`its artifacts in s3://${resources.payloadBucket}/${artifactsPrefix(done.task_id, done.attempt)} (record: ${JSON.stringify(done.artifacts ?? done.artifacts_error ?? 'none')}):`);
  for (const a of artifacts) console.log(`  ${String(a.size).padStart(8)}  ${a.path}`);
  if (!wasUp) {
    console.log('\nstopping the local stack this demo started...');
    await down();
  }
  const expected = ['COMPLETED', 'FAILED', 'TIMED_OUT', 'COMPLETED'];
  const ok = submitted.every((s, i) => records.get(s.taskId)?.status === expected[i]) && shipped.length > 0 && artifacts.length > 0;
  console.log(ok ? `\ndemo finished in ${seconds(Date.now() - t0)}: every task ended as expected.` : '\ndemo finished, but some task did not end as expected (see above).');
  process.exitCode = ok ? 0 : 1;
}

main().catch((err: Error) => {
  console.error(`demo failed: ${err.message}`);
  process.exit(1);
});
