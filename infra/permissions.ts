/**
 * Every IAM permission of the fleet, in one file, so least privilege can be reviewed (and is
 * tested) in one place. Each statement has a Sid naming what it is for.
 *
 * Who                      | may do
 * ------------------------ | -----------------------------------------------------------------
 * instance role (fleetd)   | receive/delete/extend its task queue; reject to the DLQ; the
 *                          | DynamoDB actions fleetd uses on the fleet's tables (task writes
 *                          | limited to TASK_WRITE_ATTRIBUTES.instance); verify seals
 *                          | (kms:VerifyMac); read payloads; read secrets under the prefix;
 *                          | pull from ECR; tag *itself* with the status/task-id keys only; act
 *                          | on its *own* group; assume the task role; write to the fleet's
 *                          | instance log groups; create streams and put events in the task
 *                          | log group; PutObject under artifacts/ (infra/logs.ts); the SSM Agent's minimum for Run Command and
 *                          | Session Manager; on ABCA's TaskTable, only with `abcaTaskTable`:
 *                          | GetItem of `status`, UpdateItem of the mirror's attributes
 *                          | (infra/abca-integration.ts)
 * task role                | nothing by default (the owner grants what agents need); assumable
 *                          | only by the instance role, with session tags
 * grantSubmit              | put payloads, create records and events, seal specs
 *                          | (kms:GenerateMac), send to the queue
 * grantSeal                | kms:GenerateMac only (a component that submits for a producer)
 * grantCancel              | request cancel on records (TASK_WRITE_ATTRIBUTES.cancel);
 *                          | SendCommand of the fleet's document on instances with the fleet tag
 * grantRead                | the read-only CLI verbs (status, list, watch, logs, instances):
 *                          | get records, query the by-status index and events, scan the
 *                          | instances table, ec2:DescribeInstances; read the task log group
 *                          | (GetLogEvents, FilterLogEvents, DescribeLogStreams); GetObject on
 *                          | artifacts/*, ListBucket under the artifacts/ prefix
 * grantRedrive             | `fleet dlq list` / `fleet dlq redrive`: read, release and delete
 *                          | dead letters; get a letter's record; resend to the task queue
 *                          | (TASK_WRITE_ATTRIBUTES.resend) and append MESSAGE_RESENT
 *
 * Sealed specs and attribute-scoped writes (docs/security.md): only grantSubmit/grantSeal may
 * make a seal. Every other principal that updates a task record does so under a
 * `dynamodb:Attributes` allow-list that leaves out what decides what runs (`spec`, `seal`,
 * `max_attempts`) and has no PutItem on the tasks table, so it cannot write a record whole.
 */
import { Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { TASKS_TABLE, type TagKeys } from '../daemon/src/contract';
import { abcaInstanceStatements, abcaMirrorWriteStatement } from './abca-integration';
import { taskOutputReadStatements, taskOutputShipStatements } from './logs';

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
  /** The fleet's HMAC key that seals specs (GenerateMac: submitters; VerifyMac: the instance role). */
  readonly sealKey: kms.IKey;
  /** The task log group's ARN (infra/logs.ts): fleetd ships to it, readers read it. Absent: not part of these grants. */
  readonly taskLogGroupArn?: string;
}

export interface InstanceRoleTargets extends FleetPermissionTargets {
  readonly autoScalingGroupArn: string;
  readonly taskRole: iam.IRole;
  readonly secretArnPrefix: string;
  readonly ecrRepositoryArns: string[];
  /** The log groups the AMI's CloudWatch agent ships fleetd's and the system's logs to. */
  readonly instanceLogGroupArns: string[];
  /** The task log group (infra/logs.ts): each attempt's output, shipped by fleetd itself. */
  readonly taskLogGroupArn: string;
  /** ABCA's TaskTable, when fleetd mirrors heartbeats into it (config `abcaTaskTable`). */
  readonly abcaTaskTable?: dynamodb.ITable;
}

