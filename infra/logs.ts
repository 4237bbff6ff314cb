/**
 * Where task output leaves the instance (docs/logs.md): the fleet's task log group, into which
 * fleetd ships each attempt's output as the stream `<task_id>/<attempt>` (daemon/src/log-shipper.ts),
 * and the IAM statements for it and for the artifacts fleetd uploads to the payload bucket under
 * `artifacts/` (daemon/src/artifacts.ts).
 *
 * The AMI's CloudWatch agent no longer collects task output (it watched a path fleetd never
 * wrote); it still ships fleetd's own log and the system log.
 */
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ARTIFACTS_KEY_PREFIX } from '../daemon/src/contract';

/** What fleetd does in the task log group: its streams, its events. Never CreateLogGroup. */
export const TASK_LOG_SHIP_ACTIONS = ['logs:CreateLogStream', 'logs:PutLogEvents'] as const;
/** What `fleet logs` / `fleet watch` / the ABCA adapter read (scripts/lib/task-logs.ts). */
export const TASK_LOG_READ_ACTIONS = ['logs:GetLogEvents', 'logs:FilterLogEvents', 'logs:DescribeLogStreams'] as const;

export interface FleetTaskLogsProps {
  /** The group's name (fleetd's config `logGroup`). */
  readonly logGroupName: string;
  /**
   * How long task output is kept.
   *
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly retention?: logs.RetentionDays;
  /**
   * A KMS key to encrypt the group with. Its key policy must let CloudWatch Logs use it
   * (`logs.<region>.amazonaws.com`); for a key created in this app that is granted here.
   *
   * @default CloudWatch Logs' own encryption
   */
  readonly encryptionKey?: kms.IKey;
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/** The fleet's task log group: one stream per task attempt. */
export class FleetTaskLogs extends Construct {
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: FleetTaskLogsProps) {
    super(scope, id);
    const key = props.encryptionKey;
    if (key) key.grantEncryptDecrypt(new iam.ServicePrincipal(`logs.${Stack.of(this).region}.amazonaws.com`));
    this.logGroup = new logs.LogGroup(this, 'Group', {
      logGroupName: props.logGroupName,
      retention: props.retention ?? logs.RetentionDays.THREE_MONTHS,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      ...(key ? { encryptionKey: key } : {}),
    });
  }

  /** fleetd's side: create streams and put events in this group only (the instance role gets it). */
  grantShip(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: [...TASK_LOG_SHIP_ACTIONS], resourceArns: [this.logGroup.logGroupArn] });
  }

  /** A reader's side: the streams of this group (`fleet logs`, `fleet watch`). */
  grantRead(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: [...TASK_LOG_READ_ACTIONS], resourceArns: [this.logGroup.logGroupArn] });
  }

  /** Incoming events per minute (a flooding fleet, a cost signal). */
  metricIncomingBytes(props?: Parameters<logs.LogGroup['metric']>[1]) {
    return this.logGroup.metric('IncomingBytes', props);
  }
}

/** `artifacts/*` in the payload bucket: the key pattern of every artifact. */
export const ARTIFACTS_KEY_PATTERN = `${ARTIFACTS_KEY_PREFIX}*`;

/** The instance role's statements: ship task output; upload artifacts (PutObject under artifacts/ only). */
export function taskOutputShipStatements(taskLogGroupArn: string, payloadBucket: s3.IBucket): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({ sid: 'TaskLogShip', actions: [...TASK_LOG_SHIP_ACTIONS], resources: [taskLogGroupArn] }),
    new iam.PolicyStatement({ sid: 'ArtifactUpload', actions: ['s3:PutObject'], resources: [payloadBucket.arnForObjects(ARTIFACTS_KEY_PATTERN)] }),
  ];
}

/** grantRead's share: read the task log streams, list and get artifacts (ListBucket only under artifacts/). */
export function taskOutputReadStatements(taskLogGroupArn: string, payloadBucket: s3.IBucket): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({ sid: 'TaskLogRead', actions: [...TASK_LOG_READ_ACTIONS], resources: [taskLogGroupArn] }),
    new iam.PolicyStatement({ sid: 'ArtifactRead', actions: ['s3:GetObject'], resources: [payloadBucket.arnForObjects(ARTIFACTS_KEY_PATTERN)] }),
    new iam.PolicyStatement({ sid: 'ArtifactList', actions: ['s3:ListBucket'], resources: [payloadBucket.bucketArn], conditions: { StringLike: { 's3:prefix': [ARTIFACTS_KEY_PATTERN] } } }),
  ];
}
