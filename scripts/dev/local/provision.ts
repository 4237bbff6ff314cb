/**
 * Provisions one fleet's resources on the local AWS stand-in (moto), mirroring what the CDK app
 * creates: task queue + dead-letter queue with a redrive policy, tasks / events / instances
 * tables (with the by-status index and TTL), payload bucket, the task log group, a demo secret, the SSM cancel
 * document, and an Auto Scaling group whose instances local daemons act as. Idempotent: an
 * existing resource is kept. Tests call it with a unique fleet name for isolation.
 */
import { CreateAliasCommand, CreateKeyCommand, DescribeKeyCommand, ListAliasesCommand } from '@aws-sdk/client-kms';
import { randomBytes } from 'node:crypto';
import {
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  PutLifecycleHookCommand,
} from '@aws-sdk/client-auto-scaling';
import { CreateTableCommand, DescribeTableCommand, UpdateTableCommand, UpdateTimeToLiveCommand, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { CreateLaunchTemplateCommand, DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { CloudWatchLogsClient, CreateLogGroupCommand } from '@aws-sdk/client-cloudwatch-logs';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateSecretCommand, DescribeSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { CreateDocumentCommand } from '@aws-sdk/client-ssm';
import type { AwsClients } from '../../../daemon/src/aws';
import { awsErrorName } from '../../../daemon/src/aws';
import {
  DEFAULT_TAG_PREFIX,
  DEFAULT_TIMINGS,
  EVENTS_TABLE,
  FLEET_ENV,
  INSTANCES_TABLE,
  INTAKE_QUEUE_DEFAULTS,
  QUEUE_DEFAULTS,
  TASKS_TABLE,
  TERMINATION_HOOK_NAME,
  cancelDocumentContent,
  defaultTaskLogGroupName,
  tagKeys,
  type FleetdConfigFileInput,
} from '../../../daemon/src/contract';
import { waitUntil } from './processes';

export interface FleetResources {
  readonly fleetName: string;
  readonly region: string;
  readonly queueUrl: string;
  readonly dlqUrl: string;
  readonly tasksTable: string;
  readonly eventsTable: string;
  readonly instancesTable: string;
  readonly payloadBucket: string;
  readonly cancelDocument: string;
  readonly asgName: string;
  readonly tagPrefix: string;
  readonly secretArnPrefix: string;
  /** The fleet's KMS HMAC key (ARN) that seals specs (docs/security.md). */
  readonly sealKeyId: string;
  readonly demoSecretArn: string;
  /** The secret's value, for tests that prove it never leaks. */
  readonly demoSecretValue: string;
  /** The group's instances: each local daemon acts as one of them. */
  readonly instanceIds: string[];
  /** The intake queue (contract/intake.ts) and its dead-letter queue. */
  readonly intakeQueueUrl: string;
  readonly intakeDlqUrl: string;
  /** The tasks table's stream (NEW_AND_OLD_IMAGES): task events and Step Functions callbacks. */
  readonly tasksStreamArn: string;
  /** The task log group (CloudWatch Logs): fleetd ships each attempt's output there (docs/logs.md). */
  readonly logGroup: string;
}

export interface ProvisionOptions {
  /** Instances the Auto Scaling group starts with. @default 2 */
  readonly instances?: number;
  /** Group MinSize. @default 1 */
  readonly minSize?: number;
  /** @default 10 */
  readonly maxSize?: number;
  /** Queue visibility timeout = lease. @default DEFAULT_TIMINGS.leaseSeconds */
  readonly visibilitySeconds?: number;
  /** Dead-letter after this many receives. @default QUEUE_DEFAULTS.maxReceiveCount */
  readonly maxReceiveCount?: number;
}

const FLEET_NAME = /^[a-z][a-z0-9-]{1,30}$/;

async function ignoreExists<T>(what: string, create: () => Promise<T>, existsNames: string[]): Promise<T | undefined> {
  try {
    return await create();
  } catch (err) {
    if (existsNames.includes(awsErrorName(err) ?? '')) return undefined;
    throw new Error(`provisioning ${what} failed: ${(err as Error).message}`, { cause: err });
  }
}

async function ensureTable(clients: AwsClients, input: CreateTableCommandInput, ttlAttribute: string): Promise<void> {
  const ddb = clients.ddb;
  await ignoreExists(`table ${input.TableName}`, () => ddb.send(new CreateTableCommand(input)), ['ResourceInUseException']);
  await waitUntil(`table ${input.TableName} ACTIVE`, async () => {
    const d = await ddb.send(new DescribeTableCommand({ TableName: input.TableName }));
    return d.Table?.TableStatus === 'ACTIVE';
  }, 30_000);
  await ddb.send(new UpdateTimeToLiveCommand({ TableName: input.TableName, TimeToLiveSpecification: { Enabled: true, AttributeName: ttlAttribute } })).catch((err) => {
    // Enabling TTL twice is refused by DynamoDB; that is the idempotent case.
    if (!/already enabled/i.test((err as Error).message)) throw err;
  });
}

/** The tasks table's NEW_AND_OLD_IMAGES stream (enabled on a table made before streams were); returns its ARN. */
async function ensureTasksStream(clients: AwsClients, tableName: string): Promise<string> {
  const described = await clients.ddb.send(new DescribeTableCommand({ TableName: tableName }));
  if (described.Table?.StreamSpecification?.StreamEnabled && described.Table.LatestStreamArn) return described.Table.LatestStreamArn;
  const updated = await clients.ddb.send(new UpdateTableCommand({ TableName: tableName, StreamSpecification: TASKS_STREAM }));
  const arn = updated.TableDescription?.LatestStreamArn ?? (await clients.ddb.send(new DescribeTableCommand({ TableName: tableName }))).Table?.LatestStreamArn;
  if (!arn) throw new Error(`table ${tableName}: the stream was enabled but DynamoDB names no stream ARN`);
  return arn;
}

const TASKS_STREAM = { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' } as const;

/** The fleet's HMAC key, found by its alias (alias/<fleet>-seal) or made once; returns its ARN. */
async function ensureSealKey(clients: AwsClients, fleetName: string): Promise<string> {
  const alias = `alias/${fleetName}-seal`;
  const aliases = await clients.kms.send(new ListAliasesCommand({}));
  let keyId = aliases.Aliases?.find((a) => a.AliasName === alias)?.TargetKeyId;
  if (!keyId) {
    const key = await clients.kms.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC', Description: `agent-fleet ${fleetName}: seals task specs` }));
    keyId = key.KeyMetadata!.KeyId!;
    await clients.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
  }
  const described = await clients.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
  return described.KeyMetadata!.Arn!;
}

export async function provisionFleet(clients: AwsClients, fleetName: string, options: ProvisionOptions = {}): Promise<FleetResources> {
  if (!FLEET_NAME.test(fleetName)) {
    throw new Error(`fleet name: got ${JSON.stringify(fleetName)}, expected ${FLEET_NAME} (lower-case, starts with a letter)`);
  }
  const region = clients.region;
  const tagPrefix = DEFAULT_TAG_PREFIX;

  // Queues: the dead-letter queue first, then the task queue that redrives into it.
  const dlq = await clients.sqs.send(new CreateQueueCommand({
    QueueName: `${fleetName}-tasks-dlq`,
    Attributes: { MessageRetentionPeriod: String(QUEUE_DEFAULTS.dlqRetentionSeconds) },
  }));
  const dlqArn = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
  const queue = await clients.sqs.send(new CreateQueueCommand({
    QueueName: `${fleetName}-tasks`,
    Attributes: {
      VisibilityTimeout: String(options.visibilitySeconds ?? DEFAULT_TIMINGS.leaseSeconds),
      MessageRetentionPeriod: String(QUEUE_DEFAULTS.retentionSeconds),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: options.maxReceiveCount ?? QUEUE_DEFAULTS.maxReceiveCount }),
    },
  }));

  const tasksTable = `${fleetName}-tasks`;
  const eventsTable = `${fleetName}-events`;
  const instancesTable = `${fleetName}-instances`;
  const si = TASKS_TABLE.statusIndex;
  await Promise.all([
    ensureTable(clients, {
      TableName: tasksTable,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: TASKS_TABLE.partitionKey, AttributeType: 'S' },
        { AttributeName: si.partitionKey, AttributeType: 'S' },
        { AttributeName: si.sortKey, AttributeType: 'N' },
      ],
      KeySchema: [{ AttributeName: TASKS_TABLE.partitionKey, KeyType: 'HASH' }],
      StreamSpecification: TASKS_STREAM,
      GlobalSecondaryIndexes: [{
        IndexName: si.name,
        KeySchema: [{ AttributeName: si.partitionKey, KeyType: 'HASH' }, { AttributeName: si.sortKey, KeyType: 'RANGE' }],
        Projection: { ProjectionType: 'ALL' },
      }],
    }, TASKS_TABLE.ttlAttribute),
    ensureTable(clients, {
      TableName: eventsTable,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: EVENTS_TABLE.partitionKey, AttributeType: 'S' },
        { AttributeName: EVENTS_TABLE.sortKey, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: EVENTS_TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: EVENTS_TABLE.sortKey, KeyType: 'RANGE' },
      ],
    }, EVENTS_TABLE.ttlAttribute),
    ensureTable(clients, {
      TableName: instancesTable,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: INSTANCES_TABLE.partitionKey, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: INSTANCES_TABLE.partitionKey, KeyType: 'HASH' }],
    }, INSTANCES_TABLE.ttlAttribute),
  ]);

  const tasksStreamArn = await ensureTasksStream(clients, tasksTable);

  // The intake queue (any SQS producer submits through it) and its dead-letter queue.
  const intakeDlq = await clients.sqs.send(new CreateQueueCommand({
    QueueName: `${fleetName}-intake-dlq`,
    Attributes: { MessageRetentionPeriod: String(QUEUE_DEFAULTS.dlqRetentionSeconds) },
  }));
  const intakeDlqArn = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: intakeDlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
  const intakeQueue = await clients.sqs.send(new CreateQueueCommand({
    QueueName: `${fleetName}-intake`,
    Attributes: {
      VisibilityTimeout: String(INTAKE_QUEUE_DEFAULTS.localVisibilitySeconds),
      MessageRetentionPeriod: String(QUEUE_DEFAULTS.retentionSeconds),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: intakeDlqArn, maxReceiveCount: INTAKE_QUEUE_DEFAULTS.maxReceiveCount }),
    },
  }));

  const payloadBucket = `${fleetName}-payloads`;
  await ignoreExists(`bucket ${payloadBucket}`, () => clients.s3.send(new CreateBucketCommand({ Bucket: payloadBucket })), ['BucketAlreadyOwnedByYou', 'BucketAlreadyExists']);

  // A demo secret under the fleet's allowed prefix; its value must never reach a log.
  const secretName = `${fleetName}/demo-token`;
  const demoSecretValue = `demo-secret-${randomBytes(12).toString('hex')}`;
  await ignoreExists(`secret ${secretName}`, () => clients.secrets.send(new CreateSecretCommand({ Name: secretName, SecretString: demoSecretValue })), ['ResourceExistsException']);
  const secret = await clients.secrets.send(new DescribeSecretCommand({ SecretId: secretName }));
  const demoSecretArn = secret.ARN!;
  const secretArnPrefix = demoSecretArn.slice(0, demoSecretArn.indexOf(':secret:') + ':secret:'.length) + `${fleetName}/`;
  // The value we generated is only the real one when this call created the secret.
  const actualValue = (await clients.secrets.send(new GetSecretValueCommand({ SecretId: demoSecretArn }))).SecretString ?? demoSecretValue;

  const sealKeyId = await ensureSealKey(clients, fleetName);

  // The task log group, as infra/logs.ts makes it (`<prefix>/tasks`, here one prefix per fleet).
  const logGroup = defaultTaskLogGroupName(`/agent-fleet/${fleetName}`);
  const cwl = new CloudWatchLogsClient({ region });
  await ignoreExists(`log group ${logGroup}`, () => cwl.send(new CreateLogGroupCommand({ logGroupName: logGroup })), ['ResourceAlreadyExistsException']);
  cwl.destroy();

  const cancelDocument = `${fleetName}-cancel`;
  await ignoreExists(`document ${cancelDocument}`, () => clients.ssm.send(new CreateDocumentCommand({
    Name: cancelDocument,
    DocumentType: 'Command',
    DocumentFormat: 'JSON',
    Content: JSON.stringify(cancelDocumentContent()),
  })), ['DocumentAlreadyExists']);

  // Auto Scaling group: the local daemons act as its instances.
  const images = await clients.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
  const imageId = images.Images?.find((i) => i.ImageId)?.ImageId;
  if (!imageId) throw new Error('moto offers no AMI to launch the local group from');
  const launchTemplate = `${fleetName}-lt`;
  await ignoreExists(`launch template ${launchTemplate}`, () => clients.ec2.send(new CreateLaunchTemplateCommand({
    LaunchTemplateName: launchTemplate,
    LaunchTemplateData: { ImageId: imageId, InstanceType: 't3.medium', MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 } },
  })), ['InvalidLaunchTemplateName.AlreadyExistsException']);
  const asgName = `${fleetName}-asg`;
  const keys = tagKeys(tagPrefix);
  await ignoreExists(`auto scaling group ${asgName}`, () => clients.autoscaling.send(new CreateAutoScalingGroupCommand({
    AutoScalingGroupName: asgName,
    LaunchTemplate: { LaunchTemplateName: launchTemplate, Version: '$Latest' },
    MinSize: options.minSize ?? 1,
    MaxSize: options.maxSize ?? 10,
    DesiredCapacity: options.instances ?? 2,
    AvailabilityZones: [`${region}a`],
    NewInstancesProtectedFromScaleIn: true,
    Tags: [{ Key: keys.fleet, Value: fleetName, PropagateAtLaunch: true }],
  })), ['AlreadyExists', 'AlreadyExistsFault']);
  await ignoreExists('lifecycle hook', () => clients.autoscaling.send(new PutLifecycleHookCommand({
    AutoScalingGroupName: asgName,
    LifecycleHookName: TERMINATION_HOOK_NAME,
    LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
    HeartbeatTimeout: 900,
    DefaultResult: 'CONTINUE',
  })), []);
  const group = await clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [asgName] }));
  const instanceIds = (group.AutoScalingGroups?.[0]?.Instances ?? []).map((i) => i.InstanceId!).sort();

  return {
    fleetName,
    region,
    queueUrl: queue.QueueUrl!,
    dlqUrl: dlq.QueueUrl!,
    tasksTable,
    eventsTable,
    instancesTable,
    payloadBucket,
    cancelDocument,
    asgName,
    tagPrefix,
    secretArnPrefix,
    sealKeyId,
    demoSecretArn,
    demoSecretValue: actualValue,
    instanceIds,
    intakeQueueUrl: intakeQueue.QueueUrl!,
    intakeDlqUrl: intakeDlq.QueueUrl!,
    tasksStreamArn,
    logGroup,
  };
}

