/**
 * AgentFleet's props: every option with its default, and the early validation that turns a bad
 * combination into one message per problem (what was got, what was expected, how to fix it)
 * before any resource is created.
 */
import { Arn, ArnFormat, Duration, RemovalPolicy, Size, Token } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import {
  DEFAULT_AMI_PARAMETER_NAME,
  DEFAULT_TAG_PREFIX,
  FleetdConfigFileSchema,
  RECORD_RETENTION_DAYS,
  TAG_PREFIX_PATTERN,
} from '../daemon/src/contract';

/** Spot capacity for the group (a mixed-instances policy over `instanceTypes`). */
export interface AgentFleetSpotOptions {
  /**
   * On-demand instances kept before any spot capacity is used.
   *
   * @default 0
   */
  readonly onDemandBaseCapacity?: number;
  /**
   * Percentage of on-demand instances above the base capacity (0 = all spot).
   *
   * @default 0
   */
  readonly onDemandPercentageAboveBaseCapacity?: number;
  /**
   * How spot capacity is picked across the instance types.
   *
   * @default autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED
   */
  readonly allocationStrategy?: autoscaling.SpotAllocationStrategy;
}

export interface AgentFleetProps {
  /**
   * The fleet's name: value of the `<tagPrefix>:fleet` tag on every instance (which scopes
   * `ssm:SendCommand` for cancel), the metrics dimension, and `fleetName` in fleetd's config.
   *
   * @default 'agent-fleet'
   */
  readonly fleetName?: string;
  /**
   * Prefix of the instance tag keys (`<prefix>:status`, `<prefix>:task-id`, `<prefix>:fleet`).
   *
   * @default 'bgagent' (the contract's DEFAULT_TAG_PREFIX, ABCA's)
   */
  readonly tagPrefix?: string;
  /**
   * The VPC the instances run in.
   *
   * @default - a new VPC: two AZs, public and private-with-egress subnets, one NAT gateway,
   * gateway endpoints for S3 and DynamoDB, and flow logs to CloudWatch Logs.
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Where in the VPC the instances run. They need outbound access (NAT or endpoints), never a
   * public address.
   *
   * @default - the VPC's private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Instance types the group may launch, in priority order. GPU types (g5, g6, p4d, ...) work
   * when the AMI carries the NVIDIA driver and container toolkit. All types must share one CPU
   * architecture (the AMI's). More than one type, or `spot`, makes a mixed-instances policy.
   *
   * @default [m7g.xlarge] (arm64, matching `npm run bake`'s default architecture)
   */
  readonly instanceTypes?: ec2.InstanceType[];
  /**
   * The AMI. Give this or `amiParameterName`, not both.
   *
   * @default - the AMI id in the SSM parameter `amiParameterName`, resolved at deploy time
   */
  readonly machineImage?: ec2.IMachineImage;
  /**
   * SSM parameter that holds the baked AMI's id (written by `npm run bake`).
   *
   * @default '/agent-fleet/ami-id' (the contract's DEFAULT_AMI_PARAMETER_NAME)
   */
  readonly amiParameterName?: string;
  /**
   * Root device name of the AMI (the encrypted gp3 root volume is mapped to it).
   *
   * @default '/dev/xvda' (Amazon Linux 2023 and Debian AMIs)
   */
  readonly rootDeviceName?: string;
  /**
   * Root volume size: images, containers and per-task files live here.
   *
   * @default Size.gibibytes(100)
   */
  readonly rootVolumeSize?: Size;
  /**
   * Smallest group size (instances kept even when idle; they never terminate themselves below it).
   *
   * @default 0
   */
  readonly minCapacity?: number;
  /**
   * Largest group size the scaler may ask for.
   *
   * @default 10
   */
  readonly maxCapacity?: number;
  /**
   * Concurrent tasks per instance (fleetd's `slots`; the scaler divides the backlog by it).
   *
   * @default 1
   */
  readonly slotsPerInstance?: number;
  /**
   * Extra instances the scaler keeps above demand while there is any demand.
   *
   * @default 0
   */
  readonly scalingBuffer?: number;
  /**
   * Run on spot capacity (mixed-instances policy over `instanceTypes`).
   *
   * @default - on-demand only
   */
  readonly spot?: AgentFleetSpotOptions;
  /**
   * Capacity Rebalancing: launch a replacement when a spot instance is at elevated risk of
   * interruption; the old one then drains through the termination lifecycle hook.
   *
   * @default - true when `spot` is set, otherwise false
   */
  readonly capacityRebalance?: boolean;
  /**
   * A warm pool of pre-initialised instances (faster scale-out). A pooled instance boots once
   * (user data starts fleetd), passes readiness (preflight, `prepullImages` pulled), completes
   * the `fleetd-ready` launch hook and is then stopped or hibernated; fleetd claims nothing while
   * its `autoscaling/target-lifecycle-state` is `Warmed:*` (docs/lifecycle.md "Readiness").
   * `reuseOnScaleIn` defaults to true here. Auto Scaling refuses a warm pool on a group with
   * spot or a mixed-instances policy.
   *
   * @default - no warm pool
   */
  readonly warmPool?: autoscaling.WarmPoolOptions;
  /**
   * The fleet's agent images (by tag or digest; their registries must be in
   * `allowedRegistries`), pulled by fleetd before an instance is ready (and before it enters the
   * warm pool), then refreshed every 30 min so a task finds the newest digest on the engine.
   *
   * @default - none: each image is pulled by the first task that needs it
   */
  readonly prepullImages?: string[];
  /**
   * Heartbeat timeout of the termination lifecycle hook: fleetd records a heartbeat while it
   * lets a running task finish; without one for this long, the instance terminates anyway.
   * Between 30 s and 2 h (Auto Scaling's limits).
   *
   * @default Duration.minutes(10)
   */
  readonly drainHeartbeatTimeout?: Duration;
  /**
   * Keep an instance (Retained state, outside desired capacity) when its drain is abandoned,
   * so a person can inspect why a task could not be released. Retained instances cost money
   * until terminated by hand.
   *
   * @default true
   */
  readonly retainOnFailedDrain?: boolean;
  /**
   * Registries task images may come from (host or host:port; fleetd refuses others).
   *
   * @default - the account's own ECR registry in the stack's region
   */
  readonly allowedRegistries?: string[];
  /**
   * ECR repositories the instances may pull from.
   *
   * @default - every repository of the stack's account and region
   */
  readonly ecrRepositoryArns?: string[];
  /**
   * Secrets Manager ARN prefix that task secrets must live under; the instance role can read
   * nothing else.
   *
   * @default `arn:<partition>:secretsmanager:<region>:<account>:secret:agent-fleet/<fleetName>/`
   */
  readonly secretArnPrefix?: string;
  /**
   * Prefix of the log groups the AMI's CloudWatch agent writes to (`<prefix>/fleetd`,
   * `<prefix>/system`); must equal the bake's `cloudwatch_log_group_prefix`. The construct
   * creates the groups (with `logRetention`) and lets instances write to them, and the task
   * log group `<prefix>/task-logs` that fleetd ships task output to (`taskLogRetention`).
   *
   * @default '/agent-fleet'
   */
  readonly instanceLogGroupPrefix?: string;
  /**
   * Retention of the instances' and the fleet Lambdas' log groups.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Retention of the task log group (`<instanceLogGroupPrefix>/task-logs`), where fleetd ships
   * each task attempt's output (docs/logs.md).
   *
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly taskLogRetention?: logs.RetentionDays;
  /**
   * KMS key for the task log group. Its key policy must allow `logs.<region>.amazonaws.com`.
   *
   * @default CloudWatch Logs' own encryption
   */
  readonly taskLogEncryptionKey?: kms.IKey;
  /**
   * How long artifacts (`artifacts/<task_id>/<attempt>/` in the payload bucket) are kept.
   *
   * @default Duration.days(30)
   */
  readonly artifactRetention?: Duration;
  /**
   * How long uploaded payloads are kept before S3 expires them.
   *
   * @default Duration.days(30) (the contract's RECORD_RETENTION_DAYS)
   */
  readonly payloadRetention?: Duration;
  /**
   * What happens to the tables and the payload bucket when the stack is deleted.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Alarm when the oldest unclaimed task has waited longer than this.
   *
   * @default Duration.minutes(15)
   */
  readonly oldestTaskAgeAlarmThreshold?: Duration;
  /**
   * Topic notified when an alarm fires or recovers (every alarm gets it as its alarm and OK
   * action), and the group's scaling notifications. Give this or `alarmEmail`, not both. A topic
   * encrypted with a customer managed KMS key must let `cloudwatch.amazonaws.com` use that key.
   *
   * @default - the topic made for `alarmEmail`; without either, alarms have no actions
   * (visible on the dashboard and in the console)
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * An e-mail address to notify: the construct creates an SNS topic (`alarmTopic` of the
   * construct; encrypted with its own KMS key, which CloudWatch and Auto Scaling may use, TLS
   * only) with an e-mail subscription to it, and uses it as `alarmTopic`. The address must
   * confirm the subscription (AWS sends a link) before it gets anything.
   *
   * @default - no e-mail subscription
   */
  readonly alarmEmail?: string;
  /**
   * Where the runbook lives: every alarm's description ends with
   * `Runbook: <runbookBaseUrl>#<section>` (sections of docs/operations.md). Use your copy's
   * URL, e.g. `https://github.com/my-org/agent-fleet/blob/main/docs/operations.md`.
   *
   * @default 'docs/operations.md' (RUNBOOK_PATH, the path in this repository)
   */
  readonly runbookBaseUrl?: string;
  /**
   * ABCA's TaskTable: fleetd mirrors each heartbeat of a task submitted through the ABCA
   * adapter into it (`agent_heartbeat_at`, only while ABCA's status is RUNNING; docs/abca.md).
   * The construct writes its name into fleetd's config (`abcaTaskTable`) and gives the instance
   * role `dynamodb:UpdateItem` on it, nothing else. The table must be in the fleet's account and
   * region (fleetd addresses it by name). If it is encrypted with a customer managed KMS key,
   * also grant that key to `instanceRole`.
   *
   * @default - no ABCA mirror
   */
  readonly abcaTaskTable?: dynamodb.ITable;
}

