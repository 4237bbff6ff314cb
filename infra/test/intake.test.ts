/**
 * Template assertions for FleetIntake (issue #17): the intake queue and its DLQ, both
 * functions and their event sources, the tasks table's stream, the intake role's exact
 * permissions, the trust boundary (grantSubmitViaQueue), and the alarms.
 */
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { FLEET_ENV, INTAKE_QUEUE_DEFAULTS, QUEUE_DEFAULTS, SEAL_MAC_ALGORITHM, TASK_EVENT_SOURCE } from '../../daemon/src/contract';
import { FleetIntake, type FleetIntakeProps } from '../intake';
import { actionsOf, buildFleet, resolved, statementBySid, statementsOfRole, type FleetUnderTest } from './fleet-factory';

function build(props: Omit<FleetIntakeProps, 'fleet'> | ((stack: FleetUnderTest['stack']) => Omit<FleetIntakeProps, 'fleet'>) = {}): FleetUnderTest & { intake: FleetIntake; submitter: iam.Role } {
  let intake!: FleetIntake;
  let submitter!: iam.Role;
  const t = buildFleet({}, (stack, fleet) => {
    intake = new FleetIntake(stack, 'Intake', { fleet, ...(typeof props === 'function' ? props(stack) : props) });
    submitter = new iam.Role(stack, 'Submitter', { assumedBy: new iam.AccountRootPrincipal() });
    intake.grantSubmitViaQueue(submitter);
  });
  return { ...t, intake, submitter };
}

let t: ReturnType<typeof build>;
beforeAll(() => {
  t = build();
});

test('the tasks table streams new and old images', () => {
  t.template.hasResourceProperties('AWS::DynamoDB::Table', { StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' }, KeySchema: [{ AttributeName: 'task_id', KeyType: 'HASH' }] });
});

test('the intake queue is encrypted, TLS-only, redrives to its DLQ, and its visibility is six times the function timeout', () => {
  const queueId = t.stack.getLogicalId(t.intake.queue.node.defaultChild as never);
  const queue = t.template.toJSON().Resources[queueId];
  expect(queue.Properties).toMatchObject({
    SqsManagedSseEnabled: true,
    VisibilityTimeout: INTAKE_QUEUE_DEFAULTS.functionTimeoutSeconds * 6,
    RedrivePolicy: { maxReceiveCount: INTAKE_QUEUE_DEFAULTS.maxReceiveCount, deadLetterTargetArn: { 'Fn::GetAtt': [t.stack.getLogicalId(t.intake.deadLetterQueue.node.defaultChild as never), 'Arn'] } },
  });
  // enforceSSL: a queue policy denying aws:SecureTransport = false, on each of the intake's queues.
  for (const q of [t.intake.queue, t.intake.deadLetterQueue, t.intake.taskEventsDeadLetterQueue]) {
    t.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [resolved(t, q.queueUrl)],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  }
  t.template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: QUEUE_DEFAULTS.dlqRetentionSeconds, RedrivePolicy: Match.absent() });
});

test('the intake function consumes the queue with partial batch responses', () => {
  t.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
    EventSourceArn: resolved(t, t.intake.queue.queueArn),
    FunctionName: resolved(t, t.intake.intakeFunction.functionName),
    BatchSize: 10,
    FunctionResponseTypes: ['ReportBatchItemFailures'],
  });
});

test('the task-events function reads the stream in order, with partial batch responses and an on-failure DLQ', () => {
  t.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
    EventSourceArn: resolved(t, t.fleet.tasksTable.tableStreamArn),
    FunctionName: resolved(t, t.intake.taskEventsFunction.functionName),
    StartingPosition: 'TRIM_HORIZON',
    ParallelizationFactor: 1,
    FunctionResponseTypes: ['ReportBatchItemFailures'],
    BisectBatchOnFunctionError: false,
    DestinationConfig: { OnFailure: { Destination: resolved(t, t.intake.taskEventsDeadLetterQueue.queueArn) } },
  });
});

