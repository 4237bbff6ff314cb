/**
 * examples/: each app synthesizes with cdk-nag's AwsSolutions checks on (an unacknowledged
 * finding fails the synth) and without lookups, and its template shows the example's point.
 */
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { App, Stack } from 'aws-cdk-lib';
import { buildAlarmTopicExample, EXAMPLE_RUNBOOK_URL, EXAMPLE_TOPIC_ARN } from '../../examples/alarm-topic';
import { buildOperatorExample } from '../../examples/operator';
import { buildOwnVpcExample, EXAMPLE_VPC } from '../../examples/own-vpc';
import { buildSpotExample, EXAMPLE_SPOT_TYPES } from '../../examples/spot';
import { buildSubmitterExample } from '../../examples/submitter';
import { actionsOf, fastApp, resolved, resourcesOf, statementsOfRole, type FleetUnderTest } from './fleet-factory';

/** Synthesizes the whole app (cdk-nag runs here) and returns the stack's template. */
function synthesize(built: { app: App; stack: Stack }): Template {
  const assembly = built.app.synth();
  expect(assembly.manifest.missing ?? []).toEqual([]);
  return Template.fromStack(built.stack);
}

describe('examples', () => {
  test('own-vpc: no VPC or NAT gateway of its own; the group runs in the imported private subnets', () => {
    // Act
    const template = synthesize(buildOwnVpcExample(fastApp()));
    // Assess
    template.resourceCountIs('AWS::EC2::VPC', 0);
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { VPCZoneIdentifier: [...EXAMPLE_VPC.privateSubnetIds] });
    template.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: EXAMPLE_VPC.vpcId });
  });

  test('alarm-topic: every alarm notifies the topic and links to the runbook URL', () => {
    // Act
    const template = synthesize(buildAlarmTopicExample(fastApp()));
    // Assess
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as { Properties: { AlarmActions?: unknown; AlarmDescription: string } }[];
    expect(alarms.length).toBeGreaterThanOrEqual(6);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([EXAMPLE_TOPIC_ARN]);
      expect(alarm.Properties.AlarmDescription).toContain(`Runbook: ${EXAMPLE_RUNBOOK_URL}#`);
    }
  });

  test('spot: a mixed-instances policy, on-demand base of 1, all spot above it, three types, capacity rebalance', () => {
    // Act
    const template = synthesize(buildSpotExample(fastApp()));
    // Assess
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      CapacityRebalance: true,
      MixedInstancesPolicy: {
        InstancesDistribution: Match.objectLike({
          OnDemandBaseCapacity: 1,
          OnDemandPercentageAboveBaseCapacity: 0,
          SpotAllocationStrategy: 'price-capacity-optimized',
        }),
        LaunchTemplate: Match.objectLike({ Overrides: EXAMPLE_SPOT_TYPES.map((t) => ({ InstanceType: t })) }),
      },
    });
  });

  test('submitter: the role may submit (payload, seal, record, event, enqueue) and nothing else', () => {
    // Prepare
    const built = buildSubmitterExample(fastApp());
    // Act
    const template = synthesize(built);
    const t: FleetUnderTest = { ...built, template };
    const statements = statementsOfRole(t, built.submitter);
    // Assess
    expect(statements.flatMap(actionsOf).sort()).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'kms:GenerateMac',
      's3:PutObject',
      'sqs:SendMessage',
    ]);
    const enqueue = statements.find((s) => actionsOf(s).includes('sqs:SendMessage'))!;
    expect(resourcesOf(enqueue)).toEqual([resolved(t, built.fleet.queue.queueArn)]);
  });

  test('operator: the role has the cancel statements (SendCommand on the document and on fleet-tagged instances) and the redrive statements (the DLQ)', () => {
    // Prepare
    const built = buildOperatorExample(fastApp());
    // Act
    const template = synthesize(built);
    const t: FleetUnderTest = { ...built, template };
    const statements = statementsOfRole(t, built.operator);
    // Assess
    const sendCommand = statements.filter((s) => actionsOf(s).includes('ssm:SendCommand'));
    expect(sendCommand).toHaveLength(2);
    expect(sendCommand.map((s) => s.Condition ?? null)).toContainEqual({ StringEquals: { 'ssm:resourceTag/bgagent:fleet': 'agent-fleet' } });
    const dlq = JSON.stringify(resolved(t, built.fleet.deadLetterQueue.queueArn));
    const onDlq = statements.filter((s) => resourcesOf(s).some((r) => JSON.stringify(r) === dlq)).flatMap(actionsOf).sort();
    expect(onDlq).toEqual(['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:ReceiveMessage']);
    expect(statements.flatMap(actionsOf)).toEqual(expect.arrayContaining(['dynamodb:Query', 'dynamodb:Scan', 'ec2:DescribeInstances', 's3:PutObject', 'sqs:SendMessage']));
  });
});
