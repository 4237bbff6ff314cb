/**
 * The scaler Lambda at the SDK boundary (aws-sdk-client-mock): the decision it carries out, the
 * calls it makes, and what each AWS failure turns into. The scaling function itself is the
 * contract's, tested with the contract.
 */
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  SetDesiredCapacityCommand,
  type AutoScalingGroup,
} from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { TaskStatus } from '../../daemon/src/contract';
import {
  ScalerError,
  ScalerInvocationError,
  runInvocation,
  scaleOnce,
  type InvocationOptions,
  type ScalerDeps,
} from '../handlers/scaler';
import { ScalerConfigError, scalerConfigFromEnv, scalerEnvironment, type ScalerConfig } from '../handlers/scaler-config';
import { FleetMetric } from '../metrics';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const config: ScalerConfig = {
  fleetName: 'test-fleet',
  queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/tasks',
  asgName: 'test-group',
  tasksTable: 'tasks',
  slotsPerInstance: 2,
  buffer: 0,
  metricsNamespace: 'AgentFleet',
};

// ----- small factories

function awsError(name: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} (mocked)`), { name, $metadata: { httpStatusCode: 400 }, ...extra });
}

function group(overrides: Partial<AutoScalingGroup> = {}): AutoScalingGroup {
  return {
    AutoScalingGroupName: config.asgName,
    DesiredCapacity: 0,
    MinSize: 0,
    MaxSize: 10,
    DefaultCooldown: 0,
    AvailabilityZones: ['us-east-1a'],
    HealthCheckType: 'EC2',
    CreatedTime: new Date(NOW),
    Instances: [],
    ...overrides,
  } as AutoScalingGroup;
}

function clientsWithStubs() {
  const clientConfig = { region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } };
  const clients = {
    sqs: new SQSClient(clientConfig),
    autoscaling: new AutoScalingClient(clientConfig),
    cloudwatch: new CloudWatchClient(clientConfig),
    dynamodb: new DynamoDBClient(clientConfig),
  };
  const stubs = {
    sqs: mockClient(clients.sqs),
    autoscaling: mockClient(clients.autoscaling),
    cloudwatch: mockClient(clients.cloudwatch),
    dynamodb: mockClient(clients.dynamodb),
  };
  return { clients, stubs };
}

type Stubs = ReturnType<typeof clientsWithStubs>['stubs'];

interface Harness extends Stubs {
  deps: ScalerDeps;
  logs: Record<string, unknown>[];
  clock: { t: number };
}

/** Clients with mocked sends: the queue holds `visible` + `inFlight`, the group is `g`. */
function harness(depth: { visible: number; inFlight: number }, g: AutoScalingGroup = group()): Harness {
  const { clients, stubs } = clientsWithStubs();
  const h = { ...stubs, logs: [] as Record<string, unknown>[], clock: { t: NOW } };
  h.sqs.on(GetQueueAttributesCommand).resolves({
    Attributes: { ApproximateNumberOfMessages: String(depth.visible), ApproximateNumberOfMessagesNotVisible: String(depth.inFlight) },
  });
  h.autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [g] });
  h.autoscaling.on(SetDesiredCapacityCommand).resolves({});
  h.cloudwatch.on(PutMetricDataCommand).resolves({});
  h.dynamodb.on(QueryCommand).resolves({ Items: [] });
  return { ...h, deps: { ...clients, now: () => h.clock.t, log: (line) => h.logs.push(line) } };
}

function publishedMetrics(h: Harness): Record<string, number | undefined> {
  const calls = h.cloudwatch.commandCalls(PutMetricDataCommand);
  expect(calls).toHaveLength(1);
  return Object.fromEntries((calls[0].args[0].input.MetricData ?? []).map((d) => [d.MetricName, d.Value]));
}

// ----- scaleOnce

describe('scaleOnce', () => {
  test('raises desired capacity to ceil(backlog / slots), once, and logs one JSON line', async () => {
    // Prepare: 3 queued + 2 running, 2 slots per instance → 3 instances.
    const h = harness({ visible: 3, inFlight: 2 });
    // Act
    const decision = await scaleOnce(h.deps, config);
    // Assess
    expect(decision).toMatchObject({ current: 0, desired: 3, raised: true });
    expect(h.autoscaling.commandCalls(SetDesiredCapacityCommand).map((c) => c.args[0].input)).toEqual([
      { AutoScalingGroupName: config.asgName, DesiredCapacity: 3, HonorCooldown: false },
    ]);
    expect(h.logs).toEqual([expect.objectContaining({ level: 'info', event: 'scaler.raised', current: 0, desired: 3, visible: 3, inFlight: 2 })]);
    expect(() => JSON.stringify(h.logs[0])).not.toThrow();
  });

  test('never lowers desired capacity: a smaller backlog leaves the group alone', async () => {
    // Prepare
    const h = harness({ visible: 1, inFlight: 0 }, group({ DesiredCapacity: 5 }));
    // Act
    const decision = await scaleOnce(h.deps, config);
    // Assess
    expect(decision).toMatchObject({ current: 5, desired: 5, raised: false });
    expect(h.autoscaling.commandCalls(SetDesiredCapacityCommand)).toHaveLength(0);
    expect(h.logs).toEqual([]);
  });

  test.each([
    ['the group max caps it', { visible: 100, inFlight: 0 }, group({ MaxSize: 4 }), 0, 4],
    ['the buffer adds warm instances while there is demand', { visible: 1, inFlight: 0 }, group(), 2, 3],
    ['in-flight tasks alone count as demand', { visible: 0, inFlight: 4 }, group(), 0, 2],
    ['no demand keeps the group at its min', { visible: 0, inFlight: 0 }, group({ MinSize: 1, DesiredCapacity: 1 }), 2, 1],
  ])('%s', async (_what, depth, g, buffer, expected) => {
    // Prepare
    const h = harness(depth, g);
    // Act
    const decision = await scaleOnce(h.deps, { ...config, buffer });
    // Assess
    expect(decision.desired).toBe(expected);
    expect(h.autoscaling.commandCalls(SetDesiredCapacityCommand).length).toBe(expected > (g.DesiredCapacity ?? 0) ? 1 : 0);
  });

  test('publishes its decision, the backlog, unhealthy instances and the oldest unclaimed task age', async () => {
    // Prepare: one unhealthy instance; the oldest QUEUED task is 90 s old, an INTERRUPTED one 300 s.
    const h = harness(
      { visible: 2, inFlight: 1 },
      group({
        DesiredCapacity: 1,
        Instances: [
          { InstanceId: 'i-0000000000000001', HealthStatus: 'Unhealthy', LifecycleState: 'InService', AvailabilityZone: 'a', ProtectedFromScaleIn: true },
          { InstanceId: 'i-0000000000000002', HealthStatus: 'Healthy', LifecycleState: 'InService', AvailabilityZone: 'a', ProtectedFromScaleIn: true },
        ],
      }),
    );
    h.dynamodb.on(QueryCommand, { ExpressionAttributeValues: { ':s': { S: TaskStatus.QUEUED } } }).resolves({ Items: [{ created_at: { N: String(NOW - 90_000) } }] });
    h.dynamodb.on(QueryCommand, { ExpressionAttributeValues: { ':s': { S: TaskStatus.INTERRUPTED } } }).resolves({ Items: [{ created_at: { N: String(NOW - 300_000) } }] });
    // Act
    await scaleOnce(h.deps, config);
    // Assess
    expect(publishedMetrics(h)).toEqual({
      [FleetMetric.BACKLOG]: 3,
      [FleetMetric.DESIRED_CAPACITY]: 2,
      [FleetMetric.CAPACITY_RAISED]: 1,
      [FleetMetric.UNHEALTHY_INSTANCES]: 1,
      [FleetMetric.OLDEST_UNCLAIMED_TASK_AGE]: 300,
    });
    const query = h.dynamodb.commandCalls(QueryCommand)[0].args[0].input;
    expect(query).toMatchObject({ TableName: config.tasksTable, IndexName: 'by-status', ScanIndexForward: true, Limit: 1 });
  });
});

describe('scaleOnce: AWS failures', () => {
  test.each([
    ['GetQueueAttributes throttled', 'read-queue', true, (h: Harness) => h.sqs.on(GetQueueAttributesCommand).rejects(awsError('ThrottlingException', { $retryable: { throttling: true } }))],
    ['GetQueueAttributes on a deleted queue', 'read-queue', false, (h: Harness) => h.sqs.on(GetQueueAttributesCommand).rejects(awsError('QueueDoesNotExist'))],
    ['DescribeAutoScalingGroups denied', 'read-group', false, (h: Harness) => h.autoscaling.on(DescribeAutoScalingGroupsCommand).rejects(awsError('AccessDenied', { $metadata: { httpStatusCode: 403 } }))],
    ['the group does not exist', 'read-group', false, (h: Harness) => h.autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] })],
    ['a scaling activity is in progress', 'set-desired-capacity', true, (h: Harness) => h.autoscaling.on(SetDesiredCapacityCommand).rejects(awsError('ScalingActivityInProgressFault'))],
    ['SetDesiredCapacity above a max lowered meanwhile', 'set-desired-capacity', false, (h: Harness) => h.autoscaling.on(SetDesiredCapacityCommand).rejects(awsError('ValidationError'))],
    ['a 5xx from Auto Scaling', 'set-desired-capacity', true, (h: Harness) => h.autoscaling.on(SetDesiredCapacityCommand).rejects(awsError('InternalFailure', { $metadata: { httpStatusCode: 500 } }))],
  ])('%s → ScalerError(%s), retryable: %s', async (_what, phase, retryable, breakIt) => {
    // Prepare
    const h = harness({ visible: 4, inFlight: 0 });
    breakIt(h);
    // Act
    const error = await scaleOnce(h.deps, config).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ScalerError);
    expect(error).toMatchObject({ name: 'ScalerError', phase, retryable });
    expect((error as Error).message).toContain(phase);
  });

  test('the queue answering garbage is an error naming the attribute, not a silent zero', async () => {
    // Prepare
    const h = harness({ visible: 0, inFlight: 0 });
    h.sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: 'lots' } });
    // Act
    const error = await scaleOnce(h.deps, config).catch((e: unknown) => e);
    // Assess
    expect(error).toMatchObject({ phase: 'read-queue', message: expect.stringContaining('ApproximateNumberOfMessages') });
    expect(h.autoscaling.commandCalls(SetDesiredCapacityCommand)).toHaveLength(0);
  });

  test('a failed metric publish comes after the raise, and carries the decision', async () => {
    // Prepare
    const h = harness({ visible: 2, inFlight: 0 });
    h.cloudwatch.on(PutMetricDataCommand).rejects(awsError('AccessDenied'));
    // Act
    const error = await scaleOnce(h.deps, config).catch((e: unknown) => e);
    // Assess
    expect(h.autoscaling.commandCalls(SetDesiredCapacityCommand)).toHaveLength(1);
    expect(error).toMatchObject({ phase: 'publish-metrics', decision: { desired: 1, raised: true } });
  });

  test('a failed task-age query never blocks scaling: it scales, publishes without the age, then reports', async () => {
    // Prepare
    const h = harness({ visible: 2, inFlight: 0 });
    h.dynamodb.on(QueryCommand).rejects(awsError('ResourceNotFoundException'));
    // Act
    const error = await scaleOnce(h.deps, config).catch((e: unknown) => e);
    // Assess
    expect(h.autoscaling.commandCalls(SetDesiredCapacityCommand)).toHaveLength(1);
    expect(publishedMetrics(h)[FleetMetric.OLDEST_UNCLAIMED_TASK_AGE]).toBeUndefined();
    expect(error).toMatchObject({ phase: 'read-tasks', decision: { desired: 1, oldestUnclaimedTaskAgeSeconds: undefined } });
  });
});

// ----- runInvocation

function invocationOptions(h: Harness, overrides: Partial<InvocationOptions> = {}): InvocationOptions {
  const lambdaDeadline = NOW + 90_000;
  return {
    tickMs: 10_000,
    windowMs: 55_000,
    safetyMs: 15_000,
    remainingMs: () => lambdaDeadline - h.clock.t,
    sleep: async (ms) => {
      h.clock.t += ms;
    },
    ...overrides,
  };
}

describe('runInvocation', () => {
  test('ticks every 10 s inside the 55 s window: 6 ticks per scheduled invocation', async () => {
    // Prepare
    const h = harness({ visible: 0, inFlight: 0 });
    const tickTimes: number[] = [];
    h.sqs.on(GetQueueAttributesCommand).callsFake(() => {
      tickTimes.push(h.clock.t - NOW);
      return { Attributes: { ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' } };
    });
    // Act
    const summary = await runInvocation(h.deps, config, invocationOptions(h));
    // Assess
    expect(tickTimes).toEqual([0, 10_000, 20_000, 30_000, 40_000, 50_000]);
    expect(summary).toMatchObject({ ticks: 6, raises: 0, failures: 0 });
  });

  test('stops before the Lambda timeout when little time is left', async () => {
    // Prepare: only 32 s left at the start, 15 s safety → ticks at 0 and 10 s only.
    const h = harness({ visible: 0, inFlight: 0 });
    // Act
    const summary = await runInvocation(h.deps, config, invocationOptions(h, { remainingMs: () => NOW + 32_000 - h.clock.t }));
    // Assess
    expect(summary.ticks).toBe(2);
  });

  test('a slow tick skips the slots it overran instead of bunching ticks up', async () => {
    // Prepare: the first tick takes 25 s.
    const h = harness({ visible: 0, inFlight: 0 });
    const tickTimes: number[] = [];
    h.sqs.on(GetQueueAttributesCommand).callsFake(() => {
      tickTimes.push(h.clock.t - NOW);
      if (tickTimes.length === 1) h.clock.t += 25_000;
      return { Attributes: { ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' } };
    });
    // Act
    await runInvocation(h.deps, config, invocationOptions(h));
    // Assess
    expect(tickTimes).toEqual([0, 30_000, 40_000, 50_000]);
  });

  test('retryable failures on some ticks are logged and the invocation succeeds', async () => {
    // Prepare: the first two SetDesiredCapacity calls hit a scaling activity in progress.
    const h = harness({ visible: 2, inFlight: 0 });
    h.autoscaling
      .on(SetDesiredCapacityCommand)
      .rejectsOnce(awsError('ScalingActivityInProgressFault'))
      .rejectsOnce(awsError('ScalingActivityInProgressFault'))
      .resolves({});
    // Act
    const summary = await runInvocation(h.deps, config, invocationOptions(h));
    // Assess
    expect(summary).toMatchObject({ ticks: 6, failures: 2 });
    expect(h.logs.filter((l) => l.event === 'scaler.tick-failed')).toEqual([
      expect.objectContaining({ level: 'warn', phase: 'set-desired-capacity', retryable: true }),
      expect.objectContaining({ level: 'warn', phase: 'set-desired-capacity', retryable: true }),
    ]);
  });

  test('a failure that will not heal by itself fails the invocation, after every tick was tried', async () => {
    // Prepare
    const h = harness({ visible: 2, inFlight: 0 }, group());
    h.autoscaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
    // Act
    const error = await runInvocation(h.deps, config, invocationOptions(h)).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ScalerInvocationError);
    expect((error as ScalerInvocationError).errors).toHaveLength(6);
    expect((error as Error).message).toMatch(/6 of 6 ticks failed \(6 not retryable\).*not found/);
    expect(h.logs[0]).toMatchObject({ level: 'error', event: 'scaler.tick-failed', phase: 'read-group', retryable: false });
  });

  test('retryable failures on every tick also fail the invocation (nothing was scaled)', async () => {
    // Prepare
    const h = harness({ visible: 2, inFlight: 0 });
    h.sqs.on(GetQueueAttributesCommand).rejects(awsError('ThrottlingException', { $retryable: { throttling: true } }));
    // Act
    const error = await runInvocation(h.deps, config, invocationOptions(h)).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ScalerInvocationError);
    expect((error as Error).message).toContain('6 of 6 ticks failed (0 not retryable)');
  });
});

describe('scaler configuration', () => {
  test('round-trips through the environment the construct sets', () => {
    expect(scalerConfigFromEnv(scalerEnvironment(config))).toEqual(config);
  });

  test('names every missing or invalid variable, with what it expected', () => {
    // Act
    const error = (() => {
      try {
        scalerConfigFromEnv({ FLEET_QUEUE_URL: config.queueUrl, FLEETD_SLOTS: '0' });
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected a ScalerConfigError');
    })();
    // Assess
    expect(error).toBeInstanceOf(ScalerConfigError);
    expect(error.message).toContain('FLEET_NAME is not set; expected the fleet name');
    expect(error.message).toContain('FLEET_ASG_NAME is not set');
    expect(error.message).toContain('FLEET_TASKS_TABLE is not set');
    expect(error.message).toContain('FLEETD_SLOTS: got "0", expected the concurrent tasks per instance (an integer >= 1)');
  });
});
