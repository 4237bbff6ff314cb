/**
 * The `fleet` CLI as a user drives it: a spawned process (bin/fleet.js) against the real local
 * stack (moto, a real Docker engine, the local SSM agent) and real fleetd daemons.
 *
 * Cancel latencies are measured from the moment the CLI's CANCEL_REQUESTED write landed
 * (record.cancel_requested_at) to the moment the container is gone, and printed.
 *
 * The SSM test runs the SSM agent of its one instance (instanceAgent below), as a real SSM
 * agent does: it asks SSM for the commands of its instance, checks the document's parameters
 * and builds argv with the local agent's own buildArgv, and runs `fleetd cancel` on the
 * instance's socket. The stack's shared agent (scripts/dev/local/ssm-agent.ts) cannot be relied on
 * for timing: moto 5.2 adds every EC2 instance it knows to each SendCommand (an empty Targets
 * list matches all instances), and that agent runs each command serially on all of them,
 * a tsx-started `fleetd cancel` each, so with the many instances of the test fleets one cancel
 * waits minutes in its queue. While this agent runs, a marker file (ownAgentMarker) tells the
 * shared agent to leave the instance alone: one agent per instance, as on EC2.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetDocumentCommand, ListCommandsCommand } from '@aws-sdk/client-ssm';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { EventType, FLEETD_BIN_PATH, TaskStatus, encodeEnvelope, type TaskRecord, type TaskSpecInput } from '../../daemon/src/contract';
import { PACKAGE_VERSION } from '../../daemon/src/version';
import { FleetClient } from '../../scripts/lib/client';
import { LOG_DIR, PROJECT_ROOT, instanceDir } from '../../scripts/dev/local/paths';
import { buildArgv, ownAgentMarker } from '../../scripts/dev/local/ssm-agent';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';
import { runNode, type NodeRun } from '../helpers/run-node';

const FLEET = path.join(PROJECT_ROOT, 'bin', 'fleet.js');
const FLEETD = path.join(PROJECT_ROOT, 'bin', 'fleetd.js');

let fleet: TestFleet;
let client: FleetClient;
const daemons: TestDaemon[] = [];

/** Runs a command the way a user's shell would (argv, no shell), with the test fleet's environment. */
function exec(bin: string, args: string[], env: Record<string, string | undefined> = {}): Promise<NodeRun> {
  return runNode(bin, args, { ...process.env, ...fleet.env, ...env } as NodeJS.ProcessEnv);
}

const fleetCli = (args: string[], env?: Record<string, string | undefined>) => exec(FLEET, args, env);

function daemon(instanceIndex: number, overrides: ConstructorParameters<typeof TestDaemon>[2] = {}, options: ConstructorParameters<typeof TestDaemon>[4] = {}): TestDaemon {
  const d = new TestDaemon(fleet, fleet.resources.instanceIds[instanceIndex], overrides, {}, options).start();
  daemons.push(d);
  return d;
}

const demoArgs = (...extra: string[]) => ['submit', '--image', fleet.demoImage, '--prompt', 'fix the bug', '--memory', '128m', '--cpus', '0.5', ...extra];

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function containers(taskId: string, all = false): Promise<number> {
  return (await fleet.docker.listContainers({ all, filters: { label: [`agent-fleet.task-id=${taskId}`] } })).length;
}

/** Submits a long task and waits until its container runs; returns the task id. */
async function runningTask(sleepSeconds = 300): Promise<string> {
  const submitted = await fleetCli(demoArgs('--env', `DEMO_SLEEP_S=${sleepSeconds}`));
  expect(submitted.code).toBe(0);
  const taskId = submitted.stdout.trim();
  await waitFor('the container to run', async () => ((await containers(taskId)) > 0 ? true : undefined), 120_000);
  return taskId;
}

/** Waits for CANCELLED and the container gone; returns the latency from the recorded request. */
async function cancelledAndGone(taskId: string, timeoutMs = 120_000): Promise<{ record: TaskRecord; goneAt: number; latencyMs: number }> {
  const goneAt = await waitFor('the container to be gone', async () => ((await containers(taskId, true)) === 0 ? Date.now() : undefined), timeoutMs, 100);
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  return { record, goneAt, latencyMs: goneAt - record.cancel_requested_at! };
}

