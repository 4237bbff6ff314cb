/**
 * The scaler Lambda. EventBridge invokes it once a minute; each invocation re-evaluates every
 * DEFAULT_TIMINGS.scalerTickSeconds (10 s) for about a minute, so the fleet reacts to a burst in
 * ~10 s instead of the ~2 minutes native target tracking needs, and it can scale from zero.
 *
 * One tick (`scaleOnce`):
 *   1. read the queue depth (visible + in flight) and the group (desired, min, max, health);
 *   2. decide with the contract's `nextDesiredCapacity`: it never lowers desired capacity,
 *      because scale-in is each instance's own idle self-termination (only the instance knows
 *      it is idle: an external "busy" view lags and kills running tasks);
 *   3. SetDesiredCapacity only when raising, with one JSON log line per change;
 *   4. publish the decision and the fleet's health metrics (FleetMetric) to CloudWatch.
 */
import { isTransient } from '../../daemon/src/retry';
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  SetDesiredCapacityCommand,
} from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient, PutMetricDataCommand, type MetricDatum } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  CLAIMABLE_STATUSES,
  DEFAULT_TIMINGS,
  FLEET_ENV,
  ROLLOUT_TAG_KEY,
  TASKS_TABLE,
  decodeRolloutMarker,
  nextDesiredCapacity,
  retiringInstances,
  type ScalingInput,
} from '../../daemon/src/contract';
import { FLEET_METRIC_DIMENSION, FleetMetric } from '../metrics';
import { SCALER_SCHEDULE_SECONDS, scalerConfigFromEnv, type ScalerConfig } from './scaler-config';

export { scalerConfigFromEnv, type ScalerConfig } from './scaler-config';

export interface ScalerDeps {
  readonly sqs: SQSClient;
  readonly autoscaling: AutoScalingClient;
  readonly cloudwatch: CloudWatchClient;
  readonly dynamodb: DynamoDBClient;
  /** Epoch milliseconds. */
  now(): number;
  /** Writes one structured log line. */
  log(line: Record<string, unknown>): void;
}

/** What one tick saw (the contract's ScalingInput, min/max being the group's) and decided. */
export interface ScalingDecision extends ScalingInput {
  readonly fleetName: string;
  readonly asgName: string;
  /** Desired capacity as read from the group. */
  readonly current: number;
  /** Desired capacity after this tick (equal to `current` unless raised). */
  readonly desired: number;
  readonly raised: boolean;
  readonly unhealthyInstances: number;
  /** Age of the oldest QUEUED/INTERRUPTED task; undefined when it could not be read. */
  readonly oldestUnclaimedTaskAgeSeconds: number | undefined;
}

export type ScalerPhase = 'read-queue' | 'read-group' | 'set-desired-capacity' | 'read-tasks' | 'publish-metrics';

/**
 * A failed tick. `retryable` errors (throttling, a scaling activity in progress, 5xx) heal on
 * the next tick; the others (missing group, denied permission) need a person. `decision` is
 * set when the failure came after the capacity decision was carried out.
 */
export class ScalerError extends Error {
  override readonly name = 'ScalerError';
  readonly retryable: boolean;
  readonly decision?: ScalingDecision;
  constructor(
    readonly phase: ScalerPhase,
    message: string,
    options: { cause?: unknown; retryable?: boolean; decision?: ScalingDecision } = {},
  ) {
    super(`${phase}: ${message}`, { cause: options.cause });
    this.retryable = options.retryable ?? isTransient(options.cause);
    this.decision = options.decision;
  }
}

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

interface QueueDepth {
  readonly visible: number;
  readonly inFlight: number;
}