/** Key prefix of uploaded payloads (the contract's payloadKey: `tasks/<task_id>/payload.json`). */
export const PAYLOAD_KEY_PATTERN = 'tasks/*';

/** The DynamoDB actions fleetd performs (transactions are authorised per item action). */
export const FLEETD_TABLE_ACTIONS = {
  /** GetItem unconditioned; UpdateItem only under TASK_WRITE_ATTRIBUTES.instance. Never PutItem. */
  tasks: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
  events: ['dynamodb:PutItem'],
  instances: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  /** The ABCA mirror (daemon/src/abca-mirror.ts), attribute-scoped in infra/abca-integration.ts. */
  abcaTaskTable: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
} as const;

/**
 * The task-record attributes each non-submitting writer may name in an UpdateItem (SET,
 * REMOVE, ADD *and* its condition: DynamoDB's `dynamodb:Attributes` covers every attribute a
 * request reads, writes or compares, plus the table's key, which must be listed). Each list is
 * exactly what daemon/src/store/task-store.ts writes and compares for that writer;
 * infra/test/write-attributes.test.ts records the store's commands and fails when the store
 * names an attribute a list lacks. None holds `spec`, `seal`, `max_attempts`,
 * `idempotency_key` or `created_at`: what decides what runs is written once, by a submitter.
 */
export const TASK_WRITE_ATTRIBUTES = {
  /**
   * fleetd: claim, markRunning, heartbeat, finish, release, requestCancel, endUnleased.
   * `attempt` and `attempts_left` are the fencing token and the budget (not sealed: the cap
   * `max_attempts` is); the terminal fields are the outcome fleetd reports.
   */
  instance: [
    TASKS_TABLE.partitionKey,
    'status',
    'instance_id',
    'attempt',
    'attempts_left',
    'takeovers',
    'lease_expires_at',
    'claimed_at',
    'started_at',
    'heartbeat_at',
    'container_id',
    'cancel_requested_at',
    'message_sent_at',
    'updated_at',
    'finished_at',
    'expires_at',
    'reason',
    'exit_code',
    'oom_killed',
    'duration_ms',
    'result',
    'result_error',
    'log_tail',
    'artifacts',
    'artifacts_error',
    // The attempt's dispatch timings (contract/record.ts DispatchTimingsSchema), carried by the
    // first heartbeat or the terminal write.
    'dispatch',
  ],
  /** `fleet cancel` (FleetClient.cancelTask → TaskStore.transitionSeen). */
  cancel: [TASKS_TABLE.partitionKey, 'status', 'attempt', 'cancel_requested_at', 'reason', 'updated_at', 'finished_at', 'expires_at'],
  /** TaskStore.resend: a submit's first send, `fleet dlq redrive`, a resubmit (records message_sent_at, fenced). */
  resend: [TASKS_TABLE.partitionKey, 'status', 'attempt', 'lease_expires_at', 'message_sent_at', 'updated_at'],
  /** The reconciler: TaskStore.endUnleased (fail, cancel) and resend (with requeue). */
  reconciler: [TASKS_TABLE.partitionKey, 'status', 'attempt', 'lease_expires_at', 'message_sent_at', 'reason', 'updated_at', 'finished_at', 'expires_at'],
} as const satisfies Record<string, readonly string[]>;

export type TaskWriter = keyof typeof TASK_WRITE_ATTRIBUTES;

/** Attributes no writer but a submitter (PutItem of a whole, sealed record) may ever write. */
export const SUBMITTER_ONLY_ATTRIBUTES = ['spec', 'seal', 'max_attempts', 'idempotency_key', 'created_at'] as const;

/**
 * `ReturnValues` each writer may ask for. The allow-list alone would let ALL_OLD / ALL_NEW read
 * attributes outside it; fleetd's heartbeat asks for ALL_NEW (a cancel request is read on the
 * heartbeat that renews), which gives it nothing it cannot GetItem anyway (it must read the spec
 * to run the task).
 */