/**
 * Where the fleet is deployed, for the checks that compare it with imported resources (values
 * that are still tokens, as in an environment-agnostic stack, are not compared).
 */
export interface FleetEnvironment {
  readonly account: string;
  readonly region: string;
}

/** Props with every default filled in. */
export interface ResolvedFleetProps {
  readonly fleetName: string;
  readonly tagPrefix: string;
  readonly instanceTypes: ec2.InstanceType[];
  readonly amiParameterName: string;
  readonly rootDeviceName: string;
  readonly rootVolumeSize: Size;
  readonly minCapacity: number;
  readonly maxCapacity: number;
  readonly slotsPerInstance: number;
  readonly scalingBuffer: number;
  readonly capacityRebalance: boolean;
  readonly drainHeartbeatTimeout: Duration;
  readonly retainOnFailedDrain: boolean;
  readonly payloadRetention: Duration;
  readonly removalPolicy: RemovalPolicy;
  readonly oldestTaskAgeAlarmThreshold: Duration;
  readonly runbookBaseUrl: string;
  readonly instanceLogGroupPrefix: string;
  readonly logRetention: logs.RetentionDays;
  readonly taskLogRetention: logs.RetentionDays;
  readonly artifactRetention: Duration;
}

export const FLEET_DEFAULTS = {
  fleetName: 'agent-fleet',
  instanceType: 'm7g.xlarge',
  rootDeviceName: '/dev/xvda',
  rootVolumeGiB: 100,
  minCapacity: 0,
  maxCapacity: 10,
  slotsPerInstance: 1,
  scalingBuffer: 0,
  drainHeartbeatMinutes: 10,
  oldestTaskAgeAlarmMinutes: 15,
  instanceLogGroupPrefix: '/agent-fleet',
} as const;

