/**
 * Example: an operator role for the `fleet` CLI. `grantOperate` gives exactly what the CLI needs
 * for the read verbs (status, list, watch, logs, instances), submit, cancel, and dlq list /
 * redrive: the union of grantRead, grantSubmit, grantCancel and grantRedrive. Assume it from
 * your account (or attach the same grant to an SSO permission set's role).
 *
 * A shell on instances (`aws ssm start-session`) is not part of it; docs/operations.md says what
 * to add when operators need one.
 *
 *   npx tsx examples/operator.ts
 */
import { App, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AgentFleet } from '../infra/agent-fleet';
import { addAwsSolutionsChecks } from '../infra/app';
import { acknowledge, acknowledgeWildcardResource } from '../infra/nag';
import { ARTIFACTS_KEY_PATTERN } from '../infra/logs';
import { instanceArnPattern, PAYLOAD_KEY_PATTERN } from '../infra/permissions';

export function buildOperatorExample(app: App = new App()): { app: App; stack: Stack; fleet: AgentFleet; operator: iam.Role } {
  const stack = new Stack(app, 'AgentFleetOperator');  // environment-agnostic: the fleet's default VPC then needs no AZ lookup
  const fleet = new AgentFleet(stack, 'Fleet');
  const operator = new iam.Role(stack, 'OperatorRole', {
    assumedBy: new iam.AccountRootPrincipal(),
    description: 'Runs the fleet CLI: read, submit, cancel, dlq',
  });
  fleet.grantOperate(operator);
  // The findings grantOperate's statements raise on a role the construct does not own.
  acknowledge(operator, 'AwsSolutions-IAM5[Resource::*]', 'ec2:DescribeInstances (fleet instances) has no resource-level permissions; the CLI filters by the fleet tag.');
  acknowledgeWildcardResource(
    operator,
    instanceArnPattern(stack),
    'ssm:SendCommand of the cancel document on instance/*, conditioned on the instance carrying this fleet tag (ssm:resourceTag).',
  );
  acknowledgeWildcardResource(operator, fleet.payloadBucket.arnForObjects(PAYLOAD_KEY_PATTERN), 'fleet submit uploads payloads under tasks/<task id>/; PutObject only.');
  acknowledgeWildcardResource(operator, fleet.payloadBucket.arnForObjects(ARTIFACTS_KEY_PATTERN), 'fleet artifacts reads what fleetd uploaded under artifacts/<task id>/<attempt>/; GetObject only.');
  acknowledgeWildcardResource(operator, fleet.taskLogs.logGroup.logGroupArn, 'fleet logs reads the task log group\'s streams (<task id>/<attempt>); read actions only.');
  addAwsSolutionsChecks(app);
  return { app, stack, fleet, operator };
}

if (require.main === module) buildOperatorExample(new App({ outdir: process.env.CDK_OUTDIR ?? `${__dirname}/cdk.out` })).app.synth();