/** The fleet's resource names as the FLEET_* environment variables fleetd and the CLI read. */
export function fleetEnvironment(r: FleetResources): Record<string, string> {
  return {
    [FLEET_ENV.fleetName]: r.fleetName,
    [FLEET_ENV.queueUrl]: r.queueUrl,
    [FLEET_ENV.dlqUrl]: r.dlqUrl,
    [FLEET_ENV.tasksTable]: r.tasksTable,
    [FLEET_ENV.eventsTable]: r.eventsTable,
    [FLEET_ENV.instancesTable]: r.instancesTable,
    [FLEET_ENV.payloadBucket]: r.payloadBucket,
    [FLEET_ENV.cancelDocument]: r.cancelDocument,
    [FLEET_ENV.asgName]: r.asgName,
    [FLEET_ENV.tagPrefix]: r.tagPrefix,
    [FLEET_ENV.sealKeyId]: r.sealKeyId,
    // Absent from a stack provisioned before task logs were shipped.
    ...(r.logGroup ? { [FLEET_ENV.logGroup]: r.logGroup } : {}),
    // Absent from a stack provisioned before the intake existed.
    ...(r.intakeQueueUrl ? { [FLEET_ENV.intakeQueueUrl]: r.intakeQueueUrl, [FLEET_ENV.intakeDlqUrl]: r.intakeDlqUrl } : {}),
  };
}

/** fleetd's config file for a local daemon of this fleet. */
export function fleetdConfigFor(r: FleetResources, extra: Partial<FleetdConfigFileInput> = {}): FleetdConfigFileInput {
  return {
    fleetName: r.fleetName,
    region: r.region,
    queueUrl: r.queueUrl,
    dlqUrl: r.dlqUrl,
    tasksTable: r.tasksTable,
    eventsTable: r.eventsTable,
    instancesTable: r.instancesTable,
    payloadBucket: r.payloadBucket,
    cancelDocument: r.cancelDocument,
    asgName: r.asgName,
    tagPrefix: r.tagPrefix,
    slots: 1,
    allowedRegistries: ['local'],
    secretArnPrefix: r.secretArnPrefix,
    sealKeyId: r.sealKeyId,
    logGroup: r.logGroup,
    ...extra,
  };
}
