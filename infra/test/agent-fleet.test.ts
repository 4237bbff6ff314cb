/**
 * Template assertions for AgentFleet: each security and lifecycle property issue 6 lists,
 * proven on the synthesized CloudFormation.
 */
import { Duration } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import {
  DEFAULT_TIMINGS,
  EVENTS_TABLE,
  FLEET_ENV,
  INSTANCES_TABLE,
  QUEUE_DEFAULTS,
  RECORD_RETENTION_DAYS,
  TASKS_TABLE,
  TASK_ID_PATTERN_SOURCE,
  TERMINATION_HOOK_NAME,
  cancelDocumentContent,
  tagKeys,
} from '../../daemon/src/contract';
import {
  actionsOf,
  buildFleet,
  functionEnvironment,
  onlyResource,
  resolved,
  resourcesOf,
  statementBySid,
  statementsOfRole,
  type FleetUnderTest,
  type Statement,
} from './fleet-factory';
import { TASK_WRITE_ATTRIBUTES, TASK_WRITE_RETURN_VALUES, type TaskWriter } from '../permissions';

const keys = tagKeys();
let fleet: FleetUnderTest;
beforeAll(() => {
  fleet = buildFleet();
});

describe('queues', () => {
  test('the task queue is encrypted, its visibility equals the lease, and it redrives to the DLQ', () => {
    // Assess
    fleet.template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      VisibilityTimeout: DEFAULT_TIMINGS.leaseSeconds,
      ReceiveMessageWaitTimeSeconds: DEFAULT_TIMINGS.longPollSeconds,
      MessageRetentionPeriod: QUEUE_DEFAULTS.retentionSeconds,
      RedrivePolicy: { maxReceiveCount: QUEUE_DEFAULTS.maxReceiveCount, deadLetterTargetArn: Match.anyValue() },
    });
  });

  test('the dead-letter queue is encrypted and keeps messages for the SQS maximum', () => {
    fleet.template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: QUEUE_DEFAULTS.dlqRetentionSeconds,
      RedrivePolicy: Match.absent(),
    });
  });

  test('both queues deny any request that is not over TLS', () => {
    // Prepare
    const policies = Object.values(fleet.template.findResources('AWS::SQS::QueuePolicy'));
    // Assess
    expect(policies).toHaveLength(2);
    for (const policy of policies) {
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });
});

describe('tables', () => {
  test.each([
    ['tasks', TASKS_TABLE.partitionKey, TASKS_TABLE.ttlAttribute],
    ['events', EVENTS_TABLE.partitionKey, EVENTS_TABLE.ttlAttribute],
    ['instances', INSTANCES_TABLE.partitionKey, INSTANCES_TABLE.ttlAttribute],
  ])('the %s table is on demand, with point-in-time recovery, encryption and TTL on %s', (_name, partitionKey, ttl) => {
    fleet.template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: Match.arrayWith([{ AttributeName: partitionKey, KeyType: 'HASH' }]),
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: ttl, Enabled: true },
    });
  });

  test('the tasks table has the by-status index (status, created_at as a number)', () => {
    fleet.template.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: [
        {
          IndexName: TASKS_TABLE.statusIndex.name,
          KeySchema: [
            { AttributeName: TASKS_TABLE.statusIndex.partitionKey, KeyType: 'HASH' },
            { AttributeName: TASKS_TABLE.statusIndex.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
      AttributeDefinitions: Match.arrayWith([{ AttributeName: TASKS_TABLE.statusIndex.sortKey, AttributeType: 'N' }]),
    });
  });

  test('the events table is keyed by task id and event id', () => {
    fleet.template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: EVENTS_TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: EVENTS_TABLE.sortKey, KeyType: 'RANGE' },
      ],
    });
  });
});

describe('payload bucket', () => {
  test('blocks public access, encrypts, and expires payloads after the retention', () => {
    fleet.template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ ExpirationInDays: RECORD_RETENTION_DAYS, Status: 'Enabled' })]) },
    });
  });

  test('denies any request that is not over TLS', () => {
    fleet.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
      },
    });
  });
});

