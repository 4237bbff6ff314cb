/**
 * Example: spot capacity. One on-demand instance as a base, everything above it on spot, spread
 * over three Graviton types (one CPU architecture: the AMI's) with the price-capacity-optimized
 * strategy; Capacity Rebalancing is on with spot. An interrupted task is released by fleetd
 * (INTERRUPTED, its attempt refunded) and runs again elsewhere (docs/lifecycle.md).
 *
 *   npx tsx examples/spot.ts
 */
import { App, Stack } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { AgentFleet } from '../infra/agent-fleet';
import { addAwsSolutionsChecks } from '../infra/app';

export const EXAMPLE_SPOT_TYPES = ['m7g.xlarge', 'm6g.xlarge', 'c7g.2xlarge'] as const;

export function buildSpotExample(app: App = new App()): { app: App; stack: Stack; fleet: AgentFleet } {
  const stack = new Stack(app, 'AgentFleetSpot');  // environment-agnostic: the fleet's default VPC then needs no AZ lookup
  const fleet = new AgentFleet(stack, 'Fleet', {
    instanceTypes: EXAMPLE_SPOT_TYPES.map((t) => new ec2.InstanceType(t)),
    spot: {
      onDemandBaseCapacity: 1,
      onDemandPercentageAboveBaseCapacity: 0,
      allocationStrategy: autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
    },
    maxCapacity: 20,
  });
  addAwsSolutionsChecks(app);
  return { app, stack, fleet };
}

if (require.main === module) buildSpotExample(new App({ outdir: process.env.CDK_OUTDIR ?? `${__dirname}/cdk.out` })).app.synth();
