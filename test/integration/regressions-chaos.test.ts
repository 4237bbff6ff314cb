/**
 * Regressions for defects the chaos suite (npm run chaos, docs/reliability.md) found in fleetd.
 */
import { TaskStatus, type TaskSpecInput } from '../../daemon/src/contract';
import { FleetClient } from '../../scripts/lib/client';
import { TestDaemon } from '../helpers/daemon';
import { freshFleet, type TestFleet } from '../helpers/fleet';

let fleet: TestFleet;
let client: FleetClient;
const daemons: TestDaemon[] = [];

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
  client = new FleetClient(fleet.clients, fleet.resources);
});

afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  const left = await fleet.docker.listContainers({ all: true, filters: { label: [`agent-fleet.instance-id=${fleet.resources.instanceIds[0]}`] } });
  await Promise.all(left.map((c) => fleet.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
});

async function containersOf(taskId: string): Promise<number> {
  return (await fleet.docker.listContainers({ all: true, filters: { label: [`agent-fleet.task-id=${taskId}`] } })).length;
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
