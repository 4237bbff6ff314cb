/**
 * Example: alarms that reach someone. Every alarm of the fleet notifies your existing SNS topic
 * (imported by ARN: no lookup) when it fires and when it recovers, and each description ends with
 * a link into your copy of the runbook. With no topic at hand, use `alarmEmail` instead: the
 * construct makes an encrypted topic with an e-mail subscription.
 *
 *   npx tsx examples/alarm-topic.ts
 */
import { App, Stack } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AgentFleet } from '../infra/agent-fleet';
import { addAwsSolutionsChecks } from '../infra/app';

export const EXAMPLE_TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:oncall';
export const EXAMPLE_RUNBOOK_URL = 'https://github.com/my-org/agent-fleet/blob/main/docs/operations.md';

export function buildAlarmTopicExample(app: App = new App()): { app: App; stack: Stack; fleet: AgentFleet } {
  const stack = new Stack(app, 'AgentFleetAlarms');  // environment-agnostic: the fleet's default VPC then needs no AZ lookup
  const fleet = new AgentFleet(stack, 'Fleet', {
    alarmTopic: sns.Topic.fromTopicArn(stack, 'Oncall', EXAMPLE_TOPIC_ARN),
    runbookBaseUrl: EXAMPLE_RUNBOOK_URL,
  });
  addAwsSolutionsChecks(app);
  return { app, stack, fleet };
}

if (require.main === module) buildAlarmTopicExample(new App({ outdir: process.env.CDK_OUTDIR ?? `${__dirname}/cdk.out` })).app.synth();
