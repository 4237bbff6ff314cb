/**
 * Readiness, the warm pool and dispatch timings (issue #21; docs/lifecycle.md "Readiness",
 * docs/scaling.md "Dispatch timings"), on real Docker + moto + the project's IMDS server.
 * CompleteLifecycleAction is not implemented by moto: it is recorded at the SDK boundary
 * (lifecycle-harness.ts) and the recorded calls are asserted and printed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EventType, InstanceStatus, READINESS_HOOK_NAME, TaskStatus, type TaskSpecInput } from '../../daemon/src/contract';
import { RUNNING_ONLY_WAIT_MS } from '../../daemon/src/instance';
import { formatRecord } from '../../scripts/cli/format';
import { FleetClient } from '../../scripts/lib/client';
import { setImdsOverrides } from '../../scripts/dev/local/imds-server';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';
import { inProcessDaemon, type InProcessDaemon } from './lifecycle-harness';
import { startMiniRegistry, type MiniRegistry } from './mini-registry';

const inProcess: InProcessDaemon[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  await Promise.all(inProcess.splice(0).map((d) => d.dispose()));
  for (const c of cleanups.splice(0)) await c().catch(() => undefined);
});

const COMPLETE = 'CompleteLifecycleActionCommand';
const recorder = { record: [COMPLETE], stub: [COMPLETE] };

function demoSpec(image: string, sleepS: number): TaskSpecInput {
  return { image, payload: { prompt: 'readiness' }, env: { DEMO_SLEEP_S: String(sleepS) }, memory_mb: 128, cpus: 0.5 };
}

async function instanceRow(client: FleetClient, instanceId: string) {
  const { instances } = await client.listInstances();
  return instances.find((i) => i.instanceId === instanceId);
}

function printCalls(d: InProcessDaemon): void {
  console.log(`recorded lifecycle calls of ${d.instanceId}:\n${d.calls.map((c) => `  ${new Date(c.at).toISOString()} ${c.command} ${JSON.stringify(c.input)}`).join('\n')}`);
}

test('warm pool: Warmed:Pending:Wait prepares, completes fleetd-ready CONTINUE and claims none of three queued tasks; InService makes it claim within one long poll, with no takeover', async () => {
  // Prepare: three tasks queued before the instance exists; IMDS says it launches into the pool.
  const fleet = await freshFleet();
  const client = new FleetClient(fleet.clients, fleet.resources);
  const [id] = fleet.resources.instanceIds;
  await setImdsOverrides(fleet.imdsUrl, id, { lifecycleState: 'Warmed:Pending:Wait' });
  const taskIds = [];
  for (let i = 0; i < 3; i++) taskIds.push((await client.submitTask(demoSpec(fleet.demoImage, 0))).taskId);
  const d = inProcessDaemon(fleet, id, { readinessHookName: READINESS_HOOK_NAME, prepullImages: [fleet.demoImage] }, recorder);
  inProcess.push(d);
  const hook = { AutoScalingGroupName: fleet.resources.asgName, LifecycleHookName: READINESS_HOOK_NAME, InstanceId: id };

  // Act 1: boot into the pool, then give it several long polls' worth of time (longPollSeconds 1).
  await d.fleetd.start();
  await new Promise((r) => setTimeout(r, 5000));
  const warmStatus = d.fleetd.status();
  const warmRow = await instanceRow(client, id);
  const whileWarm = await Promise.all(taskIds.map((t) => client.getTask(t)));

  // Assess 1: prepared, hook completed once with CONTINUE, nothing claimed, the row says warm.
  printCalls(d);
  expect(d.calls.map((c) => c.input)).toEqual([{ ...hook, LifecycleActionResult: 'CONTINUE' }]);
  expect(d.lines.some((l) => /prepull: image ready/.test(l))).toBe(true);
  expect(warmStatus).toMatchObject({ fleetd_state: 'warm', receiving: false, not_claiming: expect.stringMatching(/^warm pool \(target lifecycle state Warmed:Pending:Wait\)/) });
  expect(warmRow).toMatchObject({ status: InstanceStatus.WARM, stale: false });
  for (const r of whileWarm) expect(r).toMatchObject({ status: TaskStatus.QUEUED, attempt: 0 });

  // Act 2: Auto Scaling puts the instance in service.
  const flippedAt = Date.now();
  const firstClaim = new Promise<number>((resolve) => d.fleetd.once('task-started', () => resolve(Date.now())));
  await setImdsOverrides(fleet.imdsUrl, id, { lifecycleState: 'InService' });
  const claimedAfterMs = (await firstClaim) - flippedAt;
  const records = await Promise.all(taskIds.map((t) => client.waitForTerminal(t, { timeoutMs: 90_000 })));
  const events = (await Promise.all(taskIds.map((t) => client.listEvents(t)))).flat();

  // Assess 2: the hook completed again on leaving the pool, the first claim within one default
  // long poll (20 s; measured: the IMDS watcher's 4-6 s tick + readiness + one receive), each
  // task run once on attempt 1, no takeover, and the row back to idle (same row, same id).
  console.log(`first claim ${claimedAfterMs} ms after the target lifecycle state became InService`);
  printCalls(d);
  expect(claimedAfterMs).toBeLessThan(20_000);
  expect(d.calls.map((c) => c.input)).toEqual([{ ...hook, LifecycleActionResult: 'CONTINUE' }, { ...hook, LifecycleActionResult: 'CONTINUE' }]);
  for (const r of records) expect(r).toMatchObject({ status: TaskStatus.COMPLETED, attempt: 1, instance_id: id });
  expect(events.filter((e) => e.type === EventType.TAKEN_OVER)).toEqual([]);
  expect((await client.listInstances()).instances.filter((i) => i.instanceId === id)).toHaveLength(1);
  // Busy → idle is written once nothing followed for RUNNING_ONLY_WAIT_MS (instance.ts).
  let row = await instanceRow(client, id);
  for (const until = Date.now() + RUNNING_ONLY_WAIT_MS + 5000; row?.status !== InstanceStatus.IDLE && Date.now() < until; row = await instanceRow(client, id)) await new Promise((r) => setTimeout(r, 200));
  expect(row).toMatchObject({ status: InstanceStatus.IDLE });
});

test('a failed preflight ABANDONs the readiness hook (IMDS Pending:Wait) with the reason in the instance row; so does a prepull the policy refuses', async () => {
  // Prepare: no readinessHookName in the config: IMDS's Pending:Wait says the hook applies.
  const fleet = await freshFleet({ instances: 2 });
  const client = new FleetClient(fleet.clients, fleet.resources);
  const [idA, idB] = fleet.resources.instanceIds;
  for (const id of [idA, idB]) await setImdsOverrides(fleet.imdsUrl, id, { lifecycleState: 'Pending:Wait' });
  const a = inProcessDaemon(fleet, idA, { minFreeDiskBytes: Number.MAX_SAFE_INTEGER }, recorder);
  const b = inProcessDaemon(fleet, idB, { prepullImages: ['registry.invalid/agents/demo:1'] }, recorder);
  inProcess.push(a, b);

  // Act
  const errA = await a.fleetd.start().then(() => undefined, (e: Error) => e);
  const errB = await b.fleetd.start().then(() => undefined, (e: Error) => e);
  const rowA = await instanceRow(client, idA);
  const rowB = await instanceRow(client, idB);

  // Assess
  printCalls(a);
  printCalls(b);
  expect(errA?.message).toMatch(/^preflight: low disk/);
  expect(errB?.message).toMatch(/^readiness: prepull of registry\.invalid\/agents\/demo:1 failed: image .* not allowed/);
  expect(a.calls.map((c) => c.input)).toEqual([{ AutoScalingGroupName: fleet.resources.asgName, LifecycleHookName: READINESS_HOOK_NAME, InstanceId: idA, LifecycleActionResult: 'ABANDON' }]);
  expect(b.calls.map((c) => c.input)).toEqual([{ AutoScalingGroupName: fleet.resources.asgName, LifecycleHookName: READINESS_HOOK_NAME, InstanceId: idB, LifecycleActionResult: 'ABANDON' }]);
  expect(rowA).toMatchObject({ status: InstanceStatus.UNHEALTHY, reason: expect.stringMatching(/^low disk/) });
  expect(rowB).toMatchObject({ status: InstanceStatus.UNHEALTHY, reason: expect.stringMatching(/^readiness: prepull of registry\.invalid/) });
  expect(a.fleetd.fleetdState.kind).toBe('stopped');
  expect(b.fleetd.fleetdState.kind).toBe('stopped');
});

/** A one-layer image on top of the demo image, built through dockerode under a fresh tag. */
async function buildTinyImage(fleet: TestFleet, tag: string): Promise<string> {
  const context = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-tiny-image-'));
  try {
    fs.writeFileSync(path.join(context, 'Dockerfile'), `FROM ${fleet.demoImage}\nCOPY nonce /nonce\n`);
    fs.writeFileSync(path.join(context, 'nonce'), `${tag} ${Date.now()} ${Math.random()}\n`.repeat(2000));
    const stream = await fleet.docker.buildImage({ context, src: ['Dockerfile', 'nonce'] }, { t: tag, rm: true, forcerm: true });
    await new Promise<void>((resolve, reject) =>
      fleet.docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) => {
        const failed = out?.find((o) => o.error);
        if (err || failed) reject(err ?? new Error(failed?.error));
        else resolve();
      }),
    );
  } finally {
    fs.rmSync(context, { recursive: true, force: true });
  }
  return tag;
}