describe('launch template', () => {
  test('requires IMDSv2 with a hop limit of 1, so containers cannot reach instance credentials', () => {
    fleet.template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        MetadataOptions: { HttpEndpoint: 'enabled', HttpTokens: 'required', HttpPutResponseHopLimit: 1, InstanceMetadataTags: 'disabled' },
      }),
    });
  });

  test('has an encrypted gp3 root volume and no public address', () => {
    fleet.template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeType: 'gp3', VolumeSize: 100, DeleteOnTermination: true } }],
        NetworkInterfaces: [Match.objectLike({ AssociatePublicIpAddress: false })],
      }),
    });
  });

  test('takes the AMI from the SSM parameter by default (resolved at deploy time, no lookup)', () => {
    // Prepare
    const parameters = fleet.template.toJSON().Parameters as Record<string, { Type: string; Default: string }>;
    // Assess
    expect(Object.values(parameters)).toContainEqual({ Type: 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>', Default: '/agent-fleet/ami-id' });
  });

  test('one instance type goes into the template; several make a mixed-instances policy', () => {
    // Act
    const mixed = buildFleet({ instanceTypes: [new ec2.InstanceType('g5.xlarge'), new ec2.InstanceType('g6.xlarge')] });
    // Assess
    fleet.template.hasResourceProperties('AWS::EC2::LaunchTemplate', { LaunchTemplateData: Match.objectLike({ InstanceType: 'm7g.xlarge' }) });
    mixed.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      MixedInstancesPolicy: {
        LaunchTemplate: { Overrides: [{ InstanceType: 'g5.xlarge' }, { InstanceType: 'g6.xlarge' }], LaunchTemplateSpecification: Match.anyValue() },
        InstancesDistribution: { OnDemandPercentageAboveBaseCapacity: 100, OnDemandAllocationStrategy: 'prioritized' },
      },
    });
  });
});

describe('Auto Scaling group', () => {
  test('launches into the private subnets, protects new instances from scale-in, and never sets desired capacity', () => {
    // Prepare
    const vpc = fleet.fleet.vpc;
    // Assess
    fleet.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      NewInstancesProtectedFromScaleIn: true,
      VPCZoneIdentifier: vpc.privateSubnets.map((s) => resolved(fleet, s.subnetId)),
      MinSize: '0',
      MaxSize: '10',
      DesiredCapacity: Match.absent(),
      CapacityRebalance: false,
    });
  });

  test('tags instances at launch with the fleet tag and status=booting', () => {
    fleet.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      Tags: Match.arrayWith([
        { Key: keys.fleet, Value: 'agent-fleet', PropagateAtLaunch: true },
        { Key: keys.status, Value: 'booting', PropagateAtLaunch: true },
      ]),
    });
  });

  test('has the termination lifecycle hook fleetd drains under, with a heartbeat timeout', () => {
    fleet.template.hasResourceProperties('AWS::AutoScaling::LifecycleHook', {
      LifecycleHookName: TERMINATION_HOOK_NAME,
      LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
      HeartbeatTimeout: 600,
      DefaultResult: 'CONTINUE',
    });
  });

  test('retains an instance whose drain was abandoned (keep-on-failed-drain), unless turned off', () => {
    // Act
    const off = buildFleet({ retainOnFailedDrain: false });
    // Assess
    fleet.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      InstanceLifecyclePolicy: { RetentionTriggers: { TerminateHookAbandon: 'retain' } },
    });
    off.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { InstanceLifecyclePolicy: Match.absent() });
  });

  test('suspends AZRebalance on the group at deploy time', () => {
    // Prepare
    const custom = onlyResource(fleet, 'Custom::AWS');
    const create = JSON.parse(JSON.stringify(custom.Properties.Create)) as string;
    // Assess: the SDK call, on this group, for exactly AZRebalance.
    expect(create).toContain('"action":"suspendProcesses"');
    expect(create).toContain('"ScalingProcesses":["AZRebalance"]');
    expect(create).toContain(`"AutoScalingGroupName":"${fleet.fleet.autoScalingGroupName}"`);
  });

  test('spot makes a mixed-instances policy with capacity rebalance; a warm pool is optional', () => {
    // Act
    const spot = buildFleet({
      instanceTypes: [new ec2.InstanceType('m7i.xlarge'), new ec2.InstanceType('m6i.xlarge')],
      spot: { onDemandBaseCapacity: 1 },
      warmPool: { minSize: 2, poolState: autoscaling.PoolState.STOPPED },
    });
    // Assess
    spot.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      CapacityRebalance: true,
      MixedInstancesPolicy: Match.objectLike({
        InstancesDistribution: { OnDemandBaseCapacity: 1, OnDemandPercentageAboveBaseCapacity: 0, SpotAllocationStrategy: 'price-capacity-optimized' },
      }),
    });
    spot.template.hasResourceProperties('AWS::AutoScaling::WarmPool', { MinSize: 2, PoolState: 'Stopped' });
    fleet.template.resourceCountIs('AWS::AutoScaling::WarmPool', 0);
  });
});

