/**
 * A rollout without interruption (issue #22; docs/operations.md "Rolling out a new launch
 * template version") on real fleetd processes, Docker, moto's EC2 and Auto Scaling and the
 * project's IMDS server. The local stack plays AWS where moto does not: after an instance asks
 * to be terminated, the test answers IMDS's target lifecycle state `Terminated` for it, as the
 * group's termination hook does; and it launches the new-version instance itself (RunInstances
 * from the new version, then AttachInstances), because moto launches every group instance from
 * version 1 whatever the group's version setting (seen with moto 5.2: the group's Instances
 * report version 1 too, so fleetd's row, read from the instance's own tags, is what status
 * uses first).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { AttachInstancesCommand, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateVersionCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { EventType, ROLLOUT_TAG_KEY, TaskStatus, type TaskSpecInput } from '../../daemon/src/contract';
import { FleetClient } from '../../scripts/lib/client';
import { FleetRollout } from '../../scripts/lib/rollout';
import { PROJECT_ROOT } from '../../scripts/dev/local/paths';
import { setImdsOverrides } from '../../scripts/dev/local/imds-server';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

const FLEET = path.join(PROJECT_ROOT, 'bin', 'fleet.js');
/** Short on purpose: every task below runs longer, and none may be released. */
const DRAIN_BUDGET_S = 3;
const daemons: TestDaemon[] = [];

function sleepSpec(fleet: TestFleet, sleepS: number): TaskSpecInput {
  return { image: fleet.demoImage, payload: { prompt: 'rollout' }, env: { DEMO_SLEEP_S: String(sleepS) }, memory_mb: 128, cpus: 0.5 };
}

function daemon(fleet: TestFleet, instanceId: string, slots = 1): TestDaemon {
  const d = new TestDaemon(fleet, instanceId, { slots, drainBudgetSeconds: DRAIN_BUDGET_S }).start();
  daemons.push(d);
  return d;
}

function started(d: TestDaemon, taskId: string): Promise<string> {
  return d.waitForLog(new RegExp(`"msg":"container started".*"task_id":"${taskId}"`), 60_000);
}

async function group(fleet: TestFleet) {
  const res = await fleet.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [fleet.resources.asgName] }));
  return res.AutoScalingGroups![0];
}

/** A second launch template version (the "new AMI"); returns its id. */
async function newTemplateVersion(fleet: TestFleet): Promise<string> {
  const g = await group(fleet);
  const lt = g.LaunchTemplate!;
  await fleet.clients.ec2.send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: lt.LaunchTemplateId, SourceVersion: '1', LaunchTemplateData: { InstanceType: 't3.large' } }));
  return lt.LaunchTemplateId!;
}

/** What the group does on a scale-out once it launches version 2 (see the header: moto does not). */
async function launchNew(fleet: TestFleet, templateId: string): Promise<string> {
  const run = await fleet.clients.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, LaunchTemplate: { LaunchTemplateId: templateId, Version: '2' }, Placement: { AvailabilityZone: `${fleet.resources.region}a` } }));
  const id = run.Instances![0].InstanceId!;
  await fleet.clients.autoscaling.send(new AttachInstancesCommand({ AutoScalingGroupName: fleet.resources.asgName, InstanceIds: [id] }));
  return id;
}

