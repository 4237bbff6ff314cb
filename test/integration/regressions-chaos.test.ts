/**
 * Regressions for defects the chaos suite (npm run chaos, docs/reliability.md) found in fleetd.
 */
import { DEFAULT_TIMINGS, TaskStatus, type TaskSpecInput } from '../../daemon/src/contract';
import { FleetClient } from '../../scripts/lib/client';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { EngineProxy } from '../helpers/engine-proxy';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
let client: FleetClient;
const daemons: TestDaemon[] = [];
const instanceIds: string[] = [];

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
  client = new FleetClient(fleet.clients, fleet.resources);
  instanceIds.push(...fleet.resources.instanceIds);
});

afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  for (const id of instanceIds) {
    const left = await fleet.docker.listContainers({ all: true, filters: { label: [`agent-fleet.instance-id=${id}`] } });
    await Promise.all(left.map((c) => fleet.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  }
});

async function containersOf(taskId: string): Promise<number> {
  return (await fleet.docker.listContainers({ all: true, filters: { label: [`agent-fleet.task-id=${taskId}`] } })).length;
}

/** fleetd removes a container after the terminal write (task-run.ts), so a test that has just
 * seen the terminal record waits for the removal; 30 s is far past the removal's own bound. */
async function containersOnceRemoved(taskId: string, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let count = await containersOf(taskId);
  while (count > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    count = await containersOf(taskId);
  }
  return count;
}

test('a fleetd whose boot fails removes the containers an earlier fleetd left: none outlives its lease into a takeover', async () => {
  // Prepare: fleetd runs a long task, then dies (kill -9); its container keeps running.
  const instanceId = fleet.resources.instanceIds[0];
  const first = new TestDaemon(fleet, instanceId, { timings: { leaseSeconds: 30, heartbeatSeconds: 3 } }).start();
  daemons.push(first);
  await first.ready();
  const spec: TaskSpecInput = { image: fleet.demoImage, env: { DEMO_SLEEP_S: '300' }, memory_mb: 64, cpus: 0.25 };
  const { taskId } = await client.submitTask(spec);
  await first.waitForLog(/container started/, 90_000);
  await first.kill9();
  expect(await containersOf(taskId)).toBe(1);

  // Act: fleetd comes back on the same instance but cannot boot (here: the disk check fails).
  const second = new TestDaemon(fleet, instanceId, { minFreeDiskBytes: Number.MAX_SAFE_INTEGER, timings: { leaseSeconds: 30, heartbeatSeconds: 3 } }).start();
  daemons.push(second);
  const code = await second.waitForExit();

  // Assess: the boot failed, and the orphan is gone before its lease could be taken over.
  expect(code).not.toBe(0);
  expect(second.lines.join('\n')).toMatch(/boot failed: removing a container no fleetd can supervise/);
  expect(await containersOf(taskId)).toBe(0);
  const record = await client.getTask(taskId);
  expect(record.status).toBe(TaskStatus.RUNNING);
  expect(record.lease_expires_at ?? 0).toBeGreaterThan(0);
});

