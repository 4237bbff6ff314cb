/**
 * Example: the fleet in a VPC you already have (no new VPC, no NAT gateway of the fleet's own).
 * The VPC is imported from its attributes, so the app synthesizes offline (no lookup); the
 * private subnets need outbound access to AWS APIs and your registries (a NAT gateway or
 * interface endpoints).
 *
 *   npx tsx examples/own-vpc.ts     # synthesizes to examples/cdk.out with cdk-nag's checks
 */
import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { AgentFleet } from '../infra/agent-fleet';
import { addAwsSolutionsChecks } from '../infra/app';

export const EXAMPLE_VPC = {
  vpcId: 'vpc-0123456789abcdef0',
  availabilityZones: ['eu-west-1a', 'eu-west-1b'],
  privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
} as const;

export function buildOwnVpcExample(app: App = new App()): { app: App; stack: Stack; fleet: AgentFleet } {
  const stack = new Stack(app, 'AgentFleetOwnVpc', { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
    vpcId: EXAMPLE_VPC.vpcId,
    availabilityZones: [...EXAMPLE_VPC.availabilityZones],
    privateSubnetIds: [...EXAMPLE_VPC.privateSubnetIds],
  });
  const fleet = new AgentFleet(stack, 'Fleet', {
    vpc,
    // The imported private subnets (the default selection, written out for the reader).
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
  });
  addAwsSolutionsChecks(app);
  return { app, stack, fleet };
}

if (require.main === module) buildOwnVpcExample(new App({ outdir: process.env.CDK_OUTDIR ?? `${__dirname}/cdk.out` })).app.synth();