test("the intake role may do what submit needs and dead-letter to the intake DLQ, nothing more (KMS: only GenerateMac with the fleet's seal key)", () => {
  const statements = statementsOfRole(t, t.intake.intakeRole);
  const byAction = statements.flatMap((s) => actionsOf(s).map((a) => `${a} ${JSON.stringify(s.Resource)}`));
  expect(statementBySid(statements, 'TaskCreate').Resource).toEqual(resolved(t, t.fleet.tasksTable.tableArn));
  expect(statementBySid(statements, 'EventAppend').Resource).toEqual(resolved(t, t.fleet.eventsTable.tableArn));
  expect(statementBySid(statements, 'Enqueue').Resource).toEqual(resolved(t, t.fleet.queue.queueArn));
  expect(statementBySid(statements, 'IntakeReject').Resource).toEqual(resolved(t, t.intake.deadLetterQueue.queueArn));
  const sealKey = JSON.stringify(resolved(t, t.fleet.sealKey.keyArn));
  expect(byAction.filter((a) => a.startsWith('kms:') && a !== `kms:GenerateMac ${sealKey}`)).toEqual([]);
  expect(byAction.filter((a) => /dynamodb:(Delete|Scan|Query|BatchWrite)/.test(a))).toEqual([]);
  // No fleetd or operator powers.
  expect(byAction.filter((a) => /ssm:|autoscaling:|ec2:|sqs:(ReceiveMessage|DeleteMessage)[^"]*"?.*TaskQueue/.test(a))).toEqual([]);
});

test('with a seal key, the intake role may GenerateMac with that key only (HMAC_SHA_256), and the function is told its ARN', () => {
  const sealed = build((stack) => ({ sealKey: kms.Key.fromKeyArn(stack, 'Seal', 'arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555') }));
  const s = statementBySid(statementsOfRole(sealed, sealed.intake.intakeRole), 'SealSpecs');
  expect(actionsOf(s)).toEqual(['kms:GenerateMac']);
  expect(s.Resource).toBe('arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555');
  expect(s.Condition).toEqual({ StringEquals: { 'kms:MacAlgorithm': SEAL_MAC_ALGORITHM } });
  sealed.template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ [FLEET_ENV.sealKeyId]: s.Resource }) } });
});

test('the task-events role publishes only "agent-fleet" events to the default bus and may call Step Functions back', () => {
  const statements = statementsOfRole(t, t.intake.taskEventsRole);
  const put = statementBySid(statements, 'PublishTaskStateChanges');
  expect(actionsOf(put)).toEqual(['events:PutEvents']);
  expect(JSON.stringify(put.Resource)).toContain(':event-bus/default');
  expect(put.Condition).toEqual({ StringEquals: { 'events:source': TASK_EVENT_SOURCE } });
  expect(actionsOf(statementBySid(statements, 'StepFunctionsCallbacks')).sort()).toEqual(['states:SendTaskFailure', 'states:SendTaskHeartbeat', 'states:SendTaskSuccess']);
  t.template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ [FLEET_ENV.fleetName]: t.fleet.fleetName, [FLEET_ENV.sfnHeartbeatSeconds]: '300', [FLEET_ENV.eventBusName]: Match.absent() }) } });
});

test('a custom bus is the one the function publishes to and may publish to', () => {
  const custom = build((stack) => ({ eventBus: new events.EventBus(stack, 'Bus', { eventBusName: 'agents' }) }));
  const put = statementBySid(statementsOfRole(custom, custom.intake.taskEventsRole), 'PublishTaskStateChanges');
  expect(put.Resource).toEqual(resolved(custom, custom.intake.eventBus.eventBusArn));
  custom.template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ [FLEET_ENV.eventBusName]: resolved(custom, custom.intake.eventBus.eventBusArn) }) } });
});

test('grantSubmitViaQueue gives SendMessage on the intake queue and nothing on the tables, the task queue or the bucket', () => {
  const statements = statementsOfRole(t, t.submitter);
  const actions = statements.flatMap(actionsOf);
  expect(actions).toContain('sqs:SendMessage');
  expect(actions.filter((a) => !a.startsWith('sqs:'))).toEqual([]);
  for (const s of statements) expect(s.Resource).toEqual(resolved(t, t.intake.queue.queueArn));
});

test('alarms: both dead-letter queues, both functions\' errors, and the stream consumer\'s lag', () => {
  expect(t.intake.alarms.map((a) => a.node.id).sort()).toEqual(['IntakeDeadLetters', 'IntakeErrors', 'TaskEventsDeadLetters', 'TaskEventsErrors', 'TaskEventsLag']);
  const alarms = Template.fromStack(t.stack).findResources('AWS::CloudWatch::Alarm');
  const intakeDlqAlarm = Object.values(alarms).find((a) => JSON.stringify(a).includes('intake messages were rejected'));
  expect(intakeDlqAlarm?.Properties).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1 });
});