describe('network', () => {
  test('the instance security group has no ingress rule at all', () => {
    // Prepare
    const groups = Object.values(fleet.template.findResources('AWS::EC2::SecurityGroup'));
    // Assess
    for (const group of groups) expect(group.Properties.SecurityGroupIngress).toBeUndefined();
    fleet.template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });
});

describe('cancel document', () => {
  test("is the contract's document, with TaskId constrained by the task-id pattern", () => {
    // Prepare
    const document = onlyResource(fleet, 'AWS::SSM::Document');
    // Assess
    expect(document.Properties.DocumentType).toBe('Command');
    expect(document.Properties.Content).toEqual(cancelDocumentContent());
    expect(document.Properties.Content).toMatchObject({ parameters: { TaskId: { allowedPattern: TASK_ID_PATTERN_SOURCE } } });
  });
});

describe('instance role', () => {
  let statements: Statement[];
  beforeAll(() => {
    statements = statementsOfRole(fleet, fleet.fleet.instanceRole);
  });

  test('tags only its own instance (aws:ARN = ec2:SourceInstanceARN), only fleet members, only status and task-id keys', () => {
    // Act
    const tagging = statementBySid(statements, 'TagOwnInstanceStatusOnly');
    // Assess
    expect(actionsOf(tagging).sort()).toEqual(['ec2:CreateTags', 'ec2:DeleteTags']);
    expect(tagging.Condition).toEqual({
      StringEquals: { 'aws:ARN': '${ec2:SourceInstanceARN}', [`aws:ResourceTag/${keys.fleet}`]: 'agent-fleet' },
      'ForAllValues:StringEquals': { 'aws:TagKeys': [keys.status, keys.taskId] },
      Null: { 'aws:TagKeys': 'false' },
    });
  });

  test('no other statement lets it write tags, and the fleet tag key is never writable', () => {
    // Prepare
    const tagWriters = statements.filter((s) => actionsOf(s).some((a) => /^ec2:(CreateTags|DeleteTags|\*)$/.test(a) || a === '*'));
    // Assess
    expect(tagWriters.map((s) => s.Sid)).toEqual(['TagOwnInstanceStatusOnly']);
    expect(JSON.stringify(tagWriters[0].Condition?.['ForAllValues:StringEquals'])).not.toContain(keys.fleet);
  });

  test('has no wildcard action, and every statement allows (nothing implicit)', () => {
    for (const s of statements) {
      expect(s.Effect).toBe('Allow');
      for (const action of actionsOf(s)) expect(action).not.toContain('*');
    }
  });

  test.each([
    ['TaskQueueConsume', ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:ReceiveMessage'], 'queue'],
    ['DeadLetterReject', ['sqs:SendMessage'], 'deadLetterQueue'],
    ['TasksTableRead', ['dynamodb:GetItem'], 'tasksTable'],
    ['TasksTableLease', ['dynamodb:UpdateItem'], 'tasksTable'],
    ['EventsTableAppend', ['dynamodb:PutItem'], 'eventsTable'],
    ['InstancesTableRows', ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], 'instancesTable'],
  ] as const)('%s: exactly %j on the fleet’s own %s', (sid, actions, target) => {
    // Prepare
    const f = fleet.fleet;
    const arn = target === 'queue' || target === 'deadLetterQueue' ? f[target].queueArn : f[target].tableArn;
    // Act
    const s = statementBySid(statements, sid);
    // Assess
    expect(actionsOf(s).sort()).toEqual([...actions]);
    expect(resourcesOf(s)).toEqual([resolved(fleet, arn)]);
  });

  test('DynamoDB and SQS access goes to the fleet’s tables and queues only', () => {
    // Prepare
    const f = fleet.fleet;
    const own = [f.queue.queueArn, f.deadLetterQueue.queueArn, f.tasksTable.tableArn, f.eventsTable.tableArn, f.instancesTable.tableArn].map((a) =>
      JSON.stringify(resolved(fleet, a)),
    );
    // Act
    const dataStatements = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:') || a.startsWith('sqs:')));
    // Assess
    for (const s of dataStatements) for (const r of resourcesOf(s)) expect(own).toContain(JSON.stringify(r));
  });

  test('payload access is read-only, under tasks/; the only write is PutObject under artifacts/ (docs/logs.md)', () => {
    const s = statementBySid(statements, 'PayloadRead');
    expect(actionsOf(s)).toEqual(['s3:GetObject']);
    expect(JSON.stringify(resourcesOf(s))).toContain('/tasks/*');
    expect(statements.flatMap(actionsOf).filter((a) => a.startsWith('s3:')).sort()).toEqual(['s3:GetObject', 's3:PutObject']);
    expect(JSON.stringify(resourcesOf(statementBySid(statements, 'ArtifactUpload')))).toContain('/artifacts/*');
  });

  test('secrets are readable only under the fleet prefix', () => {
    // Act
    const custom = buildFleet({ secretArnPrefix: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:agents/' });
    const s = statementBySid(statementsOfRole(custom, custom.fleet.instanceRole), 'TaskSecretsUnderPrefix');
    // Assess
    expect(actionsOf(s)).toEqual(['secretsmanager:GetSecretValue']);
    expect(resourcesOf(s)).toEqual(['arn:aws:secretsmanager:eu-west-1:123456789012:secret:agents/*']);
  });

  test('Auto Scaling actions act on its own group only', () => {
    // Act
    const s = statementBySid(statements, 'OwnGroupLifecycle');
    // Assess
    expect(JSON.stringify(resourcesOf(s))).toContain(`autoScalingGroupName/${fleet.fleet.autoScalingGroupName}`);
    expect(resourcesOf(s)).toHaveLength(1);
    // Exactly what fleetd calls on its group (daemon/src/daemon.ts, lifecycle.ts).
    expect(actionsOf(s).sort()).toEqual([
      'autoscaling:CompleteLifecycleAction',
      'autoscaling:RecordLifecycleActionHeartbeat',
      'autoscaling:SetInstanceHealth',
      'autoscaling:SetInstanceProtection',
      'autoscaling:TerminateInstanceInAutoScalingGroup',
    ]);
  });

  test('rollouts: an instance reads the marker and terminates itself in its own group only; it can never write the marker nor move the group', () => {
    // Act: every Auto Scaling action of the instance role, with the statement that grants it.
    const autoscaling = statements.flatMap((s) => actionsOf(s).filter((a) => a.startsWith('autoscaling:')).map((a) => [a, s] as const));
    const terminate = autoscaling.filter(([a]) => a === 'autoscaling:TerminateInstanceInAutoScalingGroup').map(([, s]) => s);
    // Assess: the marker (a group tag) comes with DescribeAutoScalingGroups (daemon/src/rollout-watch.ts).
    expect(actionsOf(statementBySid(statements, 'GroupRead'))).toContain('autoscaling:DescribeAutoScalingGroups');
    expect(terminate).toHaveLength(1);
    expect(resourcesOf(terminate[0])).toHaveLength(1);
    expect(JSON.stringify(resourcesOf(terminate[0]))).toContain(`autoScalingGroupName/${fleet.fleet.autoScalingGroupName}`);
    const forbidden = ['autoscaling:CreateOrUpdateTags', 'autoscaling:DeleteTags', 'autoscaling:UpdateAutoScalingGroup', 'autoscaling:*'];
    expect(autoscaling.map(([a]) => a).filter((a) => forbidden.includes(a))).toEqual([]);
  });

  test('may assume the task role only (with session tags), and the task role trusts only the instance role', () => {
    // Act
    const s = statementBySid(statements, 'AssumeTaskRole');
    // Assess
    expect(actionsOf(s).sort()).toEqual(['sts:AssumeRole', 'sts:TagSession']);
    expect(resourcesOf(s)).toEqual([resolved(fleet, fleet.fleet.taskRole.roleArn)]);
    expect(statements.flatMap(actionsOf).filter((a) => a.startsWith('sts:')).sort()).toEqual(['sts:AssumeRole', 'sts:TagSession']);
    fleet.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [{ Effect: 'Allow', Action: ['sts:AssumeRole', 'sts:TagSession'], Principal: { AWS: resolved(fleet, fleet.fleet.instanceRole.roleArn) } }],
      },
    });
  });

  test("the CloudWatch agent writes only to the fleet's two instance log groups, which the construct creates", () => {
    // Act
    const s = statementBySid(statements, 'InstanceLogs');
    // Assess
    expect(actionsOf(s).sort()).toEqual(['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents']);
    expect(resourcesOf(s)).toEqual(fleet.fleet.instanceLogGroups.map((g) => resolved(fleet, g.logGroupArn)));
    for (const name of ['/agent-fleet/fleetd', '/agent-fleet/system']) {
      fleet.template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: name, RetentionInDays: 30 });
    }
  });

  test('has no managed policy at all (AmazonSSMManagedInstanceCore is gone)', () => {
    fleet.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({ Statement: [Match.objectLike({ Principal: { Service: 'ec2.amazonaws.com' } })] }),
      ManagedPolicyArns: Match.absent(),
    });
    expect(JSON.stringify(fleet.template.toJSON())).not.toContain('AmazonSSMManagedInstanceCore');
  });

  test("the SSM Agent gets AWS's minimum for Run Command and Session Manager, nothing more", () => {
    // Act
    const ssm = statements.filter((s) => actionsOf(s).some((a) => /^(ssm|ssmmessages|ec2messages):/.test(a)));
    // Assess
    expect(ssm.map((s) => s.Sid)).toEqual(['SsmAgentRegistration', 'SsmAgentRunCommand', 'SsmAgentChannels']);
    expect(ssm.flatMap(actionsOf).sort()).toEqual([
      'ec2messages:AcknowledgeMessage',
      'ec2messages:DeleteMessage',
      'ec2messages:FailMessage',
      'ec2messages:GetEndpoint',
      'ec2messages:GetMessages',
      'ec2messages:SendReply',
      'ssm:ListInstanceAssociations',
      'ssm:UpdateInstanceInformation',
      'ssmmessages:CreateControlChannel',
      'ssmmessages:CreateDataChannel',
      'ssmmessages:OpenControlChannel',
      'ssmmessages:OpenDataChannel',
    ]);
  });
});

