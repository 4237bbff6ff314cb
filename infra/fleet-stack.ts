/**
 * The deployable stack: one AgentFleet, its props taken from CDK context (so `-c key=value`
 * works the same through `npm run synth` and the CDK CLI), and stack outputs that give the CLI
 * its environment (each output's description is the FLEET_ENV variable it fills).
 */
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as sns from 'aws-cdk-lib/aws-sns';
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
  /**
   * ARN of an existing SNS topic for the fleet's alarms and scaling notifications (imported by
   * ARN, no lookup). Ignored when `fleet.alarmTopic` is set; not together with
   * `fleet.alarmEmail`.
   *
   * @default - `fleet.alarmTopic`, or none
   */
  readonly alarmTopicArn?: string;
}

export class AgentFleetStack extends Stack {
  readonly fleet: AgentFleet;
  readonly intake: FleetIntake;

  constructor(scope: Construct, id: string, props: AgentFleetStackProps = {}) {
    super(scope, id, {
      description: 'agent-fleet: a pull-based EC2 fleet for long-running agent containers',
      ...props,
    });
    const alarmTopic = props.fleet?.alarmTopic ?? (props.alarmTopicArn ? sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn) : undefined);
    this.fleet = new AgentFleet(this, 'Fleet', { ...props.fleet, alarmTopic });
    const f = this.fleet;
    // The intake queue, state-change events and Step Functions callbacks (docs/integration.md).
    const bus = this.node.tryGetContext('eventBusName') as string | undefined;
    this.intake = new FleetIntake(this, 'Intake', {
      fleet: f,
      eventBus: bus ? events.EventBus.fromEventBusName(this, 'TaskEventBus', bus) : undefined,
      // The intake submits on producers' behalf: it seals with the fleet's key (docs/security.md).
      sealKey: f.sealKey,
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
      // Submits are sealed with it (docs/security.md); fleetd runs only sealed records.
      ['SealKeyId', FLEET_ENV.sealKeyId, f.sealKey.keyArn],
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
 * Every context key the app reads (`-c key=value`), with what it expects. Any other key is an
 * error, except the CDK's own (see isCdkContextKey).
 */
export const CONTEXT_KEYS = {
  stackName: 'CloudFormation stack name (default AgentFleet)',
  fleetName: 'fleet name, e.g. agent-fleet',
  tagPrefix: 'instance tag key prefix, e.g. bgagent',
  instanceTypes: 'comma-separated instance types, e.g. m7g.xlarge,m7g.2xlarge',
  amiId: 'AMI id, e.g. ami-0123456789abcdef0',
  amiParameterName: 'SSM parameter holding the AMI id, e.g. /agent-fleet/ami-id',
  minCapacity: 'a whole number, e.g. 0',
  maxCapacity: 'a whole number, e.g. 10',
  slotsPerInstance: 'a whole number, e.g. 1',
  scalingBuffer: 'a whole number, e.g. 0',
  spot: 'true or false',
  allowedRegistries: 'comma-separated registry hosts',
  secretArnPrefix: 'Secrets Manager ARN prefix',
  alarmTopicArn: 'SNS topic ARN, e.g. arn:aws:sns:us-east-1:123456789012:oncall',
  alarmEmail: 'an e-mail address, e.g. oncall@example.com',
  runbookBaseUrl: 'runbook URL or path without #, e.g. https://github.com/my-org/agent-fleet/blob/main/docs/operations.md',
  eventBusName: 'EventBridge bus for task state changes (default: the default bus), e.g. agent-fleet-events',
} as const;

/**
 * Context keys the CDK itself (the CLI, cdk.json, cdk.context.json) may pass: feature flags
 * (`@aws-cdk/...`), `aws:cdk:...` settings, cached lookups (`availability-zones:account=...`)
 * all carry a ':' or start with '@'; `cdk acknowledge` writes `acknowledged-issue-numbers`.
 */
const CDK_PLAIN_CONTEXT_KEYS = new Set(['acknowledged-issue-numbers', 'cdk-migrate']);

export function isCdkContextKey(key: string): boolean {
  return key.includes(':') || key.startsWith('@') || CDK_PLAIN_CONTEXT_KEYS.has(key);
}

const SNS_TOPIC_ARN_PATTERN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$/;

function closestKey(key: string): string | undefined {
  const lower = key.toLowerCase();
  const known = Object.keys(CONTEXT_KEYS);
  const exact = known.find((k) => k.toLowerCase() === lower);
  if (exact) return exact;
  // Levenshtein distance <= 2: a typo.
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const next = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = row[j];
        row[j] = next;
      }
    }
    return row[b.length];
  };
  return known.find((k) => distance(k.toLowerCase(), lower) <= 2);
}