async function readQueueDepth(deps: ScalerDeps, config: ScalerConfig): Promise<QueueDepth> {
  let attributes: Record<string, string> | undefined;
  try {
    const out = await deps.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: config.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    attributes = out.Attributes;
  } catch (err) {
    throw new ScalerError('read-queue', `GetQueueAttributes on ${config.queueUrl} failed (${describeError(err)})`, { cause: err });
  }
  const count = (name: string): number => {
    const value = Number(attributes?.[name]);
    if (!Number.isInteger(value) || value < 0) {
      throw new ScalerError('read-queue', `${name} of ${config.queueUrl}: got ${JSON.stringify(attributes?.[name])}, expected a count`);
    }
    return value;
  };
  return { visible: count('ApproximateNumberOfMessages'), inFlight: count('ApproximateNumberOfMessagesNotVisible') };
}

interface GroupState {
  readonly current: number;
  readonly min: number;
  readonly max: number;
  readonly unhealthyInstances: number;
  /** Members that retire in a rollout under way (no capacity for new tasks). */
  readonly retiring: number;
}

async function readGroup(deps: ScalerDeps, config: ScalerConfig): Promise<GroupState> {
  let groups;
  try {
    const out = await deps.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [config.asgName] }));
    groups = out.AutoScalingGroups ?? [];
  } catch (err) {
    throw new ScalerError('read-group', `DescribeAutoScalingGroups for "${config.asgName}" failed (${describeError(err)})`, { cause: err });
  }
  const group = groups.find((g) => g.AutoScalingGroupName === config.asgName);
  if (!group) {
    throw new ScalerError('read-group', `Auto Scaling group "${config.asgName}" not found; check ${FLEET_ENV.asgName} and the region`, {
      retryable: false,
    });
  }
  const { DesiredCapacity: current, MinSize: min, MaxSize: max } = group;
  if (current === undefined || min === undefined || max === undefined) {
    throw new ScalerError('read-group', `group "${config.asgName}" has no desired/min/max capacity (got ${current}/${min}/${max})`, {
      retryable: false,
    });
  }
  const unhealthyInstances = (group.Instances ?? []).filter((i) => i.HealthStatus === 'Unhealthy').length;
  // A malformed marker retires no instance (fleetd ignores it too).
  const marker = decodeRolloutMarker(group.Tags?.find((t) => t.Key === ROLLOUT_TAG_KEY)?.Value);
  const retiring = marker.ok ? retiringInstances(marker.marker, (group.Instances ?? []).filter((i) => i.LifecycleState === 'InService')).length : 0;
  return { current, min, max, unhealthyInstances, retiring };
}

/**
 * Age of the oldest task no instance holds: one `by-status` index query per claimable status
 * (oldest first, one item each). The SQS metric ApproximateAgeOfOldestMessage is no substitute:
 * it counts in-flight messages, i.e. every long-running task.
 */