describe('ABCA heartbeat mirror (abcaTaskTable)', () => {
  const ABCA_TABLE = 'abca-TaskTable-1A2B3C4D';
  let abca: FleetUnderTest;
  let abcaTable: dynamodb.ITable;
  beforeAll(() => {
    abca = buildFleet((stack) => {
      abcaTable = dynamodb.Table.fromTableName(stack, 'AbcaTaskTable', ABCA_TABLE);
      return { abcaTaskTable: abcaTable };
    });
  });

  test('unset: no statement for it and no abcaTaskTable in fleetd’s config', () => {
    // Prepare
    const statements = statementsOfRole(fleet, fleet.fleet.instanceRole);
    // Assess
    expect(statements.filter((s) => s.Sid?.startsWith('AbcaMirror'))).toEqual([]);
    expect(fleet.fleet.fleetdConfig).not.toHaveProperty('abcaTaskTable');
  });

  test('set: the instance role may GetItem / UpdateItem on that table (attribute-scoped: infra/test/abca-integration.test.ts), and nothing else on it', () => {
    // Prepare
    const statements = statementsOfRole(abca, abca.fleet.instanceRole);
    const arn = JSON.stringify(resolved(abca, abcaTable.tableArn));
    // Act
    const read = statementBySid(statements, 'AbcaMirrorReadStatus');
    const write = statementBySid(statements, 'AbcaMirrorWrite');
    // Assess
    expect(actionsOf(read)).toEqual(['dynamodb:GetItem']);
    expect(actionsOf(write)).toEqual(['dynamodb:UpdateItem']);
    expect(resourcesOf(write)).toEqual([resolved(abca, abcaTable.tableArn)]);
    expect(JSON.stringify(resourcesOf(write))).toContain(`:table/${ABCA_TABLE}`);
    expect(write.Condition).toBeDefined();
    const touching = statements.filter((x) => resourcesOf(x).some((r) => JSON.stringify(r) === arn || JSON.stringify(r).includes(ABCA_TABLE)));
    expect(touching.map((x) => x.Sid)).toEqual(['AbcaMirrorReadStatus', 'AbcaMirrorWrite']);
  });

  test('set: the reconciler may write the mirror\'s attributes on that table (the ABCA tasks it ends), and learns the table\'s name', () => {
    // Prepare
    const statements = statementsOfRole(abca, abca.fleet.reconciler.role);
    const env = JSON.stringify(functionEnvironment(abca, abca.fleet.reconciler.function));
    // Act
    const write = statementBySid(statements, 'AbcaMirrorWrite');
    // Assess: the same attribute-scoped UpdateItem as the instance role's, no read, nothing else on the table.
    expect(actionsOf(write)).toEqual(['dynamodb:UpdateItem']);
    expect(resourcesOf(write)).toEqual([resolved(abca, abcaTable.tableArn)]);
    expect(write.Condition).toEqual(statementBySid(statementsOfRole(abca, abca.fleet.instanceRole), 'AbcaMirrorWrite').Condition);
    expect(statements.filter((x) => JSON.stringify(resourcesOf(x)).includes(ABCA_TABLE)).map((x) => x.Sid)).toEqual(['AbcaMirrorWrite']);
    expect(env).toContain(`"${FLEET_ENV.abcaTaskTable}":"${ABCA_TABLE}"`);
  });

  test('unset: the reconciler has no statement on ABCA and no table name', () => {
    expect(statementsOfRole(fleet, fleet.fleet.reconciler.role).filter((s) => s.Sid?.startsWith('AbcaMirror'))).toEqual([]);
    expect(JSON.stringify(functionEnvironment(fleet, fleet.fleet.reconciler.function))).not.toContain(FLEET_ENV.abcaTaskTable);
  });

  test('set: its name goes into fleetd’s config, which the user data writes', () => {
    // Assess
    expect(abca.fleet.fleetdConfig.abcaTaskTable).toBe(ABCA_TABLE);
    const lt = onlyResource(abca, 'AWS::EC2::LaunchTemplate').Properties.LaunchTemplateData;
    expect(JSON.stringify(lt)).toContain(`\\"abcaTaskTable\\":\\"${ABCA_TABLE}\\"`);
  });
});