interface AgentRun {
  readonly at: number;
  readonly argv: string[];
  readonly exit: number;
  readonly stdout: string;
}

/**
 * The SSM agent of one instance: every 250 ms it lists the commands SSM holds for the
 * instance, runs those of the fleet's cancel document it has not seen (argv from the local
 * agent's buildArgv, which enforces allowedPattern), with FLEETD_SOCKET at the instance's
 * socket, exactly as scripts/dev/local/ssm-agent.ts runs them.
 */
function instanceAgent(instanceId: string, documentName: string): { runs: AgentRun[]; stop: () => void } {
  const ssm = fleet.clients.ssm;
  const runs: AgentRun[] = [];
  const seen = new Set<string>();
  let stopped = false;
  // One SSM agent per instance: the stack's shared agent leaves this instance to this one.
  const marker = ownAgentMarker(instanceId);
  fs.mkdirSync(path.dirname(marker), { recursive: true });
  fs.writeFileSync(marker, `${process.pid}\n`);
  const list = async () => {
    const out = [];
    let token: string | undefined;
    do {
      const page = await ssm.send(new ListCommandsCommand({ InstanceId: instanceId, NextToken: token, MaxResults: 50 }));
      out.push(...(page.Commands ?? []).filter((c) => c.DocumentName === documentName));
      token = page.NextToken;
    } while (token);
    return out;
  };
  void (async () => {
    for (const c of await list()) seen.add(c.CommandId!);
    const content = JSON.parse((await ssm.send(new GetDocumentCommand({ Name: documentName }))).Content ?? '{}');
    while (!stopped) {
      for (const c of await list()) {
        if (seen.has(c.CommandId!)) continue;
        seen.add(c.CommandId!);
        const at = Date.now();
        const argv = buildArgv(content.mainSteps[0].inputs.runCommand[0], c.Parameters ?? {}, content);
        if (argv[0] !== FLEETD_BIN_PATH) throw new Error(`refusing ${argv[0]}`);
        const result = await new Promise<{ exit: number; stdout: string }>((resolve) =>
          execFile(process.execPath, [FLEETD, ...argv.slice(1)], { env: { ...process.env, FLEETD_SOCKET: path.join(instanceDir(instanceId), 'fleetd.sock') } }, (err, stdout) =>
            resolve({ exit: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout })));
        runs.push({ at, argv, ...result });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    runs,
    stop: () => {
      stopped = true;
      fs.rmSync(marker, { force: true });
    },
  };
}

beforeAll(async () => {
  fleet = await freshFleet({ instances: 2 });
  client = new FleetClient(fleet.clients, fleet.resources);
});

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

describe('usage errors: one clear line and a hint, exit 2, nothing done', () => {
  it.each([
    ['a missing required option', ['submit', '--prompt', 'x'], /^fleet: required option '--image <image>' not specified$/],
    ['a size without a unit', ['submit', '--image', 'a', '--memory', '12'], /^fleet: --memory: got "12", which has no unit$/],
    ['a bad duration', ['submit', '--image', 'a', '--timeout', '5 minutes'], /^fleet: --timeout: got "5 minutes", expected a duration like 90s, 15m, 2h or 1h30m$/],
    ['a bad K=V', ['submit', '--image', 'a', '--env', 'NOEQUALS'], /^fleet: --env: got "NOEQUALS", expected NAME=VALUE$/],
    ['two payload sources', ['submit', '--image', 'a', '--prompt', 'x', '--payload-file', 'p.json'], /^fleet: give --payload-file or --prompt, not both$/],
    ['an unknown option', ['list', '--bogus'], /^fleet: unknown option '--bogus'$/],
    ['an unknown command', ['bogus'], /^fleet: unknown command 'bogus'$/],
    ['an unknown status', ['list', '--status', 'done'], /^fleet: --status: got "done", expected one of /],
    ['too many arguments', ['status', 't-1', 't-2'], /^fleet: too many arguments for 'status'/],
  ])('%s', async (_what, args, first) => {
    const r = await fleetCli(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n');
    expect(lines[0]).toMatch(first);
    expect(r.stderr).toMatch(/hint: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('with no FLEET_QUEUE_URL in a checkout, the local stack\'s file is used and stderr says so', async () => {
    const unset = Object.fromEntries(Object.keys(fleet.env).filter((k) => k.startsWith('FLEET_') && k !== 'FLEET_LOCAL_DIR').map((k) => [k, undefined]));
    const r = await fleetCli(['list', '--limit', '1', '--json'], unset);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^fleet: using the local stack's environment from \S*local\.env \(FLEET_QUEUE_URL is not set\)$/m);
    expect(JSON.parse(r.stdout)).toHaveProperty('next_cursor');
    // With the file missing, nothing is guessed: a usage error.
    const missing = await fleetCli(['list'], { ...unset, FLEET_LOCAL_DIR: path.join(os.tmpdir(), 'no-such-fleet-dir') });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^fleet: no fleet configured: FLEET_QUEUE_URL is not set and the local stack's .*no-such-fleet-dir\/local\.env does not exist\n {2}hint: export the fleet's FLEET_\* variables .* or pass --env-file FILE/);
  });

  it('no fleet configured is a usage error naming the variables (the local stack file is not used when --env-file is given)', async () => {
    const empty = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cli-env-')), 'empty.env');
    fs.writeFileSync(empty, '# nothing\n');
    const unset = Object.fromEntries(Object.keys(fleet.env).filter((k) => k.startsWith('FLEET_')).map((k) => [k, undefined]));
    const r = await fleetCli(['--env-file', empty, 'list'], unset);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^fleet: no fleet configured: FLEET_QUEUE_URL, FLEET_DLQ_URL, .* are not set\n {2}hint: /);
  });
});

describe('injection attempts as a task id are refused by the CLI and by fleetd cancel (exit 2)', () => {
  const ids: Array<[string, string]> = [
    ['; rm -rf /', '; rm -rf /'],
    ['single quotes', "t-1' ; touch /tmp/pwned '"],
    ['double quotes', 't-1" && touch /tmp/pwned "'],
    ['$(…)', '$(touch /tmp/pwned)'],
    ['a newline', 't-1\ntouch /tmp/pwned'],
    ['a 10 KB id', `t-${'a'.repeat(10 * 1024)}`],
  ];

  it.each(ids)('%s', async (_what, id) => {
    const [cli, fleetd] = await Promise.all([fleetCli(['cancel', id]), exec(FLEETD, ['cancel', '--task-id', id], { FLEETD_SOCKET: path.join(LOG_DIR, 'no-such.sock') })]);
    expect(cli.code).toBe(2);
    expect(cli.stderr.split('\n')[0]).toMatch(/^fleet: invalid task id ".*"( \(\d+ characters\))?: expected /);
    expect(cli.stderr.split('\n')[0].length).toBeLessThan(200);
    expect(fleetd.code).toBe(2);
    expect(fleetd.stderr).toMatch(/fleetd cancel: invalid task id/);
    expect(fs.existsSync('/tmp/pwned')).toBe(false);
  });
});

describe('tasks end to end', () => {
  let completed: string;

  it('submit → watch → COMPLETED with the result shown; status, list, logs and instances read it back', async () => {
    // Prepare
    const d = daemon(0);
    await d.ready();
    const logDir = path.join(d.workDir, 'lib', 'logs');
    // Act
    const submitted = await fleetCli(demoArgs('--env', 'DEMO_SLEEP_S=2', '--timeout', '5m'));
    const taskId = submitted.stdout.trim();
    const watched = await fleetCli(['watch', taskId, '--log-dir', logDir]);
    // Assess
    expect(submitted.code).toBe(0);
    expect(submitted.stderr).toMatch(new RegExp(`submitted ${taskId} \\(QUEUED\\); follow it with: fleet watch ${taskId}`));
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(/SUBMITTED/);
    expect(watched.stdout).toMatch(/CLAIMED on i-/);
    expect(watched.stdout).toMatch(/RUNNING on i-/);
    expect(watched.stdout).toContain(`  | demo agent: task ${taskId} attempt 1`);
    expect(watched.stdout).toMatch(new RegExp(`${taskId} COMPLETED in [\\d.]+s \\(exit code 0\\)`));
    expect(watched.stdout).toMatch(/result:\n\{\n {2}"summary": "demo agent finished",/);
    completed = taskId;

    const status = await fleetCli(['status', taskId, '--json']);
    const record = JSON.parse(status.stdout) as TaskRecord;
    expect(record).toMatchObject({ task_id: taskId, status: 'COMPLETED', exit_code: 0, spec: { timeout_s: 300, memory_mb: 128, cpus: 0.5, env: { DEMO_SLEEP_S: '2' }, payload: { prompt: 'fix the bug' } } });

    // Without FLEET_LOG_GROUP: the instance's file, else the record (docs/logs.md; the stream is task-logs.test.ts's).
    const noStream = { FLEET_LOG_GROUP: '' };
    const [human, list, fromRecord, fromFile, instances, fromStream] = await Promise.all([
      fleetCli(['status', taskId]),
      fleetCli(['list', '--status', 'completed', '--json']),
      fleetCli(['logs', taskId, '--log-dir', path.join(d.workDir, 'elsewhere')], noStream),
      fleetCli(['logs', taskId, '--log-dir', logDir], noStream),
      fleetCli(['instances', '--json']),
      fleetCli(['logs', taskId, '--log-dir', path.join(d.workDir, 'elsewhere')]),
    ]);
    expect(human.stdout).toMatch(/^task\s+t-/);
    expect(human.stdout).toMatch(/status\s+COMPLETED \(attempt 1 on i-/);
    expect(human.stdout).toMatch(/result\s+\{/);
    expect((JSON.parse(list.stdout) as { tasks: TaskRecord[] }).tasks.map((t) => t.task_id)).toContain(taskId);
    expect(fromRecord.code).toBe(0);
    expect(fromRecord.stderr).toMatch(/no log file for .* on this machine .*; showing the last 8 KiB kept in the task record \(COMPLETED\)/);
    expect(fromRecord.stdout).toContain(`demo agent: task ${taskId} attempt 1`);
    expect(fromFile.stdout).toContain(`demo agent: task ${taskId} attempt 1`);
    expect(fromFile.stderr).toMatch(/no task log group configured \(FLEET_LOG_GROUP\); showing this machine's log file/);
    expect(fromStream.stdout).toContain(`demo agent: task ${taskId} attempt 1`);
    expect(fromStream.stderr).toMatch(new RegExp(`${taskId} attempt 1 from CloudWatch Logs`));
    const rows = (JSON.parse(instances.stdout) as { instances: Array<Record<string, unknown>> }).instances;
    // fleetd's row records its build, the AMI and the launch template (moto tags its instances
    // aws:ec2launchtemplate:*; fleetd reads them with DescribeTags as metadata tags are off).
    expect(rows.find((i) => i.instance_id === d.instanceId)).toMatchObject({
      status: expect.stringMatching(/idle|busy/),
      ec2_state: 'running',
      heartbeat_at: expect.any(Number),
      version: PACKAGE_VERSION,
      commit: expect.any(String),
      ami_id: expect.stringMatching(/^ami-/),
      launch_template_id: expect.stringMatching(/^lt-/),
      launch_template_version: '1',
    });
    const row = await fleet.clients.ddb.send(new GetCommand({ TableName: fleet.resources.instancesTable, Key: { instance_id: d.instanceId } }));
    expect(row.Item).toMatchObject({ version: PACKAGE_VERSION, launch_template_id: expect.stringMatching(/^lt-/), launch_template_version: '1' });
  });

  it('submit --follow of a failing task exits 1 with the reason', async () => {
    daemon(0);
    // No task log group: the tail comes from the record (with one, watch shows the stream live).
    const r = await fleetCli(demoArgs('--env', 'DEMO_EXIT_CODE=3', '--follow'), { FLEET_LOG_GROUP: '' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAILED in [\d.]+s \(exit code 3\): exit code 3/);
    expect(r.stdout).toMatch(/log tail \(from the record\):\n {2}\| demo agent: task/);
  });

  it('cancel of a finished task is a clear no-op (exit 0, nothing written)', async () => {
    const before = await client.getTask(completed);
    const r = await fleetCli(['cancel', completed]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`task ${completed} already ended COMPLETED: nothing to cancel\n`);
    expect(await client.getTask(completed)).toEqual(before);
  });

  it('status of an unknown task: exit 3 with a hint', async () => {
    const r = await fleetCli(['status', 't-doesnotexist']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^fleet: no task t-doesnotexist in table .*\n {2}hint: "fleet list" shows recent tasks/);
  });
});

describe('cancel', () => {
  it('of a queued task: CANCELLED at once, and it never starts a container', async () => {
    // Prepare: no daemon yet, so the task waits in the queue.
    const submitted = await fleetCli(demoArgs('--env', 'DEMO_SLEEP_S=1'));
    const taskId = submitted.stdout.trim();
    // Act
    const r = await fleetCli(['cancel', taskId]);
    const d = daemon(0);
    await d.waitForLog(new RegExp(`stale message for a finished task.*${taskId}|${taskId}.*stale message for a finished task`), 90_000);
    // Assess
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`cancelled ${taskId}: it was QUEUED and will never start\n`);
    const record = await client.getTask(taskId);
    expect(record.status).toBe(TaskStatus.CANCELLED);
    expect(record.attempt).toBe(0);
    expect((await client.listEvents(taskId)).map((e) => e.type)).toEqual([EventType.SUBMITTED, EventType.CANCELLED]);
    expect(await containers(taskId, true)).toBe(0);
    expect(d.lines.some((l) => l.includes(taskId) && /container started|claimed task/.test(l))).toBe(false);
  });

  it("of a running task through SSM: the instance's SSM agent runs fleetd cancel on the socket; CANCELLED, container gone", async () => {
    // Prepare: no heartbeat within the test, so only the SSM push can stop the task.
    const grace = 2;
    const d = daemon(0, { timings: { heartbeatSeconds: 600, leaseSeconds: 1200, cancelGraceSeconds: grace } }, { ssmReachable: true });
    await d.ready();
    const taskId = await runningTask();
    const agent = instanceAgent(d.instanceId, fleet.resources.cancelDocument);
    try {
      // Act
      const t0 = Date.now();
      const r = await fleetCli(['cancel', taskId]);
      const { record, goneAt, latencyMs } = await cancelledAndGone(taskId);
      // Assess
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^cancel requested for ${taskId} \\(RUNNING on ${d.instanceId}\\); SSM command [0-9a-f-]+ asks its fleetd to stop it`));
      expect(record.status).toBe(TaskStatus.CANCELLED);
      expect(record.reason).toBe('cancelled by request');
      expect(agent.runs).toEqual([expect.objectContaining({ argv: [FLEETD_BIN_PATH, 'cancel', '--task-id', taskId], exit: 0, stdout: expect.stringContaining('"found":true') })]);
      expect(latencyMs).toBeLessThan((grace + 20) * 1000);
      const types = (await client.listEvents(taskId)).map((e) => e.type);
      expect(types.slice(-2)).toEqual([EventType.CANCEL_REQUESTED, EventType.CANCELLED]);
      console.log(`cancel via SSM: ${latencyMs} ms from the recorded request to the container gone (${goneAt - t0} ms from running "fleet cancel"); ` +
        `the agent picked the command up after ${agent.runs[0].at - record.cancel_requested_at!} ms, then ${goneAt - agent.runs[0].at} ms (fleetd cancel → socket → ladder → container removed)`);
    } finally {
      agent.stop();
    }
  });

  it('of a running task with SSM unavailable: the heartbeat pull cancels within one heartbeat interval', async () => {
    // Prepare: SSM unreachable for the CLI; the daemon's socket is out of the SSM agent's reach too.
    const heartbeatSeconds = 3;
    const grace = 2;
    const d = daemon(0, { timings: { heartbeatSeconds, leaseSeconds: 12, cancelGraceSeconds: grace } });
    await d.ready();
    const taskId = await runningTask();
    // Act
    const r = await fleetCli(['cancel', taskId, '--wait'], { AWS_ENDPOINT_URL_SSM: 'http://127.0.0.1:9' });
    const { record, latencyMs } = await cancelledAndGone(taskId);
    // Assess
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/not pushed: SSM SendCommand failed .*; fleetd sees CANCEL_REQUESTED on its next heartbeat/);
    expect(r.stdout).toMatch(new RegExp(`${taskId} CANCELLED .*\\(stopped [\\d.]+m?s after the request\\)`));
    expect(record.status).toBe(TaskStatus.CANCELLED);
    expect(latencyMs).toBeLessThan((heartbeatSeconds * 1.1 + grace + 10) * 1000);
    console.log(`cancel via the heartbeat pull (heartbeat ${heartbeatSeconds} s, grace ${grace} s): ${latencyMs} ms from the recorded request to the container gone`);
  });
});

describe('lists and the dead-letter queue', () => {
  it('list pages newest first with a cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await client.submitTaskRecordOnly({ image: fleet.demoImage } as TaskSpecInput & Record<string, unknown>));
    const first = JSON.parse((await fleetCli(['list', '--status', 'queued', '--limit', '2', '--json'])).stdout) as { tasks: TaskRecord[]; next_cursor: string | null };
    const second = JSON.parse((await fleetCli(['list', '--status', 'queued', '--limit', '2', '--json', '--cursor', first.next_cursor!])).stdout) as { tasks: TaskRecord[]; next_cursor: string | null };
    const listed = [...first.tasks, ...second.tasks].map((t) => t.task_id);
    // The human form's "more:" line repeats the command with every option given, --env-file too.
    const envFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cli-env-')), 'fleet.env');
    fs.writeFileSync(envFile, Object.entries(fleet.env).map(([k, v]) => `${k}=${v}`).join('\n'));
    const human = await fleetCli(['--env-file', envFile, 'list', '--status', 'queued', '--limit', '2']);
    expect(human.code).toBe(0);
    const more = /^more: (.*)$/m.exec(human.stderr)?.[1];
    expect(more).toMatch(new RegExp(`^fleet --env-file ${envFile} list --status queued --limit 2 --cursor \\S+$`));
    const next = await fleetCli([...more!.split(' ').slice(1), '--json']);
    expect((JSON.parse(next.stdout) as { tasks: TaskRecord[] }).tasks.map((t) => t.task_id)).toEqual(second.tasks.map((t) => t.task_id));
    expect(first.tasks).toHaveLength(2);
    expect(listed.filter((id) => ids.includes(id))).toEqual([...ids].reverse());
    const created = [...first.tasks, ...second.tasks].map((t) => t.created_at);
    expect(created).toEqual([...created].sort((a, b) => b - a));
    await Promise.all(ids.map((id) => client.cancelTask(id)));
  });

  it('dlq list shows dead letters with their task and reason; redrive resends runnable tasks, deletes obsolete letters, keeps the rest', async () => {
    // Prepare: a runnable task whose message was dead-lettered, one for a finished task, and garbage.
    const runnable = await client.submitTaskRecordOnly({ image: fleet.demoImage } as TaskSpecInput & Record<string, unknown>);
    const finished = await client.submitTaskRecordOnly({ image: fleet.demoImage } as TaskSpecInput & Record<string, unknown>);
    await client.cancelTask(finished);
    const dlq = fleet.resources.dlqUrl;
    const reason = { 'fleet-rejection-reason': { DataType: 'String', StringValue: 'test: rejected' } };
    await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: encodeEnvelope(runnable) }));
    await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: encodeEnvelope(finished), MessageAttributes: reason }));
    await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: 'not json at all', MessageAttributes: reason }));
    // Act
    const listed = await fleetCli(['dlq', 'list', '--json']);
    const dry = await fleetCli(['dlq', 'redrive', '--dry-run']);
    const redriven = await fleetCli(['dlq', 'redrive']);
    // Assess
    const letters = (JSON.parse(listed.stdout) as { dead_letters: Array<{ task_id?: string; reason?: string }> }).dead_letters;
    expect(letters).toEqual(expect.arrayContaining([
      expect.objectContaining({ task_id: runnable }),
      expect.objectContaining({ task_id: finished, reason: 'test: rejected' }),
      expect.objectContaining({ reason: 'test: rejected', body: 'not json at all' }),
    ]));
    expect(dry.stdout).toContain(`would resend ${runnable}: the task is QUEUED`);
    expect(dry.stdout).toContain(`would delete ${finished}: obsolete: the task already ended CANCELLED`);
    expect(redriven.code).toBe(0);
    expect(redriven.stdout).toContain(`resent ${runnable}`);
    expect(redriven.stdout).toContain(`deleted ${finished}`);
    expect(redriven.stdout).toMatch(/kept message .*: the message names no task id/);
    const queued = await fleet.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: fleet.resources.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    expect((queued.Messages ?? []).map((m) => JSON.parse(m.Body!).task_id)).toContain(runnable);
    const left = JSON.parse((await fleetCli(['dlq', 'list', '--json'])).stdout) as { dead_letters: Array<{ body: string }> };
    expect(left.dead_letters.map((l) => l.body)).toEqual(['not json at all']);
    await client.cancelTask(runnable);
  });
});