async function readOldestUnclaimedAgeSeconds(deps: ScalerDeps, config: ScalerConfig): Promise<number> {
  const index = TASKS_TABLE.statusIndex;
  const oldest = await Promise.all(
    CLAIMABLE_STATUSES.map(async (status) => {
      const out = await deps.dynamodb.send(
        new QueryCommand({
          TableName: config.tasksTable,
          IndexName: index.name,
          KeyConditionExpression: '#s = :s',
          ExpressionAttributeNames: { '#s': index.partitionKey, '#c': index.sortKey },
          ExpressionAttributeValues: { ':s': { S: status } },
          ProjectionExpression: '#c',
          ScanIndexForward: true,
          Limit: 1,
        }),
      );
      const createdAt = Number(out.Items?.[0]?.[index.sortKey]?.N);
      return Number.isFinite(createdAt) ? createdAt : undefined;
    }),
  );
  const times = oldest.filter((t): t is number => t !== undefined);
  if (times.length === 0) return 0;
  return Math.max(0, Math.floor((deps.now() - Math.min(...times)) / 1000));
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

function metricData(decision: ScalingDecision, at: Date): MetricDatum[] {
  const dimensions = [{ Name: FLEET_METRIC_DIMENSION, Value: decision.fleetName }];
  const datum = (name: string, value: number, unit: 'Count' | 'Seconds'): MetricDatum => ({
    MetricName: name,
    Dimensions: dimensions,
    Timestamp: at,
    Value: value,
    Unit: unit,
  });
  const data = [
    datum(FleetMetric.BACKLOG, decision.visible + decision.inFlight, 'Count'),
    datum(FleetMetric.DESIRED_CAPACITY, decision.desired, 'Count'),
    datum(FleetMetric.CAPACITY_RAISED, decision.desired - decision.current, 'Count'),
    datum(FleetMetric.UNHEALTHY_INSTANCES, decision.unhealthyInstances, 'Count'),
  ];
  if (decision.oldestUnclaimedTaskAgeSeconds !== undefined) {
    data.push(datum(FleetMetric.OLDEST_UNCLAIMED_TASK_AGE, decision.oldestUnclaimedTaskAgeSeconds, 'Seconds'));
  }
  return data;
}

/** One scaling tick. Throws a ScalerError naming the phase that failed. */
export async function scaleOnce(deps: ScalerDeps, config: ScalerConfig): Promise<ScalingDecision> {
  // The task-age query only feeds a metric: it runs alongside and never blocks scaling.
  const oldestAge = settle(readOldestUnclaimedAgeSeconds(deps, config));
  const [depth, group] = await Promise.all([readQueueDepth(deps, config), readGroup(deps, config)]);

  const input: ScalingInput = {
    visible: depth.visible,
    inFlight: depth.inFlight,
    slotsPerInstance: config.slotsPerInstance,
    buffer: config.buffer,
    min: group.min,
    max: group.max,
    retiring: group.retiring,
  };
  const desired = nextDesiredCapacity(group.current, input);
  const raised = desired > group.current;
  if (raised) {
    try {
      await deps.autoscaling.send(
        new SetDesiredCapacityCommand({ AutoScalingGroupName: config.asgName, DesiredCapacity: desired, HonorCooldown: false }),
      );
    } catch (err) {
      throw new ScalerError(
        'set-desired-capacity',
        `SetDesiredCapacity ${group.current} → ${desired} on "${config.asgName}" failed (${describeError(err)})`,
        { cause: err },
      );
    }
  }

  const age = await oldestAge;
  const decision: ScalingDecision = {
    fleetName: config.fleetName,
    asgName: config.asgName,
    ...input,
    current: group.current,
    desired,
    raised,
    unhealthyInstances: group.unhealthyInstances,
    oldestUnclaimedTaskAgeSeconds: age.ok ? age.value : undefined,
  };
  if (raised) {
    deps.log({ level: 'info', event: 'scaler.raised', message: `desired capacity ${group.current} → ${desired}`, ...decision });
  }

  try {
    await deps.cloudwatch.send(
      new PutMetricDataCommand({ Namespace: config.metricsNamespace, MetricData: metricData(decision, new Date(deps.now())) }),
    );
  } catch (err) {
    throw new ScalerError('publish-metrics', `PutMetricData to ${config.metricsNamespace} failed (${describeError(err)})`, {
      cause: err,
      decision,
    });
  }
  if (!age.ok) {
    throw new ScalerError('read-tasks', `query of ${config.tasksTable}/${TASKS_TABLE.statusIndex.name} failed (${describeError(age.error)})`, {
      cause: age.error,
      decision,
    });
  }
  return decision;
}

export interface InvocationOptions {
  /** Interval between ticks. */
  readonly tickMs: number;
  /** Ticks start only within this window from the invocation's start (keeps invocations apart). */
  readonly windowMs: number;
  /** A tick starts only while the Lambda has at least this much time left. */
  readonly safetyMs: number;
  remainingMs(): number;
  sleep(ms: number): Promise<void>;
}

export interface InvocationSummary {
  readonly ticks: number;
  readonly raises: number;
  readonly failures: number;
  /** The last successful decision, if any. */
  readonly last?: ScalingDecision;
}

export class ScalerInvocationError extends Error {
  override readonly name = 'ScalerInvocationError';
  constructor(
    message: string,
    readonly errors: readonly unknown[],
  ) {
    super(message, { cause: errors[errors.length - 1] });
  }
}

/**
 * Ticks every `tickMs` (aligned to the start; a slow tick skips the slots it overran rather than
 * bunching up) while inside `windowMs` and while the Lambda has `safetyMs` left. Fails the
 * invocation (so Lambda's Errors metric and alarms see it) when any tick failed for a reason
 * that will not heal by itself, or when no tick succeeded.
 */
export async function runInvocation(deps: ScalerDeps, config: ScalerConfig, options: InvocationOptions): Promise<InvocationSummary> {
  const start = deps.now();
  const errors: unknown[] = [];
  let ticks = 0;
  let raises = 0;
  let last: ScalingDecision | undefined;
  let slot = 0;
  for (;;) {
    const due = start + slot * options.tickMs;
    if (due - start >= options.windowMs) break;
    const wait = Math.max(0, due - deps.now());
    if (options.remainingMs() - wait < options.safetyMs) break;
    if (wait > 0) await options.sleep(wait);
    ticks += 1;
    try {
      last = await scaleOnce(deps, config);
      if (last.raised) raises += 1;
    } catch (err) {
      errors.push(err);
      const e = err instanceof ScalerError ? err : undefined;
      deps.log({
        level: e?.retryable ? 'warn' : 'error',
        event: 'scaler.tick-failed',
        fleetName: config.fleetName,
        phase: e?.phase,
        retryable: e?.retryable ?? false,
        message: describeError(err),
        cause: e?.cause === undefined ? undefined : describeError(e.cause),
      });
    }
    slot = Math.max(slot + 1, Math.ceil((deps.now() - start) / options.tickMs));
  }
  const summary: InvocationSummary = { ticks, raises, failures: errors.length, last };
  const fatal = errors.filter((e) => !(e instanceof ScalerError && e.retryable));
  if (fatal.length > 0 || (ticks > 0 && errors.length === ticks)) {
    throw new ScalerInvocationError(
      `scaler: ${errors.length} of ${ticks} ticks failed (${fatal.length} not retryable); last: ${describeError(errors[errors.length - 1])}`,
      errors,
    );
  }
  return summary;
}

/** The Lambda context fields the handler uses. */
export interface LambdaContextLike {
  getRemainingTimeInMillis(): number;
}

let defaultDeps: ScalerDeps | undefined;

function createDefaultDeps(): ScalerDeps {
  // Short request timeouts: a hung call must not eat the invocation (the SDK retries 3 times).
  const clientConfig = { maxAttempts: 3, requestHandler: { requestTimeout: 5_000, connectionTimeout: 3_000 } };
  return {
    sqs: new SQSClient(clientConfig),
    autoscaling: new AutoScalingClient(clientConfig),
    cloudwatch: new CloudWatchClient(clientConfig),
    dynamodb: new DynamoDBClient(clientConfig),
    now: () => Date.now(),
    log: (line) => console.log(JSON.stringify(line)),
  };
}

export async function handler(_event: unknown, context: LambdaContextLike): Promise<InvocationSummary> {
  const config = scalerConfigFromEnv(process.env);
  defaultDeps ??= createDefaultDeps();
  const tickMs = DEFAULT_TIMINGS.scalerTickSeconds * 1000;
  return runInvocation(defaultDeps, config, {
    tickMs,
    // Half a tick of slack before the next scheduled invocation starts.
    windowMs: SCALER_SCHEDULE_SECONDS * 1000 - tickMs / 2,
    safetyMs: 15_000,
    remainingMs: () => context.getRemainingTimeInMillis(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  });
}
