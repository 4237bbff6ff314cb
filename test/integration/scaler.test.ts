/**
 * The scaler Lambda's tick on moto: enqueue N tasks → desired capacity goes to
 * ceil(N / slots); the scaler never lowers it; its decision is published as a metric.
 */
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PurgeQueueCommand, ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { encodeEnvelope, newTaskId } from '../../daemon/src/contract';
import { scaleOnce, type ScalerDeps } from '../../infra/handlers/scaler';
import type { ScalerConfig } from '../../infra/handlers/scaler-config';
import { FLEET_METRIC_DIMENSION, FleetMetric } from '../../infra/metrics';
import { freshFleet, uniqueName, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
let deps: ScalerDeps;
let config: ScalerConfig;
const logs: Record<string, unknown>[] = [];

beforeAll(async () => {
  fleet = await freshFleet({ instances: 0, minSize: 0, maxSize: 10 });
  const r = fleet.resources;
  deps = {
    sqs: fleet.clients.sqs,
    autoscaling: fleet.clients.autoscaling,
    cloudwatch: fleet.clients.cloudwatch,
    dynamodb: new DynamoDBClient({ region: r.region }),
    now: () => Date.now(),
    log: (line) => logs.push(line),
  };
  // A namespace of its own, so metrics of parallel test files never mix.
  config = {
    fleetName: r.fleetName,
    queueUrl: r.queueUrl,
    asgName: r.asgName,
    tasksTable: r.tasksTable,
    slotsPerInstance: 2,
    buffer: 0,
    metricsNamespace: uniqueName('AgentFleetTest'),
  };
});

async function desiredCapacity(): Promise<number | undefined> {
  const out = await fleet.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [fleet.resources.asgName] }));
  return out.AutoScalingGroups?.[0]?.DesiredCapacity;
}

test('5 queued tasks at 2 slots per instance raise the group from 0 to 3, and the scaler never lowers it', async () => {
  // Prepare: 5 task messages, 2 of them received (in flight, i.e. running).
  await fleet.clients.sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: fleet.resources.queueUrl,
      Entries: Array.from({ length: 5 }, (_, i) => ({ Id: `m${i}`, MessageBody: encodeEnvelope(newTaskId()) })),
    }),
  );
  await fleet.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: fleet.resources.queueUrl, MaxNumberOfMessages: 2, VisibilityTimeout: 60 }));
  expect(await desiredCapacity()).toBe(0);

  // Act
  const raised = await scaleOnce(deps, config);

  // Assess: the group's desired capacity, the decision, one log line.
  expect(raised).toMatchObject({ visible: 3, inFlight: 2, current: 0, desired: 3, raised: true });
  expect(await desiredCapacity()).toBe(3);
  expect(logs.filter((l) => l.event === 'scaler.raised')).toHaveLength(1);

  // Act: the queue empties; the next tick must leave the group alone.
  await fleet.clients.sqs.send(new PurgeQueueCommand({ QueueUrl: fleet.resources.queueUrl }));
  const after = await scaleOnce(deps, config);

  // Assess
  expect(after).toMatchObject({ visible: 0, inFlight: 0, current: 3, desired: 3, raised: false });
  expect(await desiredCapacity()).toBe(3);
  expect(logs.filter((l) => l.event === 'scaler.raised')).toHaveLength(1);
});

test('the decision is published as a metric with the fleet dimension', async () => {
  // Act
  const out = await fleet.clients.cloudwatch.send(new ListMetricsCommand({ Namespace: config.metricsNamespace }));
  // Assess
  const names = (out.Metrics ?? [])
    .filter((m) => m.Dimensions?.some((d) => d.Name === FLEET_METRIC_DIMENSION && d.Value === fleet.resources.fleetName))
    .map((m) => m.MetricName);
  expect(names).toEqual(expect.arrayContaining([FleetMetric.DESIRED_CAPACITY, FleetMetric.BACKLOG, FleetMetric.OLDEST_UNCLAIMED_TASK_AGE]));
});
