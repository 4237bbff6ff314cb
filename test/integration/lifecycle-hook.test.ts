/**
 * The instance lifecycle against Auto Scaling, on real Docker + moto + the project's IMDS
 * server: the termination lifecycle hook (drain with heartbeats, release, complete) and idle
 * self-termination (above MinSize, at MinSize, refused). RecordLifecycleActionHeartbeat and
 * CompleteLifecycleAction are not implemented by moto: they are recorded at the SDK boundary
 * (lifecycle-harness.ts) and the recorded calls are asserted and printed.
 */
import { DescribeAutoScalingGroupsCommand, DescribeAutoScalingInstancesCommand, SetInstanceProtectionCommand } from '@aws-sdk/client-auto-scaling';
import { EventType, TaskStatus, isTerminal, type TaskSpecInput } from '../../daemon/src/contract';
import type { SelfTermination } from '../../daemon/src/lifecycle';
import { FleetClient } from '../../scripts/lib/client';
import { setImdsOverrides } from '../../scripts/dev/local/imds-server';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';
import { LIFECYCLE_HOOK_COMMANDS, inProcessDaemon, type InProcessDaemon } from './lifecycle-harness';

const inProcess: InProcessDaemon[] = [];
const children: TestDaemon[] = [];

afterEach(async () => {
  await Promise.all(inProcess.splice(0).map((d) => d.dispose()));
  await Promise.all(children.splice(0).map((d) => d.stop()));
});

function demoSpec(fleet: TestFleet, sleepS: number): TaskSpecInput {
  return { image: fleet.demoImage, payload: { prompt: 'lifecycle' }, env: { DEMO_SLEEP_S: String(sleepS) }, memory_mb: 128, cpus: 0.5 };
}

async function group(fleet: TestFleet) {
  const res = await fleet.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [fleet.resources.asgName] }));
  const g = res.AutoScalingGroups![0];
  return { min: g.MinSize, desired: g.DesiredCapacity, instances: (g.Instances ?? []).map((i) => i.InstanceId!) };
}

