/**
 * Example: a service that submits tasks (e.g. a Lambda behind your API). Its role gets
 * `grantSubmit`: upload payloads under tasks/, seal the spec with the fleet's KMS HMAC key
 * (kms:GenerateMac: a submitter decides what runs, docs/security.md), create the record and its
 * event, send the message. Nothing to read, cancel or redrive. Give the service FLEET_SEAL_KEY_ID
 * (the stack output SealKeyId): fleetd runs only sealed records.
 *
 * cdk-nag reports the `tasks/*` object wildcard (AwsSolutions-IAM5) on your role; the construct
 * does not acknowledge findings on principals it does not own, so the app does, with its reason.
 *
 *   npx tsx examples/submitter.ts
 */
import { App, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AgentFleet } from '../infra/agent-fleet';
import { addAwsSolutionsChecks } from '../infra/app';
import { acknowledgeWildcardResource } from '../infra/nag';
import { PAYLOAD_KEY_PATTERN } from '../infra/permissions';

export function buildSubmitterExample(app: App = new App()): { app: App; stack: Stack; fleet: AgentFleet; submitter: iam.Role } {
  const stack = new Stack(app, 'AgentFleetSubmitter');  // environment-agnostic: the fleet's default VPC then needs no AZ lookup
  const fleet = new AgentFleet(stack, 'Fleet');
  const submitter = new iam.Role(stack, 'SubmitterRole', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: 'Submits agent-fleet tasks',
  });
  fleet.grantSubmit(submitter);
  acknowledgeWildcardResource(
    submitter,
    fleet.payloadBucket.arnForObjects(PAYLOAD_KEY_PATTERN),
    'Payload keys are tasks/<task id>/..., unknown before submission; PutObject only, under tasks/ of the fleet bucket.',
  );
  addAwsSolutionsChecks(app);
  return { app, stack, fleet, submitter };
}

if (require.main === module) buildSubmitterExample(new App({ outdir: process.env.CDK_OUTDIR ?? `${__dirname}/cdk.out` })).app.synth();