function fleetCli(fleet: TestFleet, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLEET, ...args], { env: { ...process.env, ...fleet.env } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The test's stand-in for the termination hook: once the group let the instance go, IMDS says Terminated. */
async function playTerminationHook(fleet: TestFleet, d: TestDaemon): Promise<void> {
  await d.waitForLog(/"msg":"retired: asked Auto Scaling to terminate this instance"/, 120_000);
  const g = await group(fleet);
  expect(g.Instances?.some((i) => i.InstanceId === d.instanceId && i.LifecycleState === 'InService')).toBe(false);
  await setImdsOverrides(fleet.imdsUrl, d.instanceId, { lifecycleState: 'Terminated' });
}

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

test('rollout: two old instances claim nothing new, finish tasks longer than the drain budget (no INTERRUPTED event) and leave; a new instance takes the queue', async () => {
  // Prepare: the group's two instances run launch template version 1, each with a task that
  // runs well past the drain budget.
  const fleet = await freshFleet({ instances: 2, minSize: 1, maxSize: 5 });
  const client = new FleetClient(fleet.clients, fleet.resources);
  const [idA, idB] = fleet.resources.instanceIds;
  const a = daemon(fleet, idA);
  const b = daemon(fleet, idB);
  await Promise.all([a.ready(), b.ready()]);
  const long = [await client.submitTask(sleepSpec(fleet, 20)), await client.submitTask(sleepSpec(fleet, 20))];
  await Promise.all(long.map((t) => Promise.race([started(a, t.taskId), started(b, t.taskId)])));
  const templateId = await newTemplateVersion(fleet);
  const startedAt = Date.now();

  // Act: the rollout starts; two more tasks arrive; a new instance of version 2 comes up.
  const marker = await new FleetRollout(fleet.clients, fleet.resources.asgName, client).start();
  await Promise.all([a.waitForLog(/"msg":"retiring: claiming nothing new/, 30_000), b.waitForLog(/"msg":"retiring: claiming nothing new/, 30_000)]);
  const queued = [await client.submitTask(sleepSpec(fleet, 1)), await client.submitTask(sleepSpec(fleet, 1))];
  await new Promise((r) => setTimeout(r, 5000));
  const whileRetiring = await Promise.all(queued.map((t) => client.getTask(t.taskId)));
  const status = await fleetCli(fleet, ['rollout', 'status', '--json']);
  const c = daemon(fleet, await launchNew(fleet, templateId), 2);
  const queuedDone = await Promise.all(queued.map((t) => client.waitForTerminal(t.taskId, { timeoutMs: 90_000 })));
  const longDone = await Promise.all(long.map((t) => client.waitForTerminal(t.taskId, { timeoutMs: 90_000 })));
  await Promise.all([playTerminationHook(fleet, a), playTerminationHook(fleet, b)]);
  const codes = await Promise.all([a.waitForExit(), b.waitForExit()]);
  const finished = await new FleetRollout(fleet.clients, fleet.resources.asgName, client).finish();

  // Assess
  expect(marker).toMatchObject({ launch_template_id: templateId, target_version: '2', previous_version: '1' });
  expect(whileRetiring.map((r) => r?.status)).toEqual([TaskStatus.QUEUED, TaskStatus.QUEUED]);
  expect(status.code).toBe(0);
  const json = JSON.parse(status.stdout) as { rollout: { target_version: string }; instances: Array<{ instance_id: string; generation: string; status: string }>; tasks_on_old: Array<{ task_id: string }> };
  expect(json.rollout.target_version).toBe('2');
  expect(json.instances.filter((i) => i.generation === 'old').map((i) => [i.instance_id, i.status]).sort()).toEqual([[idA, 'retiring'], [idB, 'retiring']].sort());
  expect(json.tasks_on_old.map((t) => t.task_id).sort()).toEqual(long.map((t) => t.taskId).sort());
  expect(queuedDone.map((r) => [r.status, r.instance_id])).toEqual([[TaskStatus.COMPLETED, c.instanceId], [TaskStatus.COMPLETED, c.instanceId]]);
  expect(longDone.map((r) => [r.status, r.attempt])).toEqual([[TaskStatus.COMPLETED, 1], [TaskStatus.COMPLETED, 1]]);
  for (const t of [...long, ...queued]) {
    const types = (await client.listEvents(t.taskId)).map((e) => e.type);
    expect(types).not.toContain(EventType.INTERRUPTED);
    expect(types.filter((x) => x === EventType.CLAIMED)).toHaveLength(1);
  }
  expect(codes).toEqual([0, 0]);
  expect(finished.oldLeft).toEqual([]);
  expect((await group(fleet)).Tags?.some((t) => t.Key === ROLLOUT_TAG_KEY)).toBe(false);
  const longest = Math.max(...longDone.map((r) => (r.finished_at ?? 0) - (r.started_at ?? 0)));
  process.stdout.write(`rollout: tasks on old instances ran ${(longest / 1000).toFixed(1)} s (drain budget ${DRAIN_BUDGET_S} s); old instances gone ${((Date.now() - startedAt) / 1000).toFixed(1)} s after the start\n`);
}, 240_000);

test('rollout abort: the group launches the previous version again, the marker is gone, and a retiring instance serves again', async () => {
  // Prepare: one old instance with two slots, running a task long enough to outlast the start,
  // two marker reads (up to 6 s each) and the abort on a loaded machine: were it to end first,
  // the instance would retire for good, as designed.
  const fleet = await freshFleet({ instances: 1, minSize: 1, maxSize: 3 });
  const client = new FleetClient(fleet.clients, fleet.resources);
  const a = daemon(fleet, fleet.resources.instanceIds[0], 2);
  await a.ready();
  const first = await client.submitTask(sleepSpec(fleet, 45));
  await started(a, first.taskId);
  await newTemplateVersion(fleet);
  // The group launches $Latest (now 2): abort restores what the old instances run, version 1.
  const start = await fleetCli(fleet, ['rollout', 'start', '--launch-template-version', '2']);
  await a.waitForLog(/"msg":"retiring: claiming nothing new/, 30_000);
  const second = await client.submitTask(sleepSpec(fleet, 1));
  await new Promise((r) => setTimeout(r, 4000));
  const whileRetiring = await client.getTask(second.taskId);

  // Act
  const abort = await fleetCli(fleet, ['rollout', 'abort', '--json']);
  await a.waitForLog(/"msg":"rollout aborted or done: serving again"/, 30_000);
  const secondDone = await client.waitForTerminal(second.taskId, { timeoutMs: 60_000 });
  const firstDone = await client.waitForTerminal(first.taskId, { timeoutMs: 90_000 });
  const again = await fleetCli(fleet, ['rollout', 'abort']);

  // Assess
  expect(start.code).toBe(0);
  expect(whileRetiring?.status).toBe(TaskStatus.QUEUED);
  expect(abort.code).toBe(0);
  expect(JSON.parse(abort.stdout)).toMatchObject({ outcome: 'aborted', restored_version: '1' });
  const g = await group(fleet);
  expect(g.LaunchTemplate?.Version).toBe('1');
  expect(g.Tags?.some((t) => t.Key === ROLLOUT_TAG_KEY)).toBe(false);
  expect([secondDone.status, secondDone.instance_id]).toEqual([TaskStatus.COMPLETED, a.instanceId]);
  expect([firstDone.status, firstDone.attempt]).toEqual([TaskStatus.COMPLETED, 1]);
  expect(a.lines.some((l) => /retired: asked Auto Scaling/.test(l))).toBe(false);
  expect(again.code).toBe(2);
  expect(again.stderr).toMatch(/no rollout is under way/);
}, 180_000);

test('the scaler counts retiring instances as no capacity: a queue behind them raises the group (fleet scale --once)', async () => {
  // Prepare: two instances of version 1 (no daemon: the scaler reads the group and the queue only), two tasks waiting.
  const fleet = await freshFleet({ instances: 2, minSize: 0, maxSize: 10 });
  const client = new FleetClient(fleet.clients, fleet.resources);
  await client.submitTask(sleepSpec(fleet, 1));
  await client.submitTask(sleepSpec(fleet, 1));
  const before = await fleetCli(fleet, ['scale', '--once', '--json']);
  await newTemplateVersion(fleet);
  await new FleetRollout(fleet.clients, fleet.resources.asgName, client).start();

  // Act
  const during = await fleetCli(fleet, ['scale', '--once', '--json']);

  // Assess: without a rollout 2 instances cover 2 tasks; with both retiring, 2 more are needed.
  expect(JSON.parse(before.stdout)).toMatchObject({ visible: 2, current: 2, desired: 2, raised: false, retiring: 0 });
  expect(JSON.parse(during.stdout)).toMatchObject({ visible: 2, current: 2, desired: 4, raised: true, retiring: 2 });
}, 120_000);
