/**
 * AgentFleet: a pull-based EC2 fleet for long agent containers, as one construct.
 *
 *   submitters ──grantSubmit──▶ seal (KMS HMAC key) + payload bucket + tasks table + task queue
 *   ──▶ fleetd on the group's instances (verify the seal, claim, run, heartbeat) ──▶ tables
 *   scaler Lambda (every 10 s) ── raises desired capacity from the queue depth; instances
 *   scale themselves in. reconciler Lambda ── repairs what no daemon will finish.
 *   cancellers ──grantCancel──▶ SSM cancel document on fleet-tagged instances ──▶ fleetd cancel
 *   readers ──grantRead──▶ records, events, instances; operators ──grantRedrive──▶ the DLQ
 *   operators ──grantOperate──▶ all four (what the `fleet` CLI needs)
 *
 * Names, tag keys, table schemas and timings come from the task contract (daemon/src/contract);
 * permissions from ./permissions; fleetd's user data from ./user-data; alarms and the
 * dashboard from ./monitoring.
 */
import * as path from 'node:path';
import { ArnFormat, Aws, Duration, Names, RemovalPolicy, Stack, Tags, Token } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import {
  ARTIFACTS_KEY_PREFIX,
  DEFAULT_TIMINGS,
  EVENTS_TABLE,
  FLEET_ENV,
  INSTANCES_TABLE,
  InstanceStatus,
  QUEUE_DEFAULTS,
  TASKS_TABLE,
  READINESS_HOOK_NAME,
  TERMINATION_HOOK_NAME,
  defaultTaskLogGroupName,
  cancelDocumentContent,
  tagKeys,
  type FleetdConfigFileInput,
  type TagKeys,
} from '../daemon/src/contract';
import { resolveFleetProps, type AgentFleetProps } from './fleet-props';
import { SCALER_SCHEDULE_SECONDS, SCALER_TIMEOUT_SECONDS, scalerEnvironment } from './handlers/scaler-config';
import { FLEET_METRIC_DIMENSION, FLEET_METRICS_NAMESPACE, FleetMetric, METRICS_NAMESPACE_ENV } from './metrics';
import { FleetMonitoring } from './monitoring';
import { addReadinessHook, warmPoolOptions } from './readiness';
import {
  cancelStatements,
  grantStatements,
  instanceArnPattern,
  instanceRoleStatements,
  PAYLOAD_KEY_PATTERN,
  readStatements,
  reconcilerStatements,
  redriveStatements,
  scalerStatements,
  sealStatements,
  submitStatements,
  type FleetPermissionTargets,
} from './permissions';
import { acknowledge, acknowledgeManagedPolicy, acknowledgeWildcardResource } from './nag';
import { ScheduledFunction } from './scheduled-function';
import { fleetdUserData } from './user-data';
import { ARTIFACTS_KEY_PATTERN, FleetTaskLogs } from './logs';

export * from './fleet-props';

/** The `*` in an Auto Scaling group ARN is the group's generated id; the name is exact. */
const ASG_ARN_REASON =
  "The fleet's own Auto Scaling group by its exact name; the wildcard is the group id that IAM ARNs for groups always carry.";

const HANDLERS_DIR = path.join(__dirname, 'handlers');