export const TASK_WRITE_RETURN_VALUES: Record<TaskWriter, readonly string[]> = {
  instance: ['NONE', 'ALL_NEW'],
  cancel: ['NONE'],
  resend: ['NONE'],
  reconciler: ['NONE'],
};

/**
 * UpdateItem on the tasks table, limited to `writer`'s attributes. The Null test makes a
 * request without the key refused rather than waved through (ForAllValues is true on an empty
 * set); an UpdateItem always names at least one attribute.
 */
function taskUpdateStatement(sid: string, tasksTable: dynamodb.ITable, writer: TaskWriter): iam.PolicyStatement {
  return statement(sid, ['dynamodb:UpdateItem'], [tasksTable.tableArn], {
    'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...TASK_WRITE_ATTRIBUTES[writer]] },
    StringEqualsIfExists: { 'dynamodb:ReturnValues': [...TASK_WRITE_RETURN_VALUES[writer]] },
    Null: { 'dynamodb:Attributes': 'false' },
  });
}

/**
 * The SSM Agent's minimum for Run Command (the fleet's cancel document) and Session Manager
 * (an operator's shell), in place of AmazonSSMManagedInstanceCore, which also grants
 * ssm:GetParameter(s) on every parameter of the account, documents, inventory, patching and
 * compliance writes. Registration and the message channels have no resource-level
 * permissions: AWS requires "*". ec2messages is the agent's Run Command channel; ssmmessages
 * its control channel (Session Manager, and Run Command on recent agents).
 */