function shortValue(v: unknown): string {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** One problem per context key the app does not know (the CDK's own keys are left alone). */
export function unknownContextProblems(context: Record<string, unknown>): string[] {
  return Object.entries(context)
    .filter(([key]) => !isCdkContextKey(key) && !Object.prototype.hasOwnProperty.call(CONTEXT_KEYS, key))
    .map(([key, value]) => {
      const guess = closestKey(key);
      return (
        `context key ${JSON.stringify(key)}: got -c ${key}=${shortValue(value)}, expected one of the app's keys ` +
        `(${Object.keys(CONTEXT_KEYS).join(', ')}) or a CDK key (aws:*, @aws-cdk/*); ` +
        (guess ? `did you mean -c ${guess}=...?` : 'fix the spelling or drop it (infra/README.md lists the keys)')
      );
    });
}

interface ContextReading {
  readonly props: AgentFleetProps;
  readonly stackName: string;
  readonly alarmTopicArn?: string;
  readonly problems: string[];
}

function readContext(node: Node): ContextReading {
  const problems: string[] = [];
  const get = (key: keyof typeof CONTEXT_KEYS): unknown => node.tryGetContext(key);
  const str = (key: keyof typeof CONTEXT_KEYS): string | undefined => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return undefined;
    return String(v);
  };
  const list = (key: keyof typeof CONTEXT_KEYS): string[] | undefined => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return undefined;
    const items = Array.isArray(v) ? v.map(String) : String(v).split(',');
    return items.map((s) => s.trim()).filter((s) => s.length > 0);
  };
  const num = (key: keyof typeof CONTEXT_KEYS): number | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) problems.push(`context ${key}: got ${JSON.stringify(v)}, expected a number (-c ${key}=3)`);
    return n;
  };
  const bool = (key: keyof typeof CONTEXT_KEYS): boolean | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false') problems.push(`context ${key}: got ${JSON.stringify(v)}, expected true or false (-c ${key}=true)`);
    return v === 'true';
  };
  problems.push(...unknownContextProblems(node.getAllContext() as Record<string, unknown>));
  const amiId = str('amiId');
  if (amiId !== undefined && !/^ami-[0-9a-f]{8,17}$/.test(amiId)) {
    problems.push(`context amiId: got ${JSON.stringify(amiId)}, expected an AMI id like ami-0123456789abcdef0`);
  }
  const alarmTopicArn = str('alarmTopicArn');
  if (alarmTopicArn !== undefined && !SNS_TOPIC_ARN_PATTERN.test(alarmTopicArn)) {
    problems.push(`context alarmTopicArn: got ${JSON.stringify(alarmTopicArn)}, expected an SNS topic ARN like arn:aws:sns:us-east-1:123456789012:oncall`);
  }
  const alarmEmail = str('alarmEmail');
  if (alarmTopicArn !== undefined && alarmEmail !== undefined) {
    problems.push('context alarmTopicArn and alarmEmail: got both, expected at most one; subscribe the address to your topic, or drop alarmTopicArn to get a topic for alarmEmail');
  }
  const stackName = str('stackName') ?? 'AgentFleet';
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(stackName)) {
    problems.push(`context stackName: got ${JSON.stringify(stackName)}, expected a CloudFormation stack name (a letter, then letters, digits or '-', at most 128)`);
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
    alarmEmail,
    runbookBaseUrl: str('runbookBaseUrl'),
  };
  return { props, stackName, alarmTopicArn, problems };
}

/**
 * Fleet props from context (the keys of CONTEXT_KEYS but stackName and alarmTopicArn, which
 * are the stack's). Throws AgentFleetPropsError with every problem, including unknown keys.
 */
export function fleetPropsFromContext(node: Node): AgentFleetProps {
  const { props, problems } = readContext(node);
  if (problems.length > 0) throw new AgentFleetPropsError('context', problems);
  return props;
}

/** The stack's name and props from context; every problem at once, as AgentFleetPropsError. */
export function fleetStackFromContext(node: Node): { stackName: string; props: AgentFleetStackProps } {
  const { props, stackName, alarmTopicArn, problems } = readContext(node);
  if (problems.length > 0) throw new AgentFleetPropsError('context', problems);
  return { stackName, props: { fleet: props, alarmTopicArn } };
}
