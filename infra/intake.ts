/**
 * FleetIntake: opens an AgentFleet to the rest of AWS (docs/integration.md).
 *
 *   any SQS producer ──grantSubmitViaQueue──▶ intake queue ──▶ intake Lambda ──▶ record (store) +
 *   task queue message; a bad message ──▶ intake DLQ with its reason (DLQ_REASON_ATTRIBUTE)
 *
 *   tasks table stream (NEW_AND_OLD_IMAGES) ──▶ task-events Lambda ──▶ EventBridge "Agent Fleet
 *   Task State Change" on every transition + Step Functions callbacks for tokened tasks;
 *   batches it cannot deliver ──▶ task-events DLQ
 *
 * The trust boundary is sqs:SendMessage on the intake queue: the intake function holds what
 * `fleet submit` needs (submitStatements), plus kms:GenerateMac on the seal key when one is
 * given, and nobody else gains anything. Alarms (both DLQs, both functions' errors, the stream's
 * iterator age) live here, not in monitoring.ts.
 */
import { INTAKE_RUNBOOK_SECTIONS as RUNBOOK_SECTIONS } from './monitoring';
import * as path from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as lambdaNodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DLQ_REASON_ATTRIBUTE, FLEET_ENV, INTAKE_QUEUE_DEFAULTS, QUEUE_DEFAULTS, SEAL_MAC_ALGORITHM, TASK_EVENT_SOURCE } from '../daemon/src/contract';
import type { AgentFleet } from './agent-fleet';
import { createFleetFunction, type FleetFunctionParts } from './fleet-function';
import { acknowledge, acknowledgeWildcardResource } from './nag';
import { submitStatements, type FleetPermissionTargets } from './permissions';

const HANDLERS_DIR = path.join(__dirname, 'handlers');