export const SSM_AGENT_ACTIONS = {
  registration: ['ssm:UpdateInstanceInformation', 'ssm:ListInstanceAssociations'],
  runCommand: [
    'ec2messages:AcknowledgeMessage',
    'ec2messages:DeleteMessage',
    'ec2messages:FailMessage',
    'ec2messages:GetEndpoint',
    'ec2messages:GetMessages',
    'ec2messages:SendReply',
  ],
  channels: ['ssmmessages:CreateControlChannel', 'ssmmessages:CreateDataChannel', 'ssmmessages:OpenControlChannel', 'ssmmessages:OpenDataChannel'],
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
    statement('TasksTableRead', ['dynamodb:GetItem'], [t.tasksTable.tableArn]),
    taskUpdateStatement('TasksTableLease', t.tasksTable, 'instance'),
    statement('EventsTableAppend', FLEETD_TABLE_ACTIONS.events, [t.eventsTable.tableArn]),
    statement('InstancesTableRows', FLEETD_TABLE_ACTIONS.instances, [t.instancesTable.tableArn]),
    // Sealed specs: fleetd verifies every record's seal before it runs anything; it can never make one.
    statement('SealVerify', ['kms:VerifyMac'], [t.sealKey.keyArn]),
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
    // Task output (docs/logs.md): streams in the task log group only; artifacts under artifacts/ only.
    ...taskOutputShipStatements(t.taskLogGroupArn, t.payloadBucket),
    statement('SsmAgentRegistration', SSM_AGENT_ACTIONS.registration, ['*']),
    statement('SsmAgentRunCommand', SSM_AGENT_ACTIONS.runCommand, ['*']),
    statement('SsmAgentChannels', SSM_AGENT_ACTIONS.channels, ['*']),
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

/**
 * `fleet submit` / the client library: payload upload, sealed record + SUBMITTED event,
 * enqueue. A submitter decides what runs: PutItem writes the whole record (spec, seal, cap).
 */
export function submitStatements(t: FleetPermissionTargets): iam.PolicyStatement[] {
  return [
    statement('PayloadUpload', ['s3:PutObject'], [t.payloadBucket.arnForObjects(PAYLOAD_KEY_PATTERN)]),
    ...sealStatements(t),
    statement('TaskCreate', ['dynamodb:PutItem'], [t.tasksTable.tableArn]),
    // An idempotent resubmission reads the existing record.
    statement('TaskLookup', ['dynamodb:GetItem'], [t.tasksTable.tableArn]),
    // Records message_sent_at around the enqueue (what the reconciler checks for a lost message).
    taskUpdateStatement('TaskSendMark', t.tasksTable, 'resend'),
    statement('EventAppend', ['dynamodb:PutItem'], [t.eventsTable.tableArn]),
    statement('Enqueue', ['sqs:SendMessage'], [t.queue.queueArn]),
  ];
}

/** Making a seal (docs/security.md): what grantSubmit includes, alone for a component that submits on a producer's behalf. */
export function sealStatements(t: Pick<FleetPermissionTargets, 'sealKey'>): iam.PolicyStatement[] {
  return [statement('SpecSeal', ['kms:GenerateMac'], [t.sealKey.keyArn])];
}

/**
 * `fleet cancel`: conditional status write + event, then SendCommand of the fleet's own
 * document. SendCommand is authorised on the document and on each target instance separately,
 * so the instance half carries the fleet-tag condition (the document has no such tag).
 */
export function cancelStatements(t: FleetPermissionTargets, cancelDocumentArn: string): iam.PolicyStatement[] {
  return [
    statement('TaskCancelRead', ['dynamodb:GetItem'], [t.tasksTable.tableArn]),
    taskUpdateStatement('TaskCancelRequest', t.tasksTable, 'cancel'),
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
    // `logs`, `watch`, `artifacts`: the attempt's stream, the artifacts (docs/logs.md).
    ...(t.taskLogGroupArn ? taskOutputReadStatements(t.taskLogGroupArn, t.payloadBucket) : []),
  ];
}

/**
 * `fleet dlq list` / `fleet dlq redrive` (FleetClient.listDeadLetters, redriveDeadLetters):
 * receive dead letters (hidden while read), make them visible again
 * (ChangeMessageVisibilityBatch is authorised as sqs:ChangeMessageVisibility), delete the
 * redriven and obsolete ones; read the record each letter names; resend a runnable task
 * (resendMessage → TaskStore.resend: UpdateItem message_sent_at, SendMessage to the task queue,
 * then the MESSAGE_RESENT event row).
 */
export function redriveStatements(t: FleetPermissionTargets): iam.PolicyStatement[] {
  return [
    statement('DeadLetterWork', ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage'], [t.deadLetterQueue.queueArn]),
    statement('TaskLookup', ['dynamodb:GetItem'], [t.tasksTable.tableArn]),
    taskUpdateStatement('TaskResendMark', t.tasksTable, 'resend'),
    statement('EventAppend', ['dynamodb:PutItem'], [t.eventsTable.tableArn]),
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

/** The reconciler Lambda: exactly the calls reconcileOnce makes, plus its metrics; `abcaTaskTable`: ABCA's, when the fleet is ABCA's compute. */
export function reconcilerStatements(t: FleetPermissionTargets, statusIndexName: string, metricsNamespace: string, abcaTaskTable?: dynamodb.ITable): iam.PolicyStatement[] {
  return [
    statement('TasksRead', ['dynamodb:Query', 'dynamodb:GetItem'], [t.tasksTable.tableArn, `${t.tasksTable.tableArn}/index/${statusIndexName}`]),
    taskUpdateStatement('TasksRepair', t.tasksTable, 'reconciler'),
    statement('EventAppend', ['dynamodb:PutItem'], [t.eventsTable.tableArn]),
    statement('InstancesRead', ['dynamodb:Scan'], [t.instancesTable.tableArn]),
    statement('Resend', ['sqs:SendMessage', 'sqs:GetQueueAttributes'], [t.queue.queueArn]),
    metricsStatement(metricsNamespace),
    // Only with `abcaTaskTable`: the ABCA tasks a pass ends are written FAILED there (the mirror's attributes only).
    ...(abcaTaskTable ? [abcaMirrorWriteStatement(abcaTaskTable)] : []),
  ];
}

/** PutMetricData has no resource-level permissions; the namespace condition scopes it. */
function metricsStatement(namespace: string): iam.PolicyStatement {
  return statement('FleetMetrics', ['cloudwatch:PutMetricData'], ['*'], { StringEquals: { 'cloudwatch:namespace': namespace } });
}