describe('the Docker engine going away is the instance\'s fault, never the task\'s', () => {
  const timings = { leaseSeconds: 30, heartbeatSeconds: 3, longPollSeconds: 1 };
  let proxy: EngineProxy;
  let daemon: TestDaemon;

  // A fleet of its own: the task the boot-failure test leaves RUNNING (300 s) would otherwise be
  // taken over here once its lease expires, and occupy the one slot.
  beforeAll(async () => {
    fleet = await freshFleet({ instances: 1 });
    client = new FleetClient(fleet.clients, fleet.resources);
    instanceIds.push(...fleet.resources.instanceIds);
  });

  beforeEach(async () => {
    proxy = new EngineProxy(fleet.env.DOCKER_HOST);
    await proxy.up();
    daemon = new TestDaemon(fleet, fleet.resources.instanceIds[0], { timings }, { DOCKER_HOST: proxy.dockerHost }).start();
    daemons.push(daemon);
    await daemon.ready(90_000);
  });

  afterEach(async () => {
    await proxy.up();
    await daemon.stop();
    await proxy.down();
  });

  const eventsOf = async (taskId: string) => (await client.listEvents(taskId)).map((e) => ({ type: e.type, attempt: e.attempt, reason: (e.detail as { reason?: string } | undefined)?.reason }));

  test('a container stopped from outside fleetd (what dockerd does to its containers when it shuts down) is released and runs again, not FAILED', async () => {
    // Prepare: a task that runs a few seconds.
    const { taskId } = await client.submitTask({ image: fleet.demoImage, env: { DEMO_SLEEP_S: '6' }, memory_mb: 64, cpus: 0.25 });
    await daemon.waitForLog(/container started/, 90_000);
    const [container] = await fleet.docker.listContainers({ filters: { label: [`agent-fleet.task-id=${taskId}`] } });

    // Act: SIGTERM from the engine, not from fleetd (the chaos run's dockerd restart gave exit 143 → FAILED).
    await fleet.docker.getContainer(container.Id).stop({ t: 1 });

    // Assess: attempt 1 was released with the reason; attempt 2 completed; the attempt was refunded.
    const record = await client.waitForTerminal(taskId, { timeoutMs: 120_000 });
    expect(record.status).toBe(TaskStatus.COMPLETED);
    expect(record.attempt).toBe(2);
    const events = await eventsOf(taskId);
    expect(events).toContainEqual(expect.objectContaining({ type: 'INTERRUPTED', attempt: 1, reason: expect.stringMatching(/killed it with signal 15/) }));
    expect(record.attempts_left).toBe(DEFAULT_TIMINGS.maxAttempts - 1);
    // Regression (chaos seed 1): the release's reason must not survive into attempt 2's outcome.
    expect(record.reason).toBeUndefined();
  });

  test('an engine that stops answering while preparing releases the task instead of failing it ("image is not on this instance")', async () => {
    // Prepare: the next image lookup is cut mid-request, as when dockerd goes down at that moment.
    proxy.dropNext(/^GET \S*\/images\/\S+\/json/);

    // Act
    const { taskId } = await client.submitTask({ image: fleet.demoImage, env: { DEMO_SLEEP_S: '1' }, memory_mb: 64, cpus: 0.25 });

    // Assess: released with the engine's reason, then completed by the next attempt.
    const record = await client.waitForTerminal(taskId, { timeoutMs: 120_000 });
    expect(record.status).toBe(TaskStatus.COMPLETED);
    expect(record.attempt).toBe(2);
    expect(await eventsOf(taskId)).toContainEqual(expect.objectContaining({ type: 'INTERRUPTED', attempt: 1, reason: expect.stringMatching(/Docker engine did not answer while looking for image/) }));
  });

  test('an engine outage while the container runs is waited out: claiming stops, and a container that survived is supervised to its end', async () => {
    // Prepare: a running task.
    const { taskId } = await client.submitTask({ image: fleet.demoImage, env: { DEMO_SLEEP_S: '8' }, memory_mb: 64, cpus: 0.25 });
    await daemon.waitForLog(/container started/, 90_000);

    // Act: the engine is unreachable for 4 s (the container keeps running, as with live-restore);
    // a task submitted meanwhile must not be claimed and failed.
    await proxy.down();
    const queued = await client.submitTask({ image: fleet.demoImage, env: { DEMO_SLEEP_S: '1' }, memory_mb: 64, cpus: 0.25 });
    await daemon.waitForLog(/not claiming: the Docker engine is not answering/, 30_000);
    expect((await client.getTask(queued.taskId)).status).toBe(TaskStatus.QUEUED);
    await proxy.up();

    // Assess: the first task completed on its first attempt; the second ran once the engine was back.
    const record = await client.waitForTerminal(taskId, { timeoutMs: 120_000 });
    expect(record).toMatchObject({ status: TaskStatus.COMPLETED, attempt: 1 });
    expect(await client.waitForTerminal(queued.taskId, { timeoutMs: 120_000 })).toMatchObject({ status: TaskStatus.COMPLETED, attempt: 1 });
    expect(daemon.lines.join('\n')).toMatch(/the Docker engine answers again: claiming resumes/);
  });

  test('an engine error (5xx) starting the container is retried on another attempt, which counts (chaos: "failed to update store" after a dockerd restart)', async () => {
    // Prepare: the engine fails the next start as dockerd 20.10 did right after its restart.
    proxy.failNext(/^POST \S*\/containers\/\S+\/start/, 500, 'failed to update store for object type *libnetwork.endpoint: open : no such file or directory');

    // Act
    const { taskId } = await client.submitTask({ image: fleet.demoImage, env: { DEMO_SLEEP_S: '1' }, memory_mb: 64, cpus: 0.25 });

    // Assess: released with the engine's message, then completed; both attempts counted.
    const record = await client.waitForTerminal(taskId, { timeoutMs: 120_000 });
    expect(record).toMatchObject({ status: TaskStatus.COMPLETED, attempt: 2, attempts_left: DEFAULT_TIMINGS.maxAttempts - 2 });
    expect(await eventsOf(taskId)).toContainEqual(expect.objectContaining({ type: 'INTERRUPTED', attempt: 1, reason: expect.stringMatching(/failed to start the container \(this attempt counts\).*libnetwork/) }));
  });

  test('a container the engine refuses to start fails at once with the engine\'s reason (no retries, no takeover)', async () => {
    // Prepare: the engine answers the start with an error (as runc does for a missing executable
    // when the container has no init process).
    proxy.failNext(/^POST \S*\/containers\/\S+\/start/, 400, 'OCI runtime create failed: exec: "/agent": stat /agent: no such file or directory');

    // Act
    const { taskId } = await client.submitTask({ image: fleet.demoImage, env: { DEMO_SLEEP_S: '1' }, memory_mb: 64, cpus: 0.25 });

    // Assess
    const record = await client.waitForTerminal(taskId, { timeoutMs: 90_000 });
    expect(record).toMatchObject({ status: TaskStatus.FAILED, attempt: 1 });
    expect(record.reason).toMatch(/^the container could not start: .*stat \/agent: no such file or directory/);
    expect(await containersOnceRemoved(taskId)).toBe(0);
  });
});