export interface FleetIntakeProps {
  readonly fleet: AgentFleet;
  /**
   * Where task state changes go.
   * @default the account's default event bus
   */
  readonly eventBus?: events.IEventBus;
  /**
   * The fleet's KMS HMAC key: intake records are sealed with it (kms:GenerateMac), as `fleet
   * submit` seals them. Give it when fleetd is configured with `sealKeyId`.
   * @default no seal
   */
  readonly sealKey?: kms.IKey;
  /**
   * Least time between two Step Functions heartbeats of one running task (besides the one on
   * each transition into RUNNING). A `.waitForTaskToken` state's HeartbeatSeconds must exceed
   * it plus fleetd's heartbeat interval.
   * @default 5 minutes
   */
  readonly sfnHeartbeatInterval?: Duration;
  /** @default - no alarm actions */
  readonly alarmTopic?: sns.ITopic;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

export class FleetIntake extends Construct {
  /** Send self-contained task messages here (`FLEET_INTAKE_QUEUE_URL`). */
  readonly queue: sqs.Queue;
  /** Rejected intake messages, each with its reason (`FLEET_INTAKE_DLQ_URL`). */
  readonly deadLetterQueue: sqs.Queue;
  /** Stream batches the task-events function could not deliver (their metadata, from the event source). */
  readonly taskEventsDeadLetterQueue: sqs.Queue;
  readonly intakeFunction: lambdaNodejs.NodejsFunction;
  readonly taskEventsFunction: lambdaNodejs.NodejsFunction;
  readonly intakeRole: iam.Role;
  readonly taskEventsRole: iam.Role;
  readonly eventBus: events.IEventBus;
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: FleetIntakeProps) {
    super(scope, id);
    const { fleet } = props;
    const name = fleet.fleetName;
    const stack = Stack.of(this);
    const targets: FleetPermissionTargets = {
      stack,
      queue: fleet.queue,
      deadLetterQueue: fleet.deadLetterQueue,
      tasksTable: fleet.tasksTable,
      eventsTable: fleet.eventsTable,
      instancesTable: fleet.instancesTable,
      payloadBucket: fleet.payloadBucket,
      fleetName: name,
      tagKeys: fleet.tagKeys,
      sealKey: fleet.sealKey,
    };
    this.eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');

    // ----- Queues: SSE, TLS only; a bad message is dead-lettered by the function at once (with a
    // reason), one the function keeps failing on by SQS after maxReceiveCount receives.
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.seconds(QUEUE_DEFAULTS.dlqRetentionSeconds),
    });
    acknowledge(this.deadLetterQueue, 'AwsSolutions-SQS3', 'This is the dead-letter queue of the intake queue: rejected task messages stop here with their reason (alarmed when not empty).');
    const functionTimeout = Duration.seconds(INTAKE_QUEUE_DEFAULTS.functionTimeoutSeconds);
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS's advice for an SQS event source: at least six times the function's timeout.
      visibilityTimeout: Duration.seconds(functionTimeout.toSeconds() * 6),
      retentionPeriod: Duration.seconds(QUEUE_DEFAULTS.retentionSeconds),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: INTAKE_QUEUE_DEFAULTS.maxReceiveCount },
    });
    this.taskEventsDeadLetterQueue = new sqs.Queue(this, 'TaskEventsDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.seconds(QUEUE_DEFAULTS.dlqRetentionSeconds),
    });
    acknowledge(this.taskEventsDeadLetterQueue, 'AwsSolutions-SQS3', "This is the on-failure destination of the task-events function's stream event source (records it gave up on after its retries); alarmed when not empty.");

    // ----- The intake function: what `fleet submit` may do, plus dead-lettering and the seal.
    const intake = this.fn('IntakeFunction', {
      entry: path.join(HANDLERS_DIR, 'intake.ts'),
      description: `agent-fleet ${name}: turn intake messages into tasks (validate, record, seal, enqueue)`,
      timeout: functionTimeout,
      logRetention: props.logRetention,
      environment: {
        [FLEET_ENV.queueUrl]: fleet.queue.queueUrl,
        [FLEET_ENV.intakeDlqUrl]: this.deadLetterQueue.queueUrl,
        [FLEET_ENV.tasksTable]: fleet.tasksTable.tableName,
        [FLEET_ENV.eventsTable]: fleet.eventsTable.tableName,
        [FLEET_ENV.payloadBucket]: fleet.payloadBucket.bucketName,
        ...(props.sealKey ? { [FLEET_ENV.sealKeyId]: props.sealKey.keyArn } : {}),
      },
      statements: [
        ...submitStatements(targets),
        new iam.PolicyStatement({ sid: 'IntakeReject', actions: ['sqs:SendMessage'], resources: [this.deadLetterQueue.queueArn] }),
        ...(props.sealKey
          ? [new iam.PolicyStatement({ sid: 'SealSpecs', actions: ['kms:GenerateMac'], resources: [props.sealKey.keyArn], conditions: { StringEquals: { 'kms:MacAlgorithm': SEAL_MAC_ALGORITHM } } })]
          : []),
      ],
    });
    this.intakeFunction = intake.function;
    this.intakeRole = intake.role;
    this.intakeFunction.addEventSource(new sources.SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true }));
    acknowledgeWildcardResource(this.intakeRole, fleet.payloadBucket.arnForObjects('tasks/*'), 'Payload uploads under tasks/ (object keys are per task id, unknown in advance), as grantSubmit allows.');

    // ----- The task-events function: the tasks table's stream, in order per task.
    const heartbeat = props.sfnHeartbeatInterval ?? Duration.minutes(5);
    const taskEvents = this.fn('TaskEventsFunction', {
      entry: path.join(HANDLERS_DIR, 'task-events.ts'),
      description: `agent-fleet ${name}: publish task state changes to EventBridge and call Step Functions back`,
      timeout: Duration.seconds(60),
      logRetention: props.logRetention,
      environment: {
        [FLEET_ENV.fleetName]: name,
        ...(props.eventBus ? { [FLEET_ENV.eventBusName]: props.eventBus.eventBusArn } : {}),
        [FLEET_ENV.sfnHeartbeatSeconds]: String(heartbeat.toSeconds()),
      },
      statements: [
        new iam.PolicyStatement({ sid: 'PublishTaskStateChanges', actions: ['events:PutEvents'], resources: [this.eventBus.eventBusArn], conditions: { StringEquals: { 'events:source': TASK_EVENT_SOURCE } } }),
        // Task-token callbacks have no resource-level permissions in IAM: "*" is the only resource.
        new iam.PolicyStatement({ sid: 'StepFunctionsCallbacks', actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'], resources: ['*'] }),
      ],
    });
    this.taskEventsFunction = taskEvents.function;
    this.taskEventsRole = taskEvents.role;
    this.taskEventsFunction.addEventSource(new sources.DynamoEventSource(fleet.tasksTable as dynamodb.ITable, {
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: 100,
      // One batch at a time per shard: a task's transitions are published and called back in order.
      parallelizationFactor: 1,
      reportBatchItemFailures: true,
      bisectBatchOnError: false,
      retryAttempts: 20,
      maxRecordAge: Duration.hours(24),
      onFailure: new sources.SqsDlq(this.taskEventsDeadLetterQueue),
    }));
    acknowledge(
      this.taskEventsRole,
      'AwsSolutions-IAM5[Resource::*]',
      'states:SendTaskSuccess/SendTaskFailure/SendTaskHeartbeat have no resource-level permissions (a task token names the execution); dynamodb:ListStreams (added by the stream event source) neither.',
    );

    // ----- Alarms.
    const oneMinute = Duration.minutes(1);
    const fiveMinutes = Duration.minutes(5);
    const dlqAlarm = (queue: sqs.Queue, id: string, description: string) =>
      queue.metricApproximateNumberOfMessagesVisible({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM }).createAlarm(this, id, {
        alarmDescription: description,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    const errorsAlarm = (fn: lambdaNodejs.NodejsFunction, id: string, description: string) =>
      fn.metricErrors({ period: fiveMinutes, statistic: cloudwatch.Stats.SUM }).createAlarm(this, id, {
        alarmDescription: description,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    // Descriptions like the fleet's (monitoring.ts): "<fleet>: what and where to look. Runbook: <base>#<section>".
    const described = (text: string, section: string) => `${name}: ${text} Runbook: ${fleet.runbookBaseUrl}#${section}`;
    this.alarms = [
      dlqAlarm(this.deadLetterQueue, 'IntakeDeadLetters', described(`intake messages were rejected. Each dead letter's ${DLQ_REASON_ATTRIBUTE} attribute says why (none: the intake function failed on it ${INTAKE_QUEUE_DEFAULTS.maxReceiveCount} times); fix the producer and send it again.`, RUNBOOK_SECTIONS.intakeDeadLetters)),
      dlqAlarm(this.taskEventsDeadLetterQueue, 'TaskEventsDeadLetters', described('the task-events function gave up on stream records: some state-change events or Step Functions callbacks were not delivered. Its log says why.', RUNBOOK_SECTIONS.taskEventsDeadLetters)),
      errorsAlarm(this.intakeFunction, 'IntakeErrors', described('the intake function is failing (not a bad message: those are dead-lettered). Its log says why.', RUNBOOK_SECTIONS.intakeErrors)),
      errorsAlarm(this.taskEventsFunction, 'TaskEventsErrors', described('the task-events function is failing; events and callbacks lag until it recovers.', RUNBOOK_SECTIONS.taskEventsErrors)),
      this.taskEventsFunction.metric('IteratorAge', { period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM }).createAlarm(this, 'TaskEventsLag', {
        alarmDescription: described('task state changes are published more than 5 minutes late (the stream consumer is stuck retrying a batch, or failing).', RUNBOOK_SECTIONS.taskEventsLag),
        threshold: fiveMinutes.toMilliseconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 5,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    ];
    const topic = props.alarmTopic ?? fleet.alarmTopic;
    if (topic) {
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(new actions.SnsAction(topic));
        alarm.addOkAction(new actions.SnsAction(topic));
      }
    }
  }

  /**
   * Lets `grantee` submit tasks by sending intake messages: sqs:SendMessage (and
   * GetQueueAttributes / GetQueueUrl) on the intake queue, nothing else. This is the whole
   * trust boundary: the record is written by the intake function, sealed with its key.
   */
  grantSubmitViaQueue(grantee: iam.IGrantable): iam.Grant {
    return this.queue.grantSendMessages(grantee);
  }

  /** Lets `grantee` read and delete rejected intake messages. */
  grantConsumeDeadLetters(grantee: iam.IGrantable): iam.Grant {
    return this.deadLetterQueue.grantConsumeMessages(grantee);
  }

  private fn(id: string, props: Parameters<typeof createFleetFunction>[1]): FleetFunctionParts {
    return createFleetFunction(new Construct(this, id), props);
  }
}