export class AgentFleet extends Construct {
  readonly fleetName: string;
  /** Prefix of the instance tag keys (`FLEET_TAG_PREFIX`). */
  readonly tagPrefix: string;
  readonly tagKeys: TagKeys;
  readonly vpc: ec2.IVpc;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly tasksTable: dynamodb.Table;
  readonly eventsTable: dynamodb.Table;
  readonly instancesTable: dynamodb.Table;
  readonly payloadBucket: s3.Bucket;
  /**
   * The fleet's KMS HMAC key (HMAC_256, GENERATE_VERIFY_MAC) that seals task specs
   * (docs/security.md): kms:GenerateMac for submitters only (grantSubmit, grantOperate,
   * grantSeal), kms:VerifyMac for the instance role only. Its ARN is fleetd's `sealKeyId` and
   * the CLI's FLEET_SEAL_KEY_ID.
   */
  readonly sealKey: kms.Key;
  readonly cancelDocument: ssm.CfnDocument;
  /** Name of the cancel document (`FLEET_CANCEL_DOCUMENT` for the CLI). */
  readonly cancelDocumentName: string;
  readonly securityGroup: ec2.SecurityGroup;
  /** The role fleetd runs with on every instance. */
  readonly instanceRole: iam.Role;
  /**
   * The role fleetd assumes (with session tags) to serve each task container's credentials.
   * It has no permissions: grant it what the agents need.
   */
  readonly taskRole: iam.Role;
  /** `<prefix>/fleetd`, `<prefix>/system`: what the AMI's CloudWatch agent ships. */
  readonly instanceLogGroups: logs.LogGroup[];
  /** `<prefix>/task-logs`: each task attempt's output, shipped by fleetd (stream `<task_id>/<attempt>`, docs/logs.md). */
  readonly taskLogs: FleetTaskLogs;
  readonly launchTemplate: ec2.LaunchTemplate;
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  /** The group's name, a plain string (`FLEET_ASG_NAME`; fleetd's config `asgName`). */
  readonly autoScalingGroupName: string;
  readonly drainHook: autoscaling.LifecycleHook;
  /** `fleetd-ready`: launches wait until fleetd's preflight and prepull hold (./readiness). */
  readonly readinessHook: autoscaling.LifecycleHook;
  readonly scaler: ScheduledFunction;
  /** Repairs lost enqueues, expired leases past the cap and orphaned cancels (handlers/reconcile/). */
  readonly reconciler: ScheduledFunction;
  readonly monitoring: FleetMonitoring;
  /**
   * Where alarms and scaling notifications go: the `alarmTopic` prop, or the topic created for
   * `alarmEmail`. Undefined when neither was given.
   */
  readonly alarmTopic?: sns.ITopic;
  /** Base of every alarm's runbook link (the `runbookBaseUrl` prop, resolved). */
  readonly runbookBaseUrl: string;
  /** fleetd's config file as written by the user data (values may be tokens). */
  readonly fleetdConfig: FleetdConfigFileInput;

  private readonly permissionTargets: FleetPermissionTargets;