/** The runbook in this repository: the default `runbookBaseUrl`. */
export const RUNBOOK_PATH = 'docs/operations.md';
/** Leaves room in CloudWatch's 1024-character alarm description for the text and the anchor. */
export const MAX_RUNBOOK_BASE_URL_LENGTH = 512;
/** A pragmatic e-mail check (SNS does the real one when it sends the confirmation). */
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** fleetd's config schema bounds the slots; the props accept exactly what fleetd will. */
const SLOTS_SCHEMA = FleetdConfigFileSchema.shape.slots.unwrap();
const MAX_SLOTS = SLOTS_SCHEMA.maxValue ?? 64;
const FLEET_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** The bake's check of cloudwatch_log_group_prefix (packer/scripts/40-cloudwatch-agent.sh). */
const LOG_GROUP_PREFIX_PATTERN = /^\/[A-Za-z0-9_./#-]{1,400}$/;
const REGISTRY_PATTERN = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$/;
/** DynamoDB's table-name rule (and fleetd's config bounds for `abcaTaskTable`). */
const TABLE_NAME_PATTERN = /^[A-Za-z0-9_.-]{3,255}$/;
/** Auto Scaling's lifecycle hook heartbeat bounds. */
const HOOK_TIMEOUT_SECONDS = { min: 30, max: 7200 } as const;

export class AgentFleetPropsError extends Error {
  override readonly name = 'AgentFleetPropsError';
  constructor(
    readonly path: string,
    readonly problems: readonly string[],
  ) {
    super(`AgentFleet ${path}: invalid props:\n  - ${problems.join('\n  - ')}`);
  }
}

function known(value: number | undefined): value is number {
  return value !== undefined && !Token.isUnresolved(value);
}

function checkInteger(problems: string[], name: string, value: number | undefined, min: number, max: number, fix: string): void {
  if (!known(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    problems.push(`${name}: got ${value}, expected an integer from ${min} to ${max}; ${fix}`);
  }
}

/** Returns one message per problem; empty when the props are valid. */
export function validateFleetProps(props: AgentFleetProps, env?: FleetEnvironment): string[] {
  const problems: string[] = [];
  const name = props.fleetName;
  if (name !== undefined && !Token.isUnresolved(name) && !FLEET_NAME_PATTERN.test(name)) {
    problems.push(
      `fleetName: got ${JSON.stringify(name)}, expected 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit (it becomes a tag value and a metric dimension)`,
    );
  }
  const prefix = props.tagPrefix;
  if (prefix !== undefined && !TAG_PREFIX_PATTERN.test(prefix)) {
    problems.push(`tagPrefix: got ${JSON.stringify(prefix)}, expected ${TAG_PREFIX_PATTERN} (for example "${DEFAULT_TAG_PREFIX}")`);
  }

  const min = props.minCapacity ?? FLEET_DEFAULTS.minCapacity;
  const max = props.maxCapacity ?? FLEET_DEFAULTS.maxCapacity;
  checkInteger(problems, 'minCapacity', props.minCapacity, 0, 10_000, 'use 0 to let the fleet scale to zero');
  checkInteger(problems, 'maxCapacity', props.maxCapacity, 1, 10_000, 'the scaler can never go above it');
  if (known(min) && known(max) && max < min) {
    problems.push(
      `maxCapacity (${max}) is below minCapacity (${min}): expected maxCapacity >= minCapacity; raise maxCapacity or lower minCapacity`,
    );
  }
  if (known(props.slotsPerInstance) && props.slotsPerInstance < 1) {
    problems.push(
      `slotsPerInstance: got ${props.slotsPerInstance}, expected at least 1 (concurrent tasks per instance); use 1 for one task per instance`,
    );
  } else {
    checkInteger(problems, 'slotsPerInstance', props.slotsPerInstance, 1, MAX_SLOTS, 'fleetd runs at most that many tasks per instance');
  }
  checkInteger(problems, 'scalingBuffer', props.scalingBuffer, 0, 10_000, 'use 0 for no warm spare instances');

  const types = props.instanceTypes;
  if (types !== undefined) {
    if (types.length === 0) {
      problems.push(
        `instanceTypes: got an empty list, expected at least one instance type; omit the prop for the default (${FLEET_DEFAULTS.instanceType}) or pass e.g. [new ec2.InstanceType('m7g.xlarge')]`,
      );
    } else if (types.length > 40) {
      problems.push(`instanceTypes: got ${types.length} types, expected at most 40 (Auto Scaling's limit per group)`);
    } else {
      const architectures = new Set(types.map((t) => t.architecture));
      if (architectures.size > 1) {
        problems.push(
          `instanceTypes: got ${types.map((t) => `${t.toString()} (${t.architecture})`).join(', ')}, expected one CPU architecture (the AMI has one); split them into two fleets`,
        );
      }
      const names = types.map((t) => t.toString());
      const duplicates = names.filter((n, i) => names.indexOf(n) !== i);
      if (duplicates.length > 0) problems.push(`instanceTypes: ${duplicates.join(', ')} listed twice; list each type once`);
    }
  }

  if (props.machineImage && props.amiParameterName) {
    problems.push('machineImage and amiParameterName: got both, expected at most one; drop amiParameterName to use machineImage');
  }
  const param = props.amiParameterName;
  if (param !== undefined && !Token.isUnresolved(param) && !/^\/?[A-Za-z0-9_.\-/]{1,2047}$/.test(param)) {
    problems.push(`amiParameterName: got ${JSON.stringify(param)}, expected an SSM parameter name such as "${DEFAULT_AMI_PARAMETER_NAME}"`);
  }

  const hook = props.drainHeartbeatTimeout;
  if (hook !== undefined && !hook.isUnresolved()) {
    const seconds = hook.toSeconds();
    if (seconds < HOOK_TIMEOUT_SECONDS.min || seconds > HOOK_TIMEOUT_SECONDS.max) {
      problems.push(
        `drainHeartbeatTimeout: got ${seconds} s, expected ${HOOK_TIMEOUT_SECONDS.min}-${HOOK_TIMEOUT_SECONDS.max} s (Auto Scaling's lifecycle hook limits)`,
      );
    }
  }

  const spot = props.spot;
  if (spot) {
    checkInteger(problems, 'spot.onDemandBaseCapacity', spot.onDemandBaseCapacity, 0, 10_000, 'use 0 for all-spot');
    checkInteger(problems, 'spot.onDemandPercentageAboveBaseCapacity', spot.onDemandPercentageAboveBaseCapacity, 0, 100, 'it is a percentage');
  }
  if (props.capacityRebalance && !spot) {
    problems.push('capacityRebalance: got true without spot, expected spot to be set (Capacity Rebalancing only acts on spot instances); set spot or drop capacityRebalance');
  }

  for (const registry of props.allowedRegistries ?? []) {
    if (!Token.isUnresolved(registry) && !REGISTRY_PATTERN.test(registry)) {
      problems.push(
        `allowedRegistries: got ${JSON.stringify(registry)}, expected a registry host[:port] without scheme or path (for example "123456789012.dkr.ecr.us-east-1.amazonaws.com")`,
      );
    }
  }
  const secretPrefix = props.secretArnPrefix;
  if (secretPrefix !== undefined && !Token.isUnresolved(secretPrefix) && !/^arn:[a-z-]+:secretsmanager:[a-z0-9-]*:[0-9]*:secret:/.test(secretPrefix)) {
    problems.push(
      `secretArnPrefix: got ${JSON.stringify(secretPrefix)}, expected a Secrets Manager ARN prefix like "arn:aws:secretsmanager:us-east-1:123456789012:secret:agent-fleet/"`,
    );
  }
  const logPrefix = props.instanceLogGroupPrefix;
  if (logPrefix !== undefined && (!LOG_GROUP_PREFIX_PATTERN.test(logPrefix) || logPrefix.endsWith('/'))) {
    problems.push(
      `instanceLogGroupPrefix: got ${JSON.stringify(logPrefix)}, expected a log group path like "/agent-fleet" without a trailing slash (the AMI's cloudwatch_log_group_prefix)`,
    );
  }
  const retention = props.payloadRetention;
  if (retention !== undefined && !retention.isUnresolved() && retention.toDays({ integral: false }) < 1) {
    problems.push(`payloadRetention: got ${retention.toHumanString()}, expected at least 1 day (S3 lifecycle expiry is counted in days)`);
  }
  if (props.alarmTopic && props.alarmEmail !== undefined) {
    problems.push('alarmTopic and alarmEmail: got both, expected at most one; subscribe the address to your topic yourself, or drop alarmTopic to get a topic made for alarmEmail');
  }
  const email = props.alarmEmail;
  if (email !== undefined && !Token.isUnresolved(email) && !EMAIL_PATTERN.test(email)) {
    problems.push(`alarmEmail: got ${JSON.stringify(email)}, expected one e-mail address such as "oncall@example.com"`);
  }
  const runbook = props.runbookBaseUrl;
  if (runbook !== undefined && !Token.isUnresolved(runbook)) {
    if (runbook.length === 0 || runbook.length > MAX_RUNBOOK_BASE_URL_LENGTH || runbook.includes('#') || /\s/.test(runbook)) {
      problems.push(
        `runbookBaseUrl: got ${JSON.stringify(runbook)}, expected a URL or path of 1-${MAX_RUNBOOK_BASE_URL_LENGTH} characters without '#' or spaces (the alarm appends #<section>), e.g. "https://github.com/my-org/agent-fleet/blob/main/${RUNBOOK_PATH}"`,
      );
    }
  }
  if (props.abcaTaskTable) checkAbcaTaskTable(problems, props.abcaTaskTable, env);
  return problems;
}

function checkAbcaTaskTable(problems: string[], table: dynamodb.ITable, env: FleetEnvironment | undefined): void {
  const name = table.tableName;
  if (!Token.isUnresolved(name) && !TABLE_NAME_PATTERN.test(name)) {
    problems.push(
      `abcaTaskTable: got a table named ${JSON.stringify(name)}, expected a DynamoDB table name (3-255 letters, digits, '_', '-' or '.'); import ABCA's TaskTable by its real name, e.g. dynamodb.Table.fromTableName(this, 'AbcaTaskTable', 'abca-TaskTable-1A2B3C4D')`,
    );
  }
  // Table.fromTableArn takes its env from the importing stack, not from the ARN: read the ARN.
  const arn = Token.isUnresolved(table.tableArn) ? undefined : Arn.split(table.tableArn, ArnFormat.SLASH_RESOURCE_NAME);
  for (const key of ['account', 'region'] as const) {
    const got = arn?.[key] ?? table.env[key];
    const want = env?.[key];
    if (want === undefined || Token.isUnresolved(got) || Token.isUnresolved(want) || got === want) continue;
    problems.push(
      `abcaTaskTable: got a table in ${key} ${got}, expected the fleet's ${key} ${want} (fleetd writes to it by name, with its own ${key}'s DynamoDB endpoint and credentials); deploy the fleet in the table's account and region, or leave abcaTaskTable unset`,
    );
  }
}

/** Validates (throwing AgentFleetPropsError with every problem) and fills in the defaults. */
export function resolveFleetProps(path: string, props: AgentFleetProps, env?: FleetEnvironment): ResolvedFleetProps {
  const problems = validateFleetProps(props, env);
  if (problems.length > 0) throw new AgentFleetPropsError(path, problems);
  return {
    fleetName: props.fleetName ?? FLEET_DEFAULTS.fleetName,
    tagPrefix: props.tagPrefix ?? DEFAULT_TAG_PREFIX,
    instanceTypes: props.instanceTypes ?? [new ec2.InstanceType(FLEET_DEFAULTS.instanceType)],
    amiParameterName: props.amiParameterName ?? DEFAULT_AMI_PARAMETER_NAME,
    rootDeviceName: props.rootDeviceName ?? FLEET_DEFAULTS.rootDeviceName,
    rootVolumeSize: props.rootVolumeSize ?? Size.gibibytes(FLEET_DEFAULTS.rootVolumeGiB),
    minCapacity: props.minCapacity ?? FLEET_DEFAULTS.minCapacity,
    maxCapacity: props.maxCapacity ?? FLEET_DEFAULTS.maxCapacity,
    slotsPerInstance: props.slotsPerInstance ?? FLEET_DEFAULTS.slotsPerInstance,
    scalingBuffer: props.scalingBuffer ?? FLEET_DEFAULTS.scalingBuffer,
    capacityRebalance: props.capacityRebalance ?? props.spot !== undefined,
    drainHeartbeatTimeout: props.drainHeartbeatTimeout ?? Duration.minutes(FLEET_DEFAULTS.drainHeartbeatMinutes),
    retainOnFailedDrain: props.retainOnFailedDrain ?? true,
    payloadRetention: props.payloadRetention ?? Duration.days(RECORD_RETENTION_DAYS),
    removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    oldestTaskAgeAlarmThreshold: props.oldestTaskAgeAlarmThreshold ?? Duration.minutes(FLEET_DEFAULTS.oldestTaskAgeAlarmMinutes),
    runbookBaseUrl: props.runbookBaseUrl ?? RUNBOOK_PATH,
    instanceLogGroupPrefix: props.instanceLogGroupPrefix ?? FLEET_DEFAULTS.instanceLogGroupPrefix,
    logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    taskLogRetention: props.taskLogRetention ?? logs.RetentionDays.THREE_MONTHS,
    artifactRetention: props.artifactRetention ?? Duration.days(RECORD_RETENTION_DAYS),
  };
}