function nextIdleCheck(d: InProcessDaemon, timeoutMs = 60_000): Promise<SelfTermination> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no idle check within ${timeoutMs} ms; last lines:\n${d.lines.slice(-10).join('\n')}`)), timeoutMs);
    d.fleetd.once('idle-check', (outcome) => {
      clearTimeout(timer);
      resolve(outcome);
    });
  });
}

test('termination lifecycle hook: drains within the budget with heartbeats, releases the task, then CompleteLifecycleAction CONTINUE; another daemon completes the task', async () => {
  // Prepare: daemon A (in process, hook calls recorded) runs a task longer than its budget.
  const fleet = await freshFleet({ instances: 2 });
  const client = new FleetClient(fleet.clients, fleet.resources);
  const hookName = `${fleet.resources.fleetName}-drain`;
  const [idA, idB] = fleet.resources.instanceIds;
  const a = inProcessDaemon(fleet, idA, { drainBudgetSeconds: 3, lifecycleHeartbeatSeconds: 1, lifecycleHookName: hookName }, { record: [...LIFECYCLE_HOOK_COMMANDS], stub: [...LIFECYCLE_HOOK_COMMANDS] });
  inProcess.push(a);
  await a.fleetd.start();
  const { taskId } = await client.submitTask(demoSpec(fleet, 10));
  await a.waitForLog(/container started/, 60_000);
  children.push(new TestDaemon(fleet, idB).start());

  // Act: the group starts terminating instance A (instance refresh, rebalancing, manual).
  await setImdsOverrides(fleet.imdsUrl, idA, { lifecycleState: 'Terminated' });
  await a.stopped(90_000);
  const record = await client.waitForTerminal(taskId, { timeoutMs: 90_000 });

  // Assess: heartbeats while draining, then exactly one completion, CONTINUE, after the release.
  console.log(`recorded lifecycle calls of ${idA}:\n${a.calls.map((c) => `  ${new Date(c.at).toISOString()} ${c.command} ${JSON.stringify(c.input)}`).join('\n')}`);
  const hookInput = { AutoScalingGroupName: fleet.resources.asgName, LifecycleHookName: hookName, InstanceId: idA };
  const beats = a.calls.filter((c) => c.command === 'RecordLifecycleActionHeartbeat');
  const completes = a.calls.filter((c) => c.command === 'CompleteLifecycleAction');
  expect(beats.length).toBeGreaterThanOrEqual(2);
  for (const b of beats) expect(b.input).toEqual(hookInput);
  expect(completes).toHaveLength(1);
  expect(completes[0].input).toEqual({ ...hookInput, LifecycleActionResult: 'CONTINUE' });
  expect(a.calls[a.calls.length - 1].command).toBe('CompleteLifecycleAction');
  const events = await client.listEvents(taskId);
  const interrupted = events.find((e) => e.type === EventType.INTERRUPTED);
  expect(interrupted?.instance_id).toBe(idA);
  expect(completes[0].at).toBeGreaterThanOrEqual(interrupted!.at);
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(record.instance_id).toBe(idB);
  expect(record.attempt).toBe(2);
  expect(events.filter((e) => isTerminal(e.type as TaskStatus))).toHaveLength(1);
  expect(a.lines.some((l) => /drain budget of 3 s spent/.test(l))).toBe(true);
});

test('idle self-termination: above MinSize the instance terminates itself with a decrement and completes its hook; at MinSize it stays and keeps serving; scale-in protection is set at boot', async () => {
  // Prepare: a group of 2 with MinSize 1; A's protection cleared so the boot must set it again.
  const fleet = await freshFleet({ instances: 2, minSize: 1 });
  const client = new FleetClient(fleet.clients, fleet.resources);
  const hookName = `${fleet.resources.fleetName}-drain`;
  const [idA, idB] = fleet.resources.instanceIds;
  await fleet.clients.autoscaling.send(new SetInstanceProtectionCommand({ AutoScalingGroupName: fleet.resources.asgName, InstanceIds: [idA, idB], ProtectedFromScaleIn: false }));
  const recorder = { record: ['TerminateInstanceInAutoScalingGroupCommand', 'SetInstanceProtectionCommand', ...LIFECYCLE_HOOK_COMMANDS], stub: [...LIFECYCLE_HOOK_COMMANDS] };
  const overrides = { lifecycleHookName: hookName, lifecycleHeartbeatSeconds: 1, timings: { idleBeforeTerminateSeconds: 2 } };
  const a = inProcessDaemon(fleet, idA, overrides, recorder);
  inProcess.push(a);

  // Act 1: A boots and stays idle.
  const firstCheck = nextIdleCheck(a);
  await a.fleetd.start();
  const protectedA = await fleet.clients.autoscaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [idA] }));
  const outcomeA = await firstCheck;

  // Assess 1: terminated with a decrement; A is no longer in the group and no longer claims.
  expect(protectedA.AutoScalingInstances?.[0]?.ProtectedFromScaleIn).toBe(true);
  expect(outcomeA.terminated).toBe(true);
  expect(a.calls.find((c) => c.command === 'TerminateInstanceInAutoScalingGroup')?.input).toEqual({ InstanceId: idA, ShouldDecrementDesiredCapacity: true });
  const after = await group(fleet);
  expect(after).toEqual({ min: 1, desired: 1, instances: [idB] });
  expect(a.fleetd.status()).toMatchObject({ receiving: false, not_claiming: 'draining: idle self-termination' });

  // Act 2: Auto Scaling's termination hook reaches A; meanwhile B boots at MinSize.
  await setImdsOverrides(fleet.imdsUrl, idA, { lifecycleState: 'Terminated' });
  await a.stopped();
  const b = inProcessDaemon(fleet, idB, overrides, recorder);
  inProcess.push(b);
  const bCheck = nextIdleCheck(b);
  await b.fleetd.start();
  const outcomeB = await bCheck;
  const { taskId } = await client.submitTask(demoSpec(fleet, 1));
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });

  // Assess 2: A completed its hook at once (nothing ran); B stayed, served the task, still a member.
  console.log(`recorded calls of ${idA}:\n${a.calls.map((c) => `  ${c.command} ${JSON.stringify(c.input)}`).join('\n')}`);
  expect(a.calls.filter((c) => c.command === 'CompleteLifecycleAction').map((c) => c.input)).toEqual([
    { AutoScalingGroupName: fleet.resources.asgName, LifecycleHookName: hookName, InstanceId: idA, LifecycleActionResult: 'CONTINUE' },
  ]);
  expect(outcomeB).toEqual({ terminated: false, reason: 'the group is at MinSize (desired 1, min 1)' });
  expect(b.calls.filter((c) => c.command === 'TerminateInstanceInAutoScalingGroup')).toHaveLength(0);
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(record.instance_id).toBe(idB);
  expect(await group(fleet)).toEqual({ min: 1, desired: 1, instances: [idB] });
  // Protection was set at boot and never cleared, through a task.
  expect(b.calls.filter((c) => c.command === 'SetInstanceProtection').map((c) => c.input.ProtectedFromScaleIn)).toEqual([true]);
  const protectedB = await fleet.clients.autoscaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [idB] }));
  expect(protectedB.AutoScalingInstances?.[0]?.ProtectedFromScaleIn).toBe(true);
});

test("idle self-termination refused by AWS (below MinSize, as moto never says): the instance stays and keeps serving", async () => {
  // Prepare: desired 2 > min 1, but Auto Scaling refuses as AWS does when another instance won the race.
  const fleet = await freshFleet({ instances: 2, minSize: 1 });
  const client = new FleetClient(fleet.clients, fleet.resources);
  const [idA] = fleet.resources.instanceIds;
  const refusal = () =>
    Object.assign(new Error("Currently, desiredSize equals minSize (1). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size."), { name: 'ValidationError' });
  const a = inProcessDaemon(fleet, idA, { timings: { idleBeforeTerminateSeconds: 2 } }, { record: ['TerminateInstanceInAutoScalingGroupCommand'], refuse: { TerminateInstanceInAutoScalingGroupCommand: refusal } });
  inProcess.push(a);
  const check = nextIdleCheck(a);

  // Act
  await a.fleetd.start();
  const outcome = await check;
  const { taskId } = await client.submitTask(demoSpec(fleet, 1));
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });

  // Assess
  expect(outcome.terminated).toBe(false);
  expect(outcome).toMatchObject({ reason: expect.stringMatching(/^Auto Scaling refused: the group would go below MinSize/) });
  expect(a.calls).toHaveLength(1);
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(record.instance_id).toBe(idA);
  expect((await group(fleet)).instances).toContain(idA);
  expect(a.fleetd.status()).toMatchObject({ receiving: true, draining: false });
});