  constructor(scope: Construct, id: string, props: AgentFleetProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const p = resolveFleetProps(this.node.path, props, { account: stack.account, region: stack.region });
    this.runbookBaseUrl = p.runbookBaseUrl;
    this.fleetName = p.fleetName;
    this.tagPrefix = p.tagPrefix;
    this.tagKeys = tagKeys(p.tagPrefix);

    this.vpc = props.vpc ?? this.defaultVpc();
    this.alarmTopic = props.alarmTopic ?? (props.alarmEmail !== undefined ? this.emailAlarmTopic(props.alarmEmail, p.fleetName, p.removalPolicy) : undefined);

    // ----- Queue and dead-letter queue: SSE, TLS only, visibility = lease.
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.seconds(QUEUE_DEFAULTS.dlqRetentionSeconds),
    });
    acknowledge(
      this.deadLetterQueue,
      'AwsSolutions-SQS3',
      'This is the dead-letter queue of the task queue; poison messages stop here for a person (alarmed when not empty).',
    );
    this.queue = new sqs.Queue(this, 'TaskQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // fleetd extends each message's visibility with every heartbeat, so lease and
      // visibility expire together: a dead instance's task reappears when its lease ends.
      visibilityTimeout: Duration.seconds(DEFAULT_TIMINGS.leaseSeconds),
      receiveMessageWaitTime: Duration.seconds(DEFAULT_TIMINGS.longPollSeconds),
      retentionPeriod: Duration.seconds(QUEUE_DEFAULTS.retentionSeconds),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: QUEUE_DEFAULTS.maxReceiveCount },
    });

    // ----- Tables: on demand, PITR, TTL, the by-status index `fleet list` needs.
    const tableDefaults = {
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: false,
      removalPolicy: p.removalPolicy,
    };
    this.tasksTable = new dynamodb.Table(this, 'TasksTable', {
      ...tableDefaults,
      partitionKey: { name: TASKS_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: TASKS_TABLE.ttlAttribute,
      // Every transition, old and new image: FleetIntake (./intake) publishes events and Step Functions callbacks from it.
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    });
    this.tasksTable.addGlobalSecondaryIndex({
      indexName: TASKS_TABLE.statusIndex.name,
      partitionKey: { name: TASKS_TABLE.statusIndex.partitionKey, type: dynamodb.AttributeType.STRING },
      // created_at is epoch milliseconds (the contract's TaskRecord).
      sortKey: { name: TASKS_TABLE.statusIndex.sortKey, type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    this.eventsTable = new dynamodb.Table(this, 'EventsTable', {
      ...tableDefaults,
      partitionKey: { name: EVENTS_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: EVENTS_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: EVENTS_TABLE.ttlAttribute,
    });
    this.instancesTable = new dynamodb.Table(this, 'InstancesTable', {
      ...tableDefaults,
      partitionKey: { name: INSTANCES_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: INSTANCES_TABLE.ttlAttribute,
    });

    // ----- Payload bucket: private, TLS only, encrypted, expiring.
    this.payloadBucket = new s3.Bucket(this, 'PayloadBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: p.removalPolicy,
      lifecycleRules: [
        { id: 'expire-payloads', expiration: p.payloadRetention, abortIncompleteMultipartUploadAfter: Duration.days(1) },
        // Artifacts (docs/logs.md) have their own retention; the rule above also applies to them, so the shorter wins.
        { id: 'expire-artifacts', prefix: ARTIFACTS_KEY_PREFIX, expiration: p.artifactRetention },
      ],
    });
    acknowledge(
      this.payloadBucket,
      'AwsSolutions-S1',
      'Payloads are short-lived task inputs (written under tasks/<id>/ by submitters, read by fleetd, expired after the retention). Object-level auditing belongs to CloudTrail data events, enabled account-wide; a per-fleet access-log bucket is left out.',
    );

    // ----- The seal key: only a submitter decides what runs (docs/security.md). HMAC keys have
    // no automatic rotation in KMS (cdk-nag's KMS5 concerns symmetric encryption keys only).
    this.sealKey = new kms.Key(this, 'SealKey', {
      description: `${p.fleetName}: seals task specs at submit; fleetd verifies before it runs anything`,
      keySpec: kms.KeySpec.HMAC_256,
      keyUsage: kms.KeyUsage.GENERATE_VERIFY_MAC,
      removalPolicy: p.removalPolicy,
    });

    // ----- The SSM cancel document (TaskId constrained by allowedPattern).
    this.cancelDocument = new ssm.CfnDocument(this, 'CancelDocument', {
      documentType: 'Command',
      content: cancelDocumentContent(),
      updateMethod: 'NewVersion',
    });
    this.cancelDocumentName = this.cancelDocument.ref;

    // ----- Network: no ingress at all (cancel arrives through the SSM agent's outbound channel).
    this.securityGroup = new ec2.SecurityGroup(this, 'InstanceSecurityGroup', {
      vpc: this.vpc,
      description: `agent-fleet ${p.fleetName}: no ingress; outbound for AWS APIs, registries and agents`,
      allowAllOutbound: true,
    });

    // ----- Roles.
    // No managed policy: the SSM Agent's minimum is in ./permissions (SSM_AGENT_ACTIONS).
    this.instanceRole = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `fleetd on agent-fleet ${p.fleetName} instances`,
    });
    this.taskRole = new iam.Role(this, 'TaskRole', {
      // Only fleetd's instance role may assume it, and it must pass session tags (task id).
      assumedBy: new iam.SessionTagsPrincipal(new iam.ArnPrincipal(this.instanceRole.roleArn)),
      description: `Credentials served to task containers of agent-fleet ${p.fleetName}`,
    });

    this.instanceLogGroups = ['fleetd', 'system'].map(
      (name) =>
        new logs.LogGroup(this, `InstanceLogs-${name}`, {
          logGroupName: `${p.instanceLogGroupPrefix}/${name}`,
          retention: p.logRetention,
          removalPolicy: p.removalPolicy,
        }),
    );

    this.taskLogs = new FleetTaskLogs(this, 'TaskLogs', {
      logGroupName: defaultTaskLogGroupName(p.instanceLogGroupPrefix),
      retention: p.taskLogRetention,
      encryptionKey: props.taskLogEncryptionKey,
      removalPolicy: p.removalPolicy,
    });

    const secretArnPrefix =
      props.secretArnPrefix ??
      stack.formatArn({
        service: 'secretsmanager',
        resource: 'secret',
        resourceName: `agent-fleet/${p.fleetName}/`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
    const allowedRegistries = props.allowedRegistries ?? [`${Aws.ACCOUNT_ID}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}`];
    const ecrRepositoryArns = props.ecrRepositoryArns ?? [stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: '*' })];

    // ----- Launch template: IMDSv2 only, hop limit 1 (containers cannot reach the instance's
    // credentials), encrypted gp3 root, user data that only writes fleetd's config.
    // A named group breaks the cycle user data (asgName) → launch template → group.
    const asgName = Names.uniqueResourceName(this, { maxLength: 200, separator: '-' });
    this.autoScalingGroupName = asgName;
    // Built from the literal name, not the group's attribute: the instance role's policy must
    // not depend on the group (group → launch template → instance profile → role).
    const asgArn = stack.formatArn({
      service: 'autoscaling',
      resource: 'autoScalingGroup',
      resourceName: `*:autoScalingGroupName/${asgName}`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.fleetdConfig = {
      fleetName: p.fleetName,
      region: Aws.REGION,
      queueUrl: this.queue.queueUrl,
      dlqUrl: this.deadLetterQueue.queueUrl,
      tasksTable: this.tasksTable.tableName,
      eventsTable: this.eventsTable.tableName,
      instancesTable: this.instancesTable.tableName,
      payloadBucket: this.payloadBucket.bucketName,
      // The literal name (the group's own attribute is a token fleetd's schema cannot check at synth).
      logGroup: defaultTaskLogGroupName(p.instanceLogGroupPrefix),
      cancelDocument: this.cancelDocumentName,
      asgName,
      tagPrefix: p.tagPrefix,
      slots: p.slotsPerInstance,
      allowedRegistries,
      secretArnPrefix,
      taskRoleArn: this.taskRole.roleArn,
      sealKeyId: this.sealKey.keyArn,
      readinessHookName: READINESS_HOOK_NAME,
      ...(props.prepullImages?.length ? { prepullImages: props.prepullImages } : {}),
      ...(props.abcaTaskTable ? { abcaTaskTable: props.abcaTaskTable.tableName } : {}),
    };
    const mixed = p.instanceTypes.length > 1 || props.spot !== undefined;
    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: props.machineImage ?? ec2.MachineImage.fromSsmParameter(p.amiParameterName),
      instanceType: mixed ? undefined : p.instanceTypes[0],
      role: this.instanceRole,
      securityGroup: this.securityGroup,
      userData: fleetdUserData(stack, this.fleetdConfig),
      requireImdsv2: true,
      httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
      httpEndpoint: true,
      httpPutResponseHopLimit: 1,
      instanceMetadataTags: false,
      associatePublicIpAddress: false,
      blockDevices: [
        {
          deviceName: p.rootDeviceName,
          volume: ec2.BlockDeviceVolume.ebs(p.rootVolumeSize.toGibibytes(), {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
    });

    // ----- Auto Scaling group.
    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'Group', {
      autoScalingGroupName: asgName,
      vpc: this.vpc,
      vpcSubnets: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      minCapacity: p.minCapacity,
      maxCapacity: p.maxCapacity,
      // No desiredCapacity: a deployment must not reset what the scaler decided.
      ...(mixed
        ? {
            mixedInstancesPolicy: {
              launchTemplate: this.launchTemplate,
              launchTemplateOverrides: p.instanceTypes.map((instanceType) => ({ instanceType })),
              instancesDistribution: props.spot
                ? {
                    onDemandBaseCapacity: props.spot.onDemandBaseCapacity ?? 0,
                    onDemandPercentageAboveBaseCapacity: props.spot.onDemandPercentageAboveBaseCapacity ?? 0,
                    spotAllocationStrategy: props.spot.allocationStrategy ?? autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
                  }
                : {
                    onDemandPercentageAboveBaseCapacity: 100,
                    onDemandAllocationStrategy: autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
                  },
            },
          }
        : { launchTemplate: this.launchTemplate }),
      // Only the instance knows it is idle: Auto Scaling never picks one to scale in.
      newInstancesProtectedFromScaleIn: true,
      capacityRebalance: p.capacityRebalance,
      groupMetrics: [autoscaling.GroupMetrics.all()],
      notifications: this.alarmTopic ? [{ topic: this.alarmTopic }] : undefined,
      instanceLifecyclePolicy: p.retainOnFailedDrain
        ? { retentionTriggers: { terminateHookAbandon: autoscaling.TerminateHookAbandonAction.RETAIN } }
        : undefined,
    });
    if (!this.alarmTopic) {
      acknowledge(
        this.autoScalingGroup,
        'AwsSolutions-AS3',
        'No alarmTopic or alarmEmail was given, so there is no topic for scaling notifications; the scaler publishes every decision as a metric and a log line, and the dashboard shows the group size. Pass alarmTopic or alarmEmail to get notifications.',
      );
    }
    if (mixed) {
      // cdk-nag's EC26 (encrypted EBS) cannot follow the launch template reference inside a
      // mixed-instances policy and throws instead of deciding; without this `-c spot=true` failed the synth.
      acknowledge(
        this.autoScalingGroup,
        'AwsSolutions::AwsSolutions-EC26',
        "The group's only volume is the launch template's root volume, which is encrypted gp3 (the template tests assert Encrypted: true); cdk-nag cannot read it through the mixed-instances policy's launch template reference.",
      );
    }
    // Tags propagated at launch: the fleet tag (scopes SendCommand; fleetd may never write it)
    // and status=booting, so no instance is ever advertised idle before fleetd's preflight.
    Tags.of(this.autoScalingGroup).add(this.tagKeys.fleet, p.fleetName, { applyToLaunchedInstances: true });
    Tags.of(this.autoScalingGroup).add(this.tagKeys.status, InstanceStatus.BOOTING, { applyToLaunchedInstances: true });

    // Termination (instance refresh, rebalancing, manual): fleetd drains while sending
    // heartbeats, then completes the hook. A silent fleetd lets the timeout terminate it.
    this.drainHook = this.autoScalingGroup.addLifecycleHook('DrainHook', {
      lifecycleHookName: TERMINATION_HOOK_NAME,
      lifecycleTransition: autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
      heartbeatTimeout: p.drainHeartbeatTimeout,
      defaultResult: autoscaling.DefaultResult.CONTINUE,
    });
    this.readinessHook = addReadinessHook(this.autoScalingGroup);
    if (props.warmPool) this.autoScalingGroup.addWarmPool(warmPoolOptions(props.warmPool));
    this.suspendAzRebalance(asgName, asgArn);

    // ----- Instance permissions (least privilege, see ./permissions).
    this.permissionTargets = {
      stack,
      queue: this.queue,
      deadLetterQueue: this.deadLetterQueue,
      tasksTable: this.tasksTable,
      eventsTable: this.eventsTable,
      instancesTable: this.instancesTable,
      payloadBucket: this.payloadBucket,
      fleetName: p.fleetName,
      tagKeys: this.tagKeys,
      sealKey: this.sealKey,
      taskLogGroupArn: this.taskLogs.logGroup.logGroupArn,
    };
    const instanceStatements = instanceRoleStatements({
      ...this.permissionTargets,
      autoScalingGroupArn: asgArn,
      taskRole: this.taskRole,
      secretArnPrefix,
      ecrRepositoryArns,
      instanceLogGroupArns: this.instanceLogGroups.map((g) => g.logGroupArn),
      taskLogGroupArn: this.taskLogs.logGroup.logGroupArn,
      abcaTaskTable: props.abcaTaskTable,
    });
    for (const s of instanceStatements) this.instanceRole.addToPrincipalPolicy(s);
    this.acknowledgeInstanceRole({ secretArnPrefix, ecrRepositoryArns, asgArn });

    // ----- Scaler and reconciler Lambdas.
    const statusIndex = TASKS_TABLE.statusIndex.name;
    this.scaler = new ScheduledFunction(this, 'Scaler', {
      entry: path.join(HANDLERS_DIR, 'scaler.ts'),
      description: `agent-fleet ${p.fleetName}: raise desired capacity from the queue depth every ${DEFAULT_TIMINGS.scalerTickSeconds} s`,
      schedule: events.Schedule.rate(Duration.seconds(SCALER_SCHEDULE_SECONDS)),
      logRetention: p.logRetention,
      timeout: Duration.seconds(SCALER_TIMEOUT_SECONDS),
      environment: scalerEnvironment({
        fleetName: p.fleetName,
        queueUrl: this.queue.queueUrl,
        asgName,
        tasksTable: this.tasksTable.tableName,
        slotsPerInstance: p.slotsPerInstance,
        buffer: p.scalingBuffer,
        metricsNamespace: FLEET_METRICS_NAMESPACE,
      }),
      statements: scalerStatements(this.permissionTargets, asgArn, statusIndex, FLEET_METRICS_NAMESPACE),
    });
    this.acknowledgeLambda(
      this.scaler,
      asgArn,
      'autoscaling:DescribeAutoScalingGroups has no resource-level permissions; cloudwatch:PutMetricData is scoped by its cloudwatch:namespace condition instead.',
    );

    this.reconciler = new ScheduledFunction(this, 'Reconciler', {
      entry: path.join(HANDLERS_DIR, 'reconciler.ts'),
      description: `agent-fleet ${p.fleetName}: repair lost enqueues, expired leases and orphaned cancels`,
      schedule: events.Schedule.rate(Duration.minutes(2)),
      logRetention: p.logRetention,
      timeout: Duration.seconds(110),
      environment: {
        [FLEET_ENV.fleetName]: p.fleetName,
        [FLEET_ENV.tasksTable]: this.tasksTable.tableName,
        [FLEET_ENV.eventsTable]: this.eventsTable.tableName,
        [FLEET_ENV.instancesTable]: this.instancesTable.tableName,
        [FLEET_ENV.queueUrl]: this.queue.queueUrl,
        [METRICS_NAMESPACE_ENV]: FLEET_METRICS_NAMESPACE,
        // The ABCA tasks a pass ends are told to ABCA's TaskTable (reconcile/run.ts `abcaMirror`).
        ...(props.abcaTaskTable ? { [FLEET_ENV.abcaTaskTable]: props.abcaTaskTable.tableName } : {}),
      },
      statements: reconcilerStatements(this.permissionTargets, statusIndex, FLEET_METRICS_NAMESPACE, props.abcaTaskTable),
    });
    this.acknowledgeLambda(
      this.reconciler,
      undefined,
      'cloudwatch:PutMetricData has no resource-level permissions; its cloudwatch:namespace condition scopes it to the fleet namespace.',
    );

    this.denySealing([this.instanceRole, this.taskRole, this.scaler.role, this.reconciler.role]);

    this.monitoring = new FleetMonitoring(this, 'Monitoring', {
      fleet: this,
      oldestTaskAgeThreshold: p.oldestTaskAgeAlarmThreshold,
      alarmTopic: this.alarmTopic,
      runbookBaseUrl: p.runbookBaseUrl,
    });
  }

  // ----- Integration methods.

  /**
   * Lets `grantee` submit tasks: upload payloads, seal specs with the fleet key
   * (kms:GenerateMac), create records and events, enqueue. A submitter decides what runs.
   */
  grantSubmit(grantee: iam.IGrantable): iam.Grant {
    return grantStatements(grantee, submitStatements(this.permissionTargets));
  }

  /**
   * Lets `grantee` seal specs with the fleet key (kms:GenerateMac) and nothing else: for a
   * component that submits on a producer's behalf (an intake function writing records through
   * its own grants). Whoever holds it decides what the fleet runs.
   */
  grantSeal(grantee: iam.IGrantable): iam.Grant {
    return grantStatements(grantee, sealStatements(this.permissionTargets));
  }

  /**
   * Lets `grantee` cancel tasks: request the cancel on the record and send the fleet's cancel
   * document, only to instances carrying this fleet's tag.
   */
  grantCancel(grantee: iam.IGrantable): iam.Grant {
    const documentArn = Stack.of(this).formatArn({ service: 'ssm', resource: 'document', resourceName: this.cancelDocumentName });
    return grantStatements(grantee, cancelStatements(this.permissionTargets, documentArn));
  }

  /**
   * Lets `grantee` run the read-only `fleet` verbs (`status`, `list`, `watch`, `logs`,
   * `instances`): get task records, query the by-status index and the events, scan the
   * instances table, and `ec2:DescribeInstances` (which AWS only grants on resource `*`).
   */
  grantRead(grantee: iam.IGrantable): iam.Grant {
    return grantStatements(grantee, readStatements(this.permissionTargets, TASKS_TABLE.statusIndex.name));
  }

  /**
   * Lets `grantee` inspect and redrive the dead-letter queue (`fleet dlq list`,
   * `fleet dlq redrive`): receive, release and delete dead letters; read the task record a
   * letter names; send a runnable task's fresh message to the task queue and record when.
   */
  grantRedrive(grantee: iam.IGrantable): iam.Grant {
    return grantStatements(grantee, redriveStatements(this.permissionTargets));
  }

  /**
   * Lets `grantee` run every `fleet` verb an operator uses: the read verbs (`status`, `list`,
   * `watch`, `logs`, `instances`), `submit`, `cancel`, and `dlq list` / `dlq redrive`. Exactly
   * the union of grantRead, grantSubmit, grantCancel and grantRedrive, nothing more (no shell on
   * instances: add `ssm:StartSession` yourself if operators need one, see docs/operations.md).
   */
  grantOperate(grantee: iam.IGrantable): iam.Grant {
    return [this.grantRead(grantee), this.grantSubmit(grantee), this.grantCancel(grantee), this.grantRedrive(grantee)].reduce((all, g) => all.combine(g));
  }

  /** Tasks waiting or running: visible + in-flight messages of the task queue. */
  metricQueueDepth(props: cloudwatch.MathExpressionOptions = {}): cloudwatch.IMetric {
    const period = props.period ?? Duration.minutes(1);
    return new cloudwatch.MathExpression({
      expression: 'visible + inFlight',
      usingMetrics: {
        visible: this.queue.metricApproximateNumberOfMessagesVisible({ period, statistic: cloudwatch.Stats.MAXIMUM }),
        inFlight: this.queue.metricApproximateNumberOfMessagesNotVisible({ period, statistic: cloudwatch.Stats.MAXIMUM }),
      },
      label: 'Tasks queued or running',
      ...props,
      period,
    });
  }

  /**
   * Age of the oldest task no instance has claimed (QUEUED or INTERRUPTED), in seconds, as
   * published by the scaler. Not SQS's ApproximateAgeOfOldestMessage, which also counts
   * running tasks' in-flight messages.
   */
  metricOldestTaskAge(props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return this.fleetMetric(FleetMetric.OLDEST_UNCLAIMED_TASK_AGE, { statistic: cloudwatch.Stats.MAXIMUM, ...props });
  }

  /** Group members whose Auto Scaling health status is Unhealthy. */
  metricUnhealthyInstances(props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return this.fleetMetric(FleetMetric.UNHEALTHY_INSTANCES, { statistic: cloudwatch.Stats.MAXIMUM, ...props });
  }

  /** The scaler's decision (desired capacity after each tick). */
  metricScalerDesiredCapacity(props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return this.fleetMetric(FleetMetric.DESIRED_CAPACITY, { statistic: cloudwatch.Stats.MAXIMUM, ...props });
  }

  /** Any fleet metric (see FleetMetric) with this fleet's dimension. */
  fleetMetric(metricName: string, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: FLEET_METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { [FLEET_METRIC_DIMENSION]: this.fleetName },
      period: Duration.minutes(1),
      ...props,
    });
  }

  // ----- Parts.

  /**
   * The seal key's policy refuses kms:GenerateMac to the fleet's own principals that must never
   * decide what runs (the instances, the task containers, the Lambdas), whatever IAM policies
   * are later attached to them (a broad policy on the task role, say). Everyone else still
   * needs an IAM grant (the key trusts the account's IAM, CDK's default admin statement).
   */
  private denySealing(roles: iam.IRole[]): void {
    this.sealKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'FleetPrincipalsNeverSeal',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['kms:GenerateMac'],
        resources: ['*'],
        conditions: { ArnEquals: { 'aws:PrincipalArn': roles.map((r) => r.roleArn) } },
      }),
    );
  }

  /**
   * The topic for `alarmEmail`: encrypted with its own rotating KMS key (AwsSolutions-SNS2; the
   * AWS managed aws/sns key would not let CloudWatch publish), TLS only (AwsSolutions-SNS3).
   * CloudWatch alarms of this account, and Auto Scaling's service-linked role (scaling
   * notifications), may use the key; nothing else outside IAM policies of the account.
   */
  private emailAlarmTopic(email: string, fleetName: string, removalPolicy: RemovalPolicy): sns.Topic {
    const stack = Stack.of(this);
    const key = new kms.Key(this, 'AlarmTopicKey', {
      description: `${fleetName}: encrypts the fleet's alarm topic`,
      // KMS aliases take letters, digits, '/', '_' and '-' only (a fleet name may have a '.').
      alias: Token.isUnresolved(fleetName) ? undefined : `alias/agent-fleet/${fleetName.replace(/[^A-Za-z0-9_-]/g, '-')}/alarms`,
      enableKeyRotation: true,
      removalPolicy,
    });
    const publishToTopic = ['kms:Decrypt', 'kms:GenerateDataKey*'];
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: publishToTopic,
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );
    // The service-linked role may not exist yet when the key is created (it appears with the
    // account's first group), so it is named in a condition, not as the principal.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AutoScalingNotificationsPublish',
        principals: [new iam.AnyPrincipal()],
        actions: publishToTopic,
        resources: ['*'],
        conditions: {
          StringEquals: { 'aws:PrincipalAccount': stack.account, 'kms:ViaService': `sns.${stack.region}.${stack.urlSuffix}` },
          ArnLike: {
            'aws:PrincipalArn': stack.formatArn({
              service: 'iam',
              region: '',
              resource: 'role',
              resourceName: 'aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling',
            }),
          },
        },
      }),
    );
    const topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `${fleetName} alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    topic.addSubscription(new subscriptions.EmailSubscription(email));
    return topic;
  }

  private defaultVpc(): ec2.Vpc {
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 1,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
      flowLogs: { all: { trafficType: ec2.FlowLogTrafficType.REJECT } },
    });
    return vpc;
  }

  /**
   * AZRebalance would terminate instances (running tasks) to even out AZs; CloudFormation has no
   * property for suspended processes, so a deploy-time SDK call suspends it.
   */
  private suspendAzRebalance(asgName: string, asgArn: string): void {
    const call: cr.AwsSdkCall = {
      service: 'AutoScaling',
      action: 'suspendProcesses',
      parameters: { AutoScalingGroupName: asgName, ScalingProcesses: ['AZRebalance'] },
      physicalResourceId: cr.PhysicalResourceId.of(`${asgName}/AZRebalance`),
    };
    const suspend = new cr.AwsCustomResource(this, 'SuspendAZRebalance', {
      onCreate: call,
      onUpdate: call,
      policy: cr.AwsCustomResourcePolicy.fromStatements([
        new iam.PolicyStatement({ actions: ['autoscaling:SuspendProcesses'], resources: [asgArn] }),
      ]),
      installLatestAwsSdk: false,
    });
    suspend.node.addDependency(this.autoScalingGroup);
    acknowledgeWildcardResource(suspend, asgArn, ASG_ARN_REASON);
    // The provider is CDK's stack-wide singleton Lambda behind every AwsCustomResource.
    const provider = Stack.of(this).node.tryFindChild(`AWS${cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`);
    if (provider) {
      acknowledgeManagedPolicy(
        provider,
        'service-role/AWSLambdaBasicExecutionRole',
        "CDK's AwsCustomResource provider (runs only during deployments, here to suspend AZRebalance) writes its logs with the basic execution policy.",
      );
    }
  }

  private acknowledgeInstanceRole(t: {
    secretArnPrefix: string;
    ecrRepositoryArns: string[];
    asgArn: string;
  }): void {
    const role = this.instanceRole;
    acknowledge(
      role,
      'AwsSolutions-IAM5[Resource::*]',
      "ecr:GetAuthorizationToken, autoscaling:DescribeAutoScalingGroups/DescribeAutoScalingInstances and the SSM Agent's registration and message-channel actions (ssm:UpdateInstanceInformation, ssm:ListInstanceAssociations, ec2messages:*, ssmmessages:* listed one by one; AWS's documented minimum for Run Command and Session Manager) have no resource-level permissions in IAM.",
    );
    acknowledgeWildcardResource(role, this.payloadBucket.arnForObjects(PAYLOAD_KEY_PATTERN), 'Read-only access to payload objects under tasks/ (object keys are per task id, unknown in advance).');
    acknowledgeWildcardResource(role, this.payloadBucket.arnForObjects(ARTIFACTS_KEY_PATTERN), 'PutObject only, only under artifacts/: each task attempt\'s artifacts go to artifacts/<task_id>/<attempt>/ (keys unknown in advance; docs/logs.md).');
    acknowledgeWildcardResource(role, this.taskLogs.logGroup.logGroupArn, 'CreateLogStream and PutLogEvents in the task log group only: one stream per task attempt, named <task_id>/<attempt> (unknown in advance; docs/logs.md).');
    acknowledgeWildcardResource(
      role,
      instanceArnPattern(Stack.of(this)),
      'Tag writes: the instance id is unknown before launch; the condition aws:ARN = ${ec2:SourceInstanceARN} limits them to the calling instance, aws:ResourceTag to fleet members, and aws:TagKeys to the status and task-id keys.',
    );
    acknowledgeWildcardResource(
      role,
      `${t.secretArnPrefix}*`,
      'Task secrets are declared per task; the role reads only secrets under the fleet prefix, the same prefix fleetd enforces.',
    );
    for (const arn of t.ecrRepositoryArns) {
      acknowledgeWildcardResource(role, arn, "Image pulls from the fleet's configured ECR repositories; fleetd also enforces allowedRegistries.");
    }
    acknowledgeWildcardResource(role, t.asgArn, ASG_ARN_REASON);
  }

  private acknowledgeLambda(fn: ScheduledFunction, asgArn: string | undefined, wildcardReason: string): void {
    acknowledge(fn.role, 'AwsSolutions-IAM5[Resource::*]', wildcardReason);
    if (asgArn) acknowledgeWildcardResource(fn.role, asgArn, ASG_ARN_REASON);
  }
}
