/**
 * Every IAM permission of the fleet, in one file, so least privilege can be reviewed (and is
 * tested) in one place. Each statement has a Sid naming what it is for.
 *
 * Who                      | may do
 * ------------------------ | -----------------------------------------------------------------
 * instance role (fleetd)   | receive/delete/extend its task queue; reject to the DLQ; the
 *                          | DynamoDB actions fleetd uses on the fleet's tables; read payloads;
 *                          | read secrets under the prefix; pull from ECR; tag *itself* with
 *                          | the status/task-id keys only; act on its *own* group; assume the
 *                          | task role; write to the fleet's instance log groups; SSM core
 *                          | (the cancel document runs through the SSM agent); on ABCA's
 *                          | TaskTable, only with `abcaTaskTable`: GetItem of `status`, UpdateItem
 *                          | of the mirror's attributes (infra/abca-integration.ts)
 * task role                | nothing by default (the owner grants what agents need); assumable
 *                          | only by the instance role, with session tags
 * grantSubmit              | put payloads, create records and events, send to the queue
 * grantCancel              | request cancel on records; SendCommand of the fleet's document
 *                          | on instances carrying the fleet tag
 * grantRead                | the read-only CLI verbs (status, list, watch, logs, instances):
 *                          | get records, query the by-status index and events, scan the
 *                          | instances table, ec2:DescribeInstances
 * grantRedrive             | `fleet dlq list` / `fleet dlq redrive`: read, release and delete
 *                          | dead letters; get a letter's record; resend to the task queue
 */
import { Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { type TagKeys } from '../daemon/src/contract';
import { abcaInstanceStatements } from './abca-integration';

export interface FleetPermissionTargets {
  readonly stack: Stack;
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  readonly tasksTable: dynamodb.ITable;
  readonly eventsTable: dynamodb.ITable;
  readonly instancesTable: dynamodb.ITable;
  readonly payloadBucket: s3.IBucket;
  readonly fleetName: string;
  readonly tagKeys: TagKeys;
}

export interface InstanceRoleTargets extends FleetPermissionTargets {
  readonly autoScalingGroupArn: string;
  readonly taskRole: iam.IRole;
  readonly secretArnPrefix: string;
  readonly ecrRepositoryArns: string[];
  /** The log groups the AMI's CloudWatch agent ships fleetd's, the tasks' and boot logs to. */
  readonly instanceLogGroupArns: string[];
  /** ABCA's TaskTable, when fleetd mirrors heartbeats into it (config `abcaTaskTable`). */
  readonly abcaTaskTable?: dynamodb.ITable;
}

/** Key prefix of uploaded payloads (the contract's payloadKey: `tasks/<task_id>/payload.json`). */
export const PAYLOAD_KEY_PATTERN = 'tasks/*';

/** The DynamoDB actions fleetd performs (transactions are authorised per item action). */
export const FLEETD_TABLE_ACTIONS = {
  tasks: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem'],
  events: ['dynamodb:PutItem'],
  instances: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  /** The ABCA mirror (daemon/src/abca-mirror.ts), attribute-scoped in infra/abca-integration.ts. */
  abcaTaskTable: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
} as const;

export function instanceArnPattern(stack: Stack): string {
  return stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' });
}

function statement(sid: string, actions: readonly string[], resources: string[], conditions?: Record<string, unknown>): iam.PolicyStatement {
  return new iam.PolicyStatement({ sid, actions: [...actions], resources, conditions });
}

export function instanceRoleStatements(t: InstanceRoleTargets): iam.PolicyStatement[] {
  return [
    statement('TaskQueueConsume', ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility'], [t.queue.queueArn]),
    // Poison or foreign messages go to the DLQ with the reason attribute (DLQ_REASON_ATTRIBUTE).
    statement('DeadLetterReject', ['sqs:SendMessage'], [t.deadLetterQueue.queueArn]),
    statement('TasksTableLease', FLEETD_TABLE_ACTIONS.tasks, [t.tasksTable.tableArn]),
    statement('EventsTableAppend', FLEETD_TABLE_ACTIONS.events, [t.eventsTable.tableArn]),
    statement('InstancesTableRows', FLEETD_TABLE_ACTIONS.instances, [t.instancesTable.tableArn]),
    statement('PayloadRead', ['s3:GetObject'], [t.payloadBucket.arnForObjects(PAYLOAD_KEY_PATTERN)]),
    statement('TaskSecretsUnderPrefix', ['secretsmanager:GetSecretValue'], [`${t.secretArnPrefix}*`]),
    // GetAuthorizationToken has no resource-level permissions: AWS requires "*".
    statement('EcrAuth', ['ecr:GetAuthorizationToken'], ['*']),
    statement('EcrPull', ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'], t.ecrRepositoryArns),
    // Self-only tagging: the target must be the calling instance (aws:ARN of the resource equals
    // the ec2:SourceInstanceARN of the role session) and a fleet member; and only the status and
    // task-id keys, never the fleet tag (which scopes SendCommand) nor any other key. The Null
    // check makes the ForAllValues test fail on a request without tag keys.
    statement('TagOwnInstanceStatusOnly', ['ec2:CreateTags', 'ec2:DeleteTags'], [instanceArnPattern(t.stack)], {
      StringEquals: {
        'aws:ARN': '${ec2:SourceInstanceARN}',
        [`aws:ResourceTag/${t.tagKeys.fleet}`]: t.fleetName,
      },
      'ForAllValues:StringEquals': { 'aws:TagKeys': [t.tagKeys.status, t.tagKeys.taskId] },
      Null: { 'aws:TagKeys': 'false' },
    }),
    statement(
      'OwnGroupLifecycle',
      [
        'autoscaling:SetInstanceHealth',
        // Set at boot and never cleared: only the instance decides it is idle.
        'autoscaling:SetInstanceProtection',
        'autoscaling:TerminateInstanceInAutoScalingGroup',
        'autoscaling:RecordLifecycleActionHeartbeat',
        'autoscaling:CompleteLifecycleAction',
      ],
      [t.autoScalingGroupArn],
    ),
    // Describe calls have no resource-level permissions; fleetd reads min/desired before it
    // terminates itself (AWS refuses a decrement below MinSize).
    statement('GroupRead', ['autoscaling:DescribeAutoScalingGroups', 'autoscaling:DescribeAutoScalingInstances'], ['*']),
    statement('AssumeTaskRole', ['sts:AssumeRole', 'sts:TagSession'], [t.taskRole.roleArn]),
    // The CloudWatch agent: streams in the fleet's pre-created groups only (no CreateLogGroup).
    statement('InstanceLogs', ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'], t.instanceLogGroupArns),
    // Only with `abcaTaskTable`: ABCA's status and the mirror's attributes, nothing else (abca-integration.ts).
    ...(t.abcaTaskTable ? abcaInstanceStatements(t.abcaTaskTable) : []),
  ];
}

/** Adds the statements to the grantee's policy, as one Grant. */
export function grantStatements(grantee: iam.IGrantable, statements: iam.PolicyStatement[]): iam.Grant {
  return statements
    .map((s) => iam.Grant.addToPrincipal({ grantee, actions: s.actions, resourceArns: s.resources, conditions: s.conditions }))
    .reduce((all, g) => all.combine(g));
}

/** `fleet submit` / the client library: payload upload, record + SUBMITTED event, enqueue. */
export function submitStatements(t: FleetPermissionTargets): iam.PolicyStatement[] {
  return [
    statement('PayloadUpload', ['s3:PutObject'], [t.payloadBucket.arnForObjects(PAYLOAD_KEY_PATTERN)]),
    // GetItem: an idempotent resubmission reads the existing record; UpdateItem records
    // message_sent_at after the enqueue (what the reconciler checks for a lost message).
    statement('TaskCreate', ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'], [t.tasksTable.tableArn]),
    statement('EventAppend', ['dynamodb:PutItem'], [t.eventsTable.tableArn]),
    statement('Enqueue', ['sqs:SendMessage'], [t.queue.queueArn]),
  ];
}

/**
 * `fleet cancel`: conditional status write + event, then SendCommand of the fleet's own
 * document. SendCommand is authorised on the document and on each target instance separately,
 * so the instance half carries the fleet-tag condition (the document has no such tag).
 */
export function cancelStatements(t: FleetPermissionTargets, cancelDocumentArn: string): iam.PolicyStatement[] {
  return [
    statement('TaskCancelRequest', ['dynamodb:GetItem', 'dynamodb:UpdateItem'], [t.tasksTable.tableArn]),
    statement('EventAppend', ['dynamodb:PutItem'], [t.eventsTable.tableArn]),
    statement('SendCancelDocument', ['ssm:SendCommand'], [cancelDocumentArn]),
    statement('SendToFleetInstances', ['ssm:SendCommand'], [instanceArnPattern(t.stack)], {
      StringEquals: { [`ssm:resourceTag/${t.tagKeys.fleet}`]: t.fleetName },
    }),
  ];
}

/**
 * The read-only `fleet` verbs, exactly the calls FleetClient makes for them
 * (scripts/lib/client.ts):
 * - `status`, `logs`: GetItem on the tasks table (getTask, waitForTerminal);
 * - `list`: Query on the by-status index (listTasks; never the base table);
 * - `watch`: GetItem on the tasks table, Query on the events table (watchTask);
 * - `instances`: Scan on the instances table, ec2:DescribeInstances (listInstances).
 */
export function readStatements(t: FleetPermissionTargets, statusIndexName: string): iam.PolicyStatement[] {
  return [
    statement('TaskRead', ['dynamodb:GetItem'], [t.tasksTable.tableArn]),
    statement('TaskList', ['dynamodb:Query'], [`${t.tasksTable.tableArn}/index/${statusIndexName}`]),
    statement('EventRead', ['dynamodb:Query'], [t.eventsTable.tableArn]),
    statement('InstanceRowsRead', ['dynamodb:Scan'], [t.instancesTable.tableArn]),
    // DescribeInstances has no resource-level permissions (nor resource-tag conditions): AWS
    // requires "*". The CLI filters by the fleet tag itself.
    statement('InstancesDescribe', ['ec2:DescribeInstances'], ['*']),
  ];
}

/**
 * `fleet dlq list` / `fleet dlq redrive` (FleetClient.listDeadLetters, redriveDeadLetters):
 * receive dead letters (hidden while read), make them visible again
 * (ChangeMessageVisibilityBatch is authorised as sqs:ChangeMessageVisibility), delete the
 * redriven and obsolete ones; read the record each letter names; resend a runnable task
 * (resendMessage: SendMessage to the task queue, then UpdateItem message_sent_at).
 */
export function redriveStatements(t: FleetPermissionTargets): iam.PolicyStatement[] {
  return [
    statement('DeadLetterWork', ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage'], [t.deadLetterQueue.queueArn]),
    statement('TaskLookupAndResendMark', ['dynamodb:GetItem', 'dynamodb:UpdateItem'], [t.tasksTable.tableArn]),
    statement('Resend', ['sqs:SendMessage'], [t.queue.queueArn]),
  ];
}

/** The scaler Lambda: queue depth, the group (read; raise desired), oldest-task query, metrics. */
export function scalerStatements(
  t: FleetPermissionTargets,
  autoScalingGroupArn: string,
  statusIndexName: string,
  metricsNamespace: string,
): iam.PolicyStatement[] {
  return [
    statement('QueueDepth', ['sqs:GetQueueAttributes'], [t.queue.queueArn]),
    statement('GroupRead', ['autoscaling:DescribeAutoScalingGroups'], ['*']),
    statement('GroupRaise', ['autoscaling:SetDesiredCapacity'], [autoScalingGroupArn]),
    statement('OldestUnclaimedTask', ['dynamodb:Query'], [`${t.tasksTable.tableArn}/index/${statusIndexName}`]),
    metricsStatement(metricsNamespace),
  ];
}

/** The reconciler Lambda: exactly the calls reconcileOnce makes, plus its metrics. */
export function reconcilerStatements(t: FleetPermissionTargets, statusIndexName: string, metricsNamespace: string): iam.PolicyStatement[] {
  return [
    statement('TasksRepair', ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:UpdateItem'], [
      t.tasksTable.tableArn,
      `${t.tasksTable.tableArn}/index/${statusIndexName}`,
    ]),
    statement('EventAppend', ['dynamodb:PutItem'], [t.eventsTable.tableArn]),
    statement('InstancesRead', ['dynamodb:Scan'], [t.instancesTable.tableArn]),
    statement('Resend', ['sqs:SendMessage', 'sqs:GetQueueAttributes'], [t.queue.queueArn]),
    metricsStatement(metricsNamespace),
  ];
}

/** PutMetricData has no resource-level permissions; the namespace condition scopes it. */
function metricsStatement(namespace: string): iam.PolicyStatement {
  return statement('FleetMetrics', ['cloudwatch:PutMetricData'], ['*'], { StringEquals: { 'cloudwatch:namespace': namespace } });
}