describe('grants', () => {
  let t: FleetUnderTest;
  let submitter: iam.Role;
  let canceller: iam.Role;
  let reader: iam.Role;
  let redriver: iam.Role;
  beforeAll(() => {
    t = buildFleet({}, (stack, f) => {
      submitter = new iam.Role(stack, 'Submitter', { assumedBy: new iam.AccountRootPrincipal() });
      canceller = new iam.Role(stack, 'Canceller', { assumedBy: new iam.AccountRootPrincipal() });
      reader = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
      redriver = new iam.Role(stack, 'Redriver', { assumedBy: new iam.AccountRootPrincipal() });
      f.grantSubmit(submitter);
      f.grantCancel(canceller);
      f.grantRead(reader);
      f.grantRedrive(redriver);
    });
  });

  /** The condition a scoped task write carries (infra/permissions.ts). */
  const scopedWrite = (writer: TaskWriter) => ({
    'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...TASK_WRITE_ATTRIBUTES[writer]] },
    StringEqualsIfExists: { 'dynamodb:ReturnValues': [...TASK_WRITE_RETURN_VALUES[writer]] },
    Null: { 'dynamodb:Attributes': 'false' },
  });

  /** Each statement as {actions (sorted), resources, condition}, in policy order. */
  const shape = (statements: Statement[]) => statements.map((s) => ({ actions: actionsOf(s).sort(), resources: resourcesOf(s), condition: s.Condition }));

  test('grantRead: exactly the calls of status, list, watch, logs, artifacts and instances, each on its own resource', () => {
    // Prepare
    const f = t.fleet;
    const arn = (x: string) => resolved(t, x);
    // Act
    const statements = shape(statementsOfRole(t, reader));
    // Assess: GetItem (status, logs, watch), Query on the index only (list), Query on events
    // (watch), Scan on instances + DescribeInstances (instances).
    expect(statements).toEqual([
      { actions: ['dynamodb:GetItem'], resources: [arn(f.tasksTable.tableArn)], condition: undefined },
      { actions: ['dynamodb:Query'], resources: [arn(`${f.tasksTable.tableArn}/index/${TASKS_TABLE.statusIndex.name}`)], condition: undefined },
      { actions: ['dynamodb:Query'], resources: [arn(f.eventsTable.tableArn)], condition: undefined },
      { actions: ['dynamodb:Scan'], resources: [arn(f.instancesTable.tableArn)], condition: undefined },
      { actions: ['ec2:DescribeInstances'], resources: ['*'], condition: undefined },
      // logs / watch: the task log group's streams; artifacts: GetObject and ListBucket under artifacts/ only.
      { actions: ['logs:DescribeLogStreams', 'logs:FilterLogEvents', 'logs:GetLogEvents'], resources: [arn(f.taskLogs.logGroup.logGroupArn)], condition: undefined },
      { actions: ['s3:GetObject'], resources: [arn(f.payloadBucket.arnForObjects('artifacts/*'))], condition: undefined },
      { actions: ['s3:ListBucket'], resources: [arn(f.payloadBucket.bucketArn)], condition: { StringLike: { 's3:prefix': ['artifacts/*'] } } },
    ]);
  });

  test('grantRead: nothing writes, and "*" is only for ec2:DescribeInstances (no resource-level permissions)', () => {
    // Prepare
    const statements = statementsOfRole(t, reader);
    // Assess
    for (const a of statements.flatMap(actionsOf)) expect(a).toMatch(/^(dynamodb:(GetItem|Query|Scan)|ec2:DescribeInstances|logs:(GetLogEvents|FilterLogEvents|DescribeLogStreams)|s3:(GetObject|ListBucket))$/);
    expect(statements.filter((s) => resourcesOf(s).includes('*')).flatMap(actionsOf)).toEqual(['ec2:DescribeInstances']);
  });

  test('grantRedrive: receive/release/delete on the DLQ, GetItem and a scoped UpdateItem on tasks, MESSAGE_RESENT rows, SendMessage on the task queue — nothing else', () => {
    // Prepare
    const f = t.fleet;
    const arn = (x: string) => resolved(t, x);
    // Act
    const statements = shape(statementsOfRole(t, redriver));
    // Assess
    expect(statements).toEqual([
      {
        actions: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:ReceiveMessage'],
        resources: [arn(f.deadLetterQueue.queueArn)],
        condition: undefined,
      },
      { actions: ['dynamodb:GetItem'], resources: [arn(f.tasksTable.tableArn)], condition: undefined },
      { actions: ['dynamodb:UpdateItem'], resources: [arn(f.tasksTable.tableArn)], condition: scopedWrite('resend') },
      { actions: ['dynamodb:PutItem'], resources: [arn(f.eventsTable.tableArn)], condition: undefined },
      { actions: ['sqs:SendMessage'], resources: [arn(f.queue.queueArn)], condition: undefined },
    ]);
  });

  test('grantSubmit: upload payloads, seal, create records and events, enqueue (and note it) — nothing else', () => {
    // Act
    const statements = statementsOfRole(t, submitter);
    const actions = statements.flatMap(actionsOf).sort();
    // Assess
    expect(actions).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'kms:GenerateMac',
      's3:PutObject',
      'sqs:SendMessage',
    ]);
    expect(statements.find((s) => actionsOf(s).includes('dynamodb:UpdateItem'))?.Condition).toEqual(scopedWrite('resend'));
  });

  test('grantCancel: SendCommand only of the fleet document, only on instances with the fleet tag', () => {
    // Prepare
    const statements = statementsOfRole(t, canceller);
    const sendCommand = statements.filter((s) => actionsOf(s).includes('ssm:SendCommand'));
    // Assess
    expect(sendCommand).toHaveLength(2);
    const [onDocument, onInstances] = sendCommand;
    expect(JSON.stringify(onDocument.Resource)).toContain(':document/');
    expect(JSON.stringify(onDocument.Resource)).toContain(JSON.stringify(resolved(t, t.fleet.cancelDocumentName)));
    expect(onDocument.Condition).toBeUndefined();
    expect(JSON.stringify(onInstances.Resource)).toContain(':instance/*');
    expect(onInstances.Condition).toEqual({ StringEquals: { [`ssm:resourceTag/${keys.fleet}`]: 'agent-fleet' } });
    expect(statements.flatMap(actionsOf).sort()).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'ssm:SendCommand',
      'ssm:SendCommand',
    ]);
    expect(statements.find((s) => actionsOf(s).includes('dynamodb:UpdateItem'))?.Condition).toEqual(scopedWrite('cancel'));
  });
});

