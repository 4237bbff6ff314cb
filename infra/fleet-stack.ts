/**
 * The deployable stack: one AgentFleet, its props taken from CDK context (so `-c key=value`
 * works the same through `npm run synth` and the CDK CLI), and stack outputs that give the CLI
 * its environment (each output's description is the FLEET_ENV variable it fills).
 */
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct, Node } from 'constructs';
import { FLEET_ENV } from '../daemon/src/contract';
import { AgentFleet, AgentFleetPropsError, type AgentFleetProps } from './agent-fleet';
import { FleetIntake } from './intake';

export interface AgentFleetStackProps extends StackProps {
  /**
   * Props of the fleet.
   *
   * @default - AgentFleet's defaults
   */
  readonly fleet?: AgentFleetProps;
}

export class AgentFleetStack extends Stack {
  readonly fleet: AgentFleet;
  readonly intake: FleetIntake;

  constructor(scope: Construct, id: string, props: AgentFleetStackProps = {}) {
    super(scope, id, {
      description: 'agent-fleet: a pull-based EC2 fleet for long-running agent containers',
      ...props,
    });
    this.fleet = new AgentFleet(this, 'Fleet', props.fleet);
    const f = this.fleet;
    // The intake queue, state-change events and Step Functions callbacks (docs/integration.md).
    const bus = this.node.tryGetContext('eventBusName') as string | undefined;
    const sealKeyArn = this.node.tryGetContext('sealKeyArn') as string | undefined;
    this.intake = new FleetIntake(this, 'Intake', {
      fleet: f,
      eventBus: bus ? events.EventBus.fromEventBusName(this, 'TaskEventBus', bus) : undefined,
      sealKey: sealKeyArn ? kms.Key.fromKeyArn(this, 'SealKey', sealKeyArn) : undefined,
    });
    const envOutputs: [string, string, string][] = [
      ['FleetName', FLEET_ENV.fleetName, f.fleetName],
      ['QueueUrl', FLEET_ENV.queueUrl, f.queue.queueUrl],
      ['DeadLetterQueueUrl', FLEET_ENV.dlqUrl, f.deadLetterQueue.queueUrl],
      ['TasksTable', FLEET_ENV.tasksTable, f.tasksTable.tableName],
      ['EventsTable', FLEET_ENV.eventsTable, f.eventsTable.tableName],
      ['InstancesTable', FLEET_ENV.instancesTable, f.instancesTable.tableName],
      ['PayloadBucket', FLEET_ENV.payloadBucket, f.payloadBucket.bucketName],
      ['CancelDocument', FLEET_ENV.cancelDocument, f.cancelDocumentName],
      ['AutoScalingGroup', FLEET_ENV.asgName, f.autoScalingGroupName],
      ['TagPrefix', FLEET_ENV.tagPrefix, f.tagPrefix],
      ['IntakeQueueUrl', FLEET_ENV.intakeQueueUrl, this.intake.queue.queueUrl],
      ['IntakeDeadLetterQueueUrl', FLEET_ENV.intakeDlqUrl, this.intake.deadLetterQueue.queueUrl],
    ];
    for (const [id, variable, value] of envOutputs) new CfnOutput(this, id, { value, description: variable });
    new CfnOutput(this, 'TaskRoleArn', { value: f.taskRole.roleArn, description: 'Role task containers get credentials from; grant it what agents need' });
    new CfnOutput(this, 'Dashboard', { value: f.monitoring.dashboard.dashboardName, description: 'CloudWatch dashboard of the fleet' });
  }
}

/** An AMI given by id (no lookup): `-c amiId=ami-...`. */
function fixedImage(imageId: string): ec2.IMachineImage {
  return {
    getImage: () => ({ imageId, osType: ec2.OperatingSystemType.LINUX, userData: ec2.UserData.forLinux() }),
  };
}

/**
 * Fleet props from context. Keys: fleetName, tagPrefix, instanceTypes (comma-separated),
 * amiId, amiParameterName, minCapacity, maxCapacity, slotsPerInstance, scalingBuffer,
 * spot (true/false), allowedRegistries (comma-separated), secretArnPrefix. The stack reads two
 * more for its FleetIntake: eventBusName (where task state changes go; default bus when unset)
 * and sealKeyArn (the fleet's KMS HMAC key the intake seals records with).
 */
export function fleetPropsFromContext(node: Node): AgentFleetProps {
  const problems: string[] = [];
  const get = (key: string): unknown => node.tryGetContext(key);
  const str = (key: string): string | undefined => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return undefined;
    return String(v);
  };
  const list = (key: string): string[] | undefined => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return undefined;
    const items = Array.isArray(v) ? v.map(String) : String(v).split(',');
    return items.map((s) => s.trim()).filter((s) => s.length > 0);
  };
  const num = (key: string): number | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) problems.push(`context ${key}: got ${JSON.stringify(v)}, expected a number (-c ${key}=3)`);
    return n;
  };
  const bool = (key: string): boolean | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false') problems.push(`context ${key}: got ${JSON.stringify(v)}, expected true or false`);
    return v === 'true';
  };
  const amiId = str('amiId');
  if (amiId !== undefined && !/^ami-[0-9a-f]{8,17}$/.test(amiId)) {
    problems.push(`context amiId: got ${JSON.stringify(amiId)}, expected an AMI id like ami-0123456789abcdef0`);
  }
  const instanceTypes = list('instanceTypes');
  const props: AgentFleetProps = {
    fleetName: str('fleetName'),
    tagPrefix: str('tagPrefix'),
    instanceTypes: instanceTypes?.map((t) => new ec2.InstanceType(t)),
    machineImage: amiId ? fixedImage(amiId) : undefined,
    amiParameterName: str('amiParameterName'),
    minCapacity: num('minCapacity'),
    maxCapacity: num('maxCapacity'),
    slotsPerInstance: num('slotsPerInstance'),
    scalingBuffer: num('scalingBuffer'),
    spot: bool('spot') ? {} : undefined,
    allowedRegistries: list('allowedRegistries'),
    secretArnPrefix: str('secretArnPrefix'),
  };
  if (problems.length > 0) throw new AgentFleetPropsError('context', problems);
  return props;
}