test("a task's record shows its dispatch phases; a task whose image was not prepulled shows its pull, through a real registry pull", async () => {
  // Prepare: a tiny image served by an in-process registry and removed from the engine, so the
  // task's image must be pulled; the demo image is prepulled.
  const fleet = await freshFleet();
  const client = new FleetClient(fleet.clients, fleet.resources);
  const [id] = fleet.resources.instanceIds;
  const registry: MiniRegistry = await startMiniRegistry(fleet.docker);
  cleanups.push(() => registry.close());
  const tag = `t${Date.now().toString(36)}`;
  const local = await buildTinyImage(fleet, `fleet-pull-test:${tag}`);
  const remote = await registry.add(local, 'fleet-pull-test', tag);
  await fleet.docker.getImage(local).remove();
  cleanups.push(() => fleet.docker.getImage(remote).remove({ force: true }));
  await expect(fleet.docker.getImage(remote).inspect()).rejects.toMatchObject({ statusCode: 404 });
  const d = inProcessDaemon(fleet, id, { prepullImages: [fleet.demoImage], allowedRegistries: ['local', registry.host] }, recorder);
  inProcess.push(d);
  await d.fleetd.start();

  // Act
  const prepulled = await client.waitForTerminal((await client.submitTask(demoSpec(fleet.demoImage, 1))).taskId, { timeoutMs: 90_000 });
  const pulled = await client.waitForTerminal((await client.submitTask(demoSpec(remote, 1))).taskId, { timeoutMs: 90_000 });

  // Assess
  console.log(`prepulled: ${JSON.stringify(prepulled.dispatch)}\npulled:    ${JSON.stringify(pulled.dispatch)}\n${formatRecord(pulled)}`);
  for (const r of [prepulled, pulled]) {
    expect(r.status).toBe(TaskStatus.COMPLETED);
    expect(r.dispatch).toEqual({
      queue_wait_ms: expect.any(Number),
      claim_ms: expect.any(Number),
      image_pull_ms: expect.any(Number),
      image_pulled: expect.any(Boolean),
      container_create_ms: expect.any(Number),
      container_start_ms: expect.any(Number),
    });
    // Carried with the dispatch timings by the terminal write (a task this short has no heartbeat).
    expect(r.container_id).toMatch(/^[0-9a-f]{64}$/);
  }
  expect(prepulled.dispatch!.image_pulled).toBe(false);
  expect(pulled.dispatch!.image_pulled).toBe(true);
  expect(pulled.dispatch!.image_pull_ms).toBeGreaterThan(0);
  expect(pulled.dispatch!.image_pull_ms).toBeGreaterThan(prepulled.dispatch!.image_pull_ms);
  expect(registry.requests.some((r) => /^GET \/v2\/fleet-pull-test\/blobs\/sha256:/.test(r))).toBe(true);
  expect(formatRecord(pulled)).toMatch(/^dispatch +queue \d+(\.\d)? m?s · claim .* · image .* \(pulled\) · create .* · start .*$/m);
});
