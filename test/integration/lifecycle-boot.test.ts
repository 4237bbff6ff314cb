/**
 * Boot health on real fleetd processes + moto + the project's IMDS server: a failed preflight
 * and an invalid config both leave the instance tagged unhealthy, its row with the reason, and
 * the group told (SetInstanceHealth Unhealthy); the instance is never advertised idle.
 */
import { DescribeAutoScalingInstancesCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeTagsCommand } from '@aws-sdk/client-ec2';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { InstanceStatus, tagKeys } from '../../daemon/src/contract';
import { FaultProxy } from '../../scripts/dev/chaos/fault-proxy';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
const daemons: TestDaemon[] = [];

beforeAll(async () => {
  fleet = await freshFleet({ instances: 3 });
});

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

async function bootOutcome(instanceId: string) {
  const tags = await fleet.clients.ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [instanceId] }] }));
  const row = await fleet.clients.ddb.send(new GetCommand({ TableName: fleet.resources.instancesTable, Key: { instance_id: instanceId }, ConsistentRead: true }));
  const asg = await fleet.clients.autoscaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] }));
  return {
    statusTag: (tags.Tags ?? []).find((t) => t.Key === tagKeys(fleet.resources.tagPrefix).status)?.Value,
    row: row.Item as { status?: string; reason?: string; boot_failed_at?: number } | undefined,
    health: asg.AutoScalingInstances?.[0]?.HealthStatus,
  };
}

test('a failed preflight (Docker does not answer): tagged unhealthy, boot_failed row with the reason, reported unhealthy to the group, exit 1', async () => {
  // Prepare: this instance's Docker engine is gone.
  const [id] = fleet.resources.instanceIds;
  const d = new TestDaemon(fleet, id, {}, { DOCKER_HOST: 'unix:///nonexistent/docker.sock' }).start();
  daemons.push(d);
  // Act
  const code = await d.waitForExit();
  const outcome = await bootOutcome(id);
  // Assess
  expect(code).toBe(1);
  expect(outcome.statusTag).toBe(InstanceStatus.UNHEALTHY);
  expect(outcome.row).toMatchObject({ status: InstanceStatus.UNHEALTHY, reason: 'the Docker engine does not answer (DOCKER_HOST=unix:///nonexistent/docker.sock)' });
  expect(outcome.row?.boot_failed_at).toEqual(expect.any(Number));
  expect(outcome.health?.toUpperCase()).toBe('UNHEALTHY');
  expect(d.lines.some((l) => /"status":"idle"|fleetd ready/.test(l))).toBe(false);
});

test('an invalid config is reported the same way once the instance knows who it is; exit 78', async () => {
  // Prepare: slots 0 is refused by the config schema.
  const [, id] = fleet.resources.instanceIds;
  const d = new TestDaemon(fleet, id, { slots: 0 }).start();
  daemons.push(d);
  // Act
  const code = await d.waitForExit();
  const outcome = await bootOutcome(id);
  // Assess
  expect(code).toBe(78);
  expect(outcome.statusTag).toBe(InstanceStatus.UNHEALTHY);
  expect(outcome.row?.status).toBe(InstanceStatus.UNHEALTHY);
  expect(outcome.row?.reason).toMatch(/^invalid configuration: config\.slots: /);
  expect(outcome.health?.toUpperCase()).toBe('UNHEALTHY');
});

test('AWS refusing connections for a few seconds at boot is retried, not reported unhealthy (chaos: boots failed in fault windows)', async () => {
  // Prepare: every AWS call goes through a proxy that refuses connections for the first 6 s.
  const [, , id] = fleet.resources.instanceIds;
  const proxy = await new FaultProxy(fleet.env.AWS_ENDPOINT_URL).start();
  try {
    await proxy.set({ kind: 'refuse' });
    const queueUrl = proxy.via(fleet.resources.queueUrl);
    const d = new TestDaemon(fleet, id, { queueUrl }, { AWS_ENDPOINT_URL: proxy.url, FLEET_QUEUE_URL: queueUrl }).start();
    daemons.push(d);
    await d.waitForLog(/preflight: AWS did not answer; retrying/, 60_000);

    // Act: AWS answers again.
    setTimeout(() => void proxy.set(undefined), 6000);

    // Assess: the boot completes; the instance is idle, never unhealthy.
    await d.ready(90_000);
    const outcome = await bootOutcome(id);
    expect(outcome.statusTag).toBe(InstanceStatus.IDLE);
    expect(outcome.health?.toUpperCase()).not.toBe('UNHEALTHY');
  } finally {
    await Promise.all(daemons.splice(0).map((d) => d.stop()));
    await proxy.close();
  }
});