describe('scaler and reconciler Lambdas', () => {
  test('the scaler runs every minute and may raise desired capacity of its own group only', () => {
    // Prepare
    const statements = statementsOfRole(fleet, fleet.fleet.scaler.role);
    // Act
    const raise = statementBySid(statements, 'GroupRaise');
    // Assess
    expect(actionsOf(raise)).toEqual(['autoscaling:SetDesiredCapacity']);
    expect(JSON.stringify(raise.Resource)).toContain(`autoScalingGroupName/${fleet.fleet.autoScalingGroupName}`);
    expect(statements.flatMap(actionsOf).sort()).toEqual([
      'autoscaling:DescribeAutoScalingGroups',
      'autoscaling:SetDesiredCapacity',
      'cloudwatch:PutMetricData',
      'dynamodb:Query',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'sqs:GetQueueAttributes',
    ]);
    fleet.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: resolved(fleet, fleet.fleet.scaler.function.functionArn) })],
    });
  });

  test('the scaler Lambda gets the fleet’s names, slots and buffer, and outlives one schedule period', () => {
    // Act
    const custom = buildFleet({ slotsPerInstance: 4, scalingBuffer: 2 });
    // Assess
    custom.template.hasResourceProperties('AWS::Lambda::Function', {
      Timeout: 90,
      Environment: {
        Variables: Match.objectLike({
          FLEET_QUEUE_URL: resolved(custom, custom.fleet.queue.queueUrl),
          FLEET_ASG_NAME: custom.fleet.autoScalingGroupName,
          FLEETD_SLOTS: '4',
          FLEET_SCALING_BUFFER: '2',
        }),
      },
    });
  });

  test('the reconciler may repair tasks, append events, read instances and resend messages — nothing else', () => {
    // Prepare
    const reconciler = fleet.fleet.reconciler;
    // Act
    const actions = statementsOfRole(fleet, reconciler.role).flatMap(actionsOf).sort();
    // Assess
    expect(actions).toEqual([
      'cloudwatch:PutMetricData',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:Scan',
      'dynamodb:UpdateItem',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'sqs:GetQueueAttributes',
      'sqs:SendMessage',
    ]);
  });
});

describe('monitoring', () => {
  test.each([
    ['dead-letter queue not empty', 'ApproximateNumberOfMessagesVisible', 1],
    ['oldest task age', 'OldestUnclaimedTaskAgeSeconds', 15 * 60],
    ['unhealthy instances', 'UnhealthyInstances', 1],
  ])('alarms on %s (%s, threshold %d)', (_what, metricName, threshold) => {
    fleet.template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metricName, Threshold: threshold });
  });

  test('the oldest-task threshold is a prop, and there is a dashboard', () => {
    // Act
    const custom = buildFleet({ oldestTaskAgeAlarmThreshold: Duration.minutes(5) });
    // Assess
    custom.template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'OldestUnclaimedTaskAgeSeconds', Threshold: 300 });
    fleet.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});
