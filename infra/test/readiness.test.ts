/**
 * The launch readiness hook and the warm pool (infra/readiness.ts, docs/lifecycle.md
 * "Readiness"): the hook's template, fleetd's config naming it, the instance role's scope for
 * completing it, the warm pool's reuse on scale-in, and cdk-nag on a fleet with a warm pool.
 */
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import { Match } from 'aws-cdk-lib/assertions';
import { READINESS_HOOK_NAME, parseFleetdConfigFile } from '../../daemon/src/contract';
import { addAwsSolutionsChecks } from '../app';
import { AgentFleetStack } from '../fleet-stack';
import { actionsOf, buildFleet, fastApp, resourcesOf, statementBySid, statementsOfRole } from './fleet-factory';

describe('readiness hook', () => {
  const fleet = buildFleet({ prepullImages: ['123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:v3'] });

  test('a launch hook fleetd completes: 15 min heartbeat timeout, ABANDON by default', () => {
    fleet.template.hasResourceProperties('AWS::AutoScaling::LifecycleHook', {
      LifecycleHookName: READINESS_HOOK_NAME,
      LifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING',
      HeartbeatTimeout: 900,
      DefaultResult: 'ABANDON',
    });
    fleet.template.resourceCountIs('AWS::AutoScaling::LifecycleHook', 2);
  });

  test("fleetd's config names the hook and the prepull images, and parses", () => {
    // Act
    const config = fleet.fleet.fleetdConfig;
    const parsed = parseFleetdConfigFile({ ...config, region: 'us-east-1', queueUrl: 'https://sqs.us-east-1.amazonaws.com/1/q', dlqUrl: 'https://sqs.us-east-1.amazonaws.com/1/d', tasksTable: 'tasks', eventsTable: 'events', instancesTable: 'instances', payloadBucket: 'payloads', allowedRegistries: ['x'], taskRoleArn: 'arn:aws:iam::1:role/t' });
    // Assess
    expect(config.readinessHookName).toBe(READINESS_HOOK_NAME);
    expect(config.prepullImages).toEqual(['123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:v3']);
    expect(parsed.ok).toBe(true);
    expect(buildFleet().fleet.fleetdConfig.prepullImages).toBeUndefined();
  });

  test('the instance role completes lifecycle actions on its own group only (Auto Scaling has no per-instance condition)', () => {
    // Act
    const s = statementBySid(statementsOfRole(fleet, fleet.fleet.instanceRole), 'OwnGroupLifecycle');
    // Assess
    expect(actionsOf(s)).toContain('autoscaling:CompleteLifecycleAction');
    expect(resourcesOf(s)).toHaveLength(1);
    expect(JSON.stringify(resourcesOf(s))).toContain(`autoScalingGroupName/${fleet.fleet.autoScalingGroupName}`);
    expect(JSON.stringify(resourcesOf(s))).not.toMatch(/"\*"/);
  });
});

describe('warm pool', () => {
  test('reuseOnScaleIn is on by default, and the prop can turn it off', () => {
    // Act
    const on = buildFleet({ warmPool: { minSize: 2, maxGroupPreparedCapacity: 2, poolState: autoscaling.PoolState.STOPPED } });
    const off = buildFleet({ warmPool: { minSize: 1, reuseOnScaleIn: false } });
    // Assess
    on.template.hasResourceProperties('AWS::AutoScaling::WarmPool', { MinSize: 2, MaxGroupPreparedCapacity: 2, PoolState: 'Stopped', InstanceReusePolicy: { ReuseOnScaleIn: true } });
    off.template.hasResourceProperties('AWS::AutoScaling::WarmPool', { InstanceReusePolicy: { ReuseOnScaleIn: false } });
    // The readiness hook is there with or without a pool: a pooled instance completes it twice.
    on.template.hasResourceProperties('AWS::AutoScaling::LifecycleHook', { LifecycleHookName: READINESS_HOOK_NAME, DefaultResult: 'ABANDON' });
    buildFleet().template.resourceCountIs('AWS::AutoScaling::WarmPool', 0);
    buildFleet().template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: Match.anyValue() });
  });

  test('a fleet with a warm pool synthesizes with cdk-nag AwsSolutions on and nothing unacknowledged', () => {
    // Prepare
    const app = fastApp();
    new AgentFleetStack(app, 'Warm', { fleet: { warmPool: { minSize: 5, maxGroupPreparedCapacity: 5, poolState: autoscaling.PoolState.STOPPED }, prepullImages: ['123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:v3'] } });
    addAwsSolutionsChecks(app);
    // Act
    const assembly = app.synth();
    // Assess
    expect(assembly.stacks.map((s) => s.stackName)).toEqual(['Warm']);
  });
});
