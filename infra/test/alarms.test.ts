/**
 * Alarms that reach someone: with `alarmTopic` or `alarmEmail` every alarm notifies (alarm and
 * OK actions), without either none does; each description reads "<fleetName>: ..." (the fleet
 * name once, not after the product name) and ends with its runbook link.
 */
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AgentFleet, AgentFleetPropsError, RUNBOOK_PATH, type AgentFleetProps } from '../agent-fleet';
import { AgentFleetStack } from '../fleet-stack';
import { RUNBOOK_SECTIONS } from '../monitoring';
import { buildFleet, fastApp, type FleetUnderTest } from './fleet-factory';

const TOPIC_ARN = 'arn:aws:sns:us-east-1:123456789012:oncall';

interface AlarmResource {
  Properties: { AlarmName?: string; AlarmDescription: string; AlarmActions?: unknown[]; OKActions?: unknown[]; MetricName?: string };
}

function alarmsOf(template: Template): [string, AlarmResource][] {
  return Object.entries(template.findResources('AWS::CloudWatch::Alarm')) as [string, AlarmResource][];
}

function constructionError(props: AgentFleetProps): string {
  const stack = new Stack(fastApp(), 'Test');
  try {
    new AgentFleet(stack, 'Fleet', props);
  } catch (e) {
    if (e instanceof AgentFleetPropsError) return e.message;
    throw e;
  }
  return 'no error';
}

describe('alarm actions', () => {
  test('without a topic or an e-mail, no alarm has an action (and there are alarms to check)', () => {
    // Prepare
    const t = buildFleet();
    // Act
    const alarms = alarmsOf(t.template);
    // Assess
    expect(alarms.length).toBe(t.fleet.monitoring.alarms.length);
    expect(alarms.length).toBeGreaterThanOrEqual(6);
    for (const [, alarm] of alarms) {
      expect(alarm.Properties.AlarmActions).toBeUndefined();
      expect(alarm.Properties.OKActions).toBeUndefined();
    }
    t.template.resourceCountIs('AWS::SNS::Topic', 0);
  });

  test('alarmTopic: every alarm notifies the topic when it fires and when it recovers, and so does the group', () => {
    // Prepare
    const t = buildFleet((stack) => ({ alarmTopic: sns.Topic.fromTopicArn(stack, 'Oncall', TOPIC_ARN) }));
    // Act
    const alarms = alarmsOf(t.template);
    // Assess
    expect(alarms.length).toBe(t.fleet.monitoring.alarms.length);
    for (const [, alarm] of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([TOPIC_ARN]);
      expect(alarm.Properties.OKActions).toEqual([TOPIC_ARN]);
    }
    t.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      NotificationConfigurations: [Match.objectLike({ TopicARN: TOPIC_ARN })],
    });
  });

  test('alarmEmail: a topic encrypted with a rotating key CloudWatch may use, TLS only, an e-mail subscription, and every alarm notifies it', () => {
    // Prepare
    const t = buildFleet({ alarmEmail: 'oncall@example.com' });
    const topicRef = t.stack.resolve((t.fleet.alarmTopic as sns.Topic).topicArn);
    // Act
    const alarms = alarmsOf(t.template);
    // Assess
    t.template.resourceCountIs('AWS::SNS::Topic', 1);
    t.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com', TopicArn: topicRef });
    t.template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    t.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    t.template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] }),
        ]),
      },
    });
    t.template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/agent-fleet/agent-fleet/alarms' });
    expect(alarms.length).toBe(t.fleet.monitoring.alarms.length);
    for (const [, alarm] of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([topicRef]);
      expect(alarm.Properties.OKActions).toEqual([topicRef]);
    }
    t.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      NotificationConfigurations: [Match.objectLike({ TopicARN: topicRef })],
    });
  });

  test('the stack takes a topic ARN (context alarmTopicArn) and wires it to every alarm', () => {
    // Prepare
    const app = fastApp();
    // Act
    const stack = new AgentFleetStack(app, 'Fleet', { alarmTopicArn: TOPIC_ARN });
    const alarms = alarmsOf(Template.fromStack(stack));
    // Assess
    expect(alarms.length).toBeGreaterThanOrEqual(6);
    for (const [, alarm] of alarms) expect(alarm.Properties.AlarmActions).toEqual([TOPIC_ARN]);
  });

  test.each<[string, (stack: Stack) => AgentFleetProps, RegExp]>([
    ['topic and e-mail together', (stack) => ({ alarmTopic: sns.Topic.fromTopicArn(stack, 'T', TOPIC_ARN), alarmEmail: 'a@example.com' }), /alarmTopic and alarmEmail: got both, expected at most one/],
    ['an address that is not one', () => ({ alarmEmail: 'oncall' }), /alarmEmail: got "oncall", expected one e-mail address such as "oncall@example.com"/],
    ['a runbook base with an anchor', () => ({ runbookBaseUrl: 'https://example.com/ops.md#top' }), /runbookBaseUrl: got "https:\/\/example.com\/ops.md#top", expected a URL or path of 1-512 characters without '#'/],
    ['a runbook base too long for CloudWatch', () => ({ runbookBaseUrl: `https://example.com/${'x'.repeat(600)}` }), /runbookBaseUrl: got ".*", expected a URL or path of 1-512 characters/],
  ])('%s fails at construction, saying what was got and expected', (_what, props, message) => {
    // Act
    const error = constructionError(props(new Stack(fastApp(), 'Imports')));
    // Assess
    expect(error).toMatch(message);
  });
});

describe('alarm descriptions', () => {
  const descriptions = (t: FleetUnderTest): string[] => alarmsOf(t.template).map(([, a]) => a.Properties.AlarmDescription);

  test.each([
    ['the default fleet name (the product name)', {}, 'agent-fleet'],
    ['a custom fleet name', { fleetName: 'gpu' }, 'gpu'],
  ])('with %s: "<fleetName>: ..." once, never after the product name', (_what, props: AgentFleetProps, name) => {
    // Act
    const all = descriptions(buildFleet(props));
    // Assess
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const d of all) {
      expect(d.startsWith(`${name}: `)).toBe(true);
      expect(d).not.toContain(`agent-fleet ${name}`);
      expect(d).not.toMatch(/agent-fleet agent-fleet/);
      expect(d.split(name).length - 1).toBe(1);
    }
  });

  test("each ends with its own runbook section, every section is used once, and a URL base replaces the path", () => {
    // Prepare
    const base = 'https://github.com/my-org/agent-fleet/blob/main/docs/operations.md';
    // Act
    const byDefault = descriptions(buildFleet());
    const withUrl = descriptions(buildFleet({ runbookBaseUrl: base }));
    // Assess
    const sections = byDefault.map((d) => {
      const m = /Runbook: (\S+)#([a-z0-9-]+)$/.exec(d);
      expect(m).not.toBeNull();
      expect(m![1]).toBe(RUNBOOK_PATH);
      return m![2];
    });
    expect(new Set(sections).size).toBe(sections.length);
    expect(sections.sort()).toEqual(Object.values(RUNBOOK_SECTIONS).sort());
    for (const d of withUrl) expect(d).toMatch(new RegExp(`Runbook: ${base.replace(/[.]/g, '\\.')}#[a-z0-9-]+$`));
  });

  test('every description fits CloudWatch\'s 1024 characters even with the longest runbook base allowed', () => {
    // Act
    const all = descriptions(buildFleet({ runbookBaseUrl: `https://example.com/${'x'.repeat(512 - 20)}` }));
    // Assess
    for (const d of all) expect(d.length).toBeLessThanOrEqual(1024);
  });
});
