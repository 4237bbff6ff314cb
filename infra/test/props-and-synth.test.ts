/**
 * Early validation of AgentFleet's props (each message says what was got, what was expected
 * and the fix), fleetd's user data, and the app's synth with cdk-nag's AwsSolutions checks.
 */
import { CfnElement, Duration, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import {
  DEFAULT_CONFIG_PATH,
  FLEETD_SYSTEMD_UNIT,
  parseFleetdConfigFile,
  type FleetdConfigFileInput,
} from '../../daemon/src/contract';
import { AgentFleet, AgentFleetPropsError, type AgentFleetProps } from '../agent-fleet';
import { buildApp, contextFromArgs } from '../app';
import { fleetPropsFromContext } from '../fleet-stack';
import { buildFleet, fastApp, onlyResource, type FleetUnderTest } from './fleet-factory';

function constructionError(props: AgentFleetProps): AgentFleetPropsError {
  const stack = new Stack(fastApp(), 'Test');
  try {
    new AgentFleet(stack, 'Fleet', props);
  } catch (e) {
    if (e instanceof AgentFleetPropsError) return e;
    throw e;
  }
  throw new Error(`expected AgentFleetPropsError for ${JSON.stringify(props)}`);
}

describe('bad props fail at construction with a message saying got / expected / fix', () => {
  test.each<[string, AgentFleetProps, RegExp]>([
    ['max < min', { minCapacity: 5, maxCapacity: 2 }, /maxCapacity \(2\) is below minCapacity \(5\): expected maxCapacity >= minCapacity; raise maxCapacity or lower minCapacity/],
    ['slots < 1', { slotsPerInstance: 0 }, /slotsPerInstance: got 0, expected at least 1 \(concurrent tasks per instance\); use 1 for one task per instance/],
    ['fractional slots', { slotsPerInstance: 1.5 }, /slotsPerInstance: got 1.5, expected an integer from 1 to 64/],
    ['empty instance-type list', { instanceTypes: [] }, /instanceTypes: got an empty list, expected at least one instance type; omit the prop for the default \(m7g.xlarge\)/],
    ['mixed CPU architectures', { instanceTypes: [new ec2.InstanceType('m7i.large'), new ec2.InstanceType('m7g.large')] }, /m7i.large \(x86_64\), m7g.large \(arm64\), expected one CPU architecture/],
    ['hook heartbeat out of range', { drainHeartbeatTimeout: Duration.seconds(10) }, /drainHeartbeatTimeout: got 10 s, expected 30-7200 s/],
    ['both AMI sources', { machineImage: ec2.MachineImage.latestAmazonLinux2023(), amiParameterName: '/x' }, /got both, expected at most one/],
    ['a fleet name that cannot be a tag value', { fleetName: 'my fleet!' }, /fleetName: got "my fleet!", expected 1-64 letters/],
    ['a registry with a scheme', { allowedRegistries: ['https://ghcr.io'] }, /allowedRegistries: got "https:\/\/ghcr.io", expected a registry host\[:port\] without scheme/],
    ['capacity rebalance without spot', { capacityRebalance: true }, /capacityRebalance: got true without spot/],
    ['a negative buffer', { scalingBuffer: -1 }, /scalingBuffer: got -1, expected an integer from 0/],
    [
      'an ABCA table name DynamoDB would refuse',
      { abcaTaskTable: dynamodb.Table.fromTableName(new Stack(fastApp(), 'Abca'), 'AbcaTaskTable', 'ab') },
      /abcaTaskTable: got a table named "ab", expected a DynamoDB table name \(3-255 letters, digits, '_', '-' or '.'\); import ABCA's TaskTable by its real name/,
    ],
  ])('%s', (_what, props, message) => {
    // Act
    const error = constructionError(props);
    // Assess
    expect(error.message).toMatch(message);
    expect(error.message).toContain('AgentFleet Test/Fleet: invalid props');
  });

  test.each([
    ['region', 'arn:aws:dynamodb:eu-west-1:123456789012:table/abca-TaskTable-1A2B3C4D', /abcaTaskTable: got a table in region eu-west-1, expected the fleet's region us-east-1 .*; deploy the fleet in the table's account and region, or leave abcaTaskTable unset/],
    ['account', 'arn:aws:dynamodb:us-east-1:210987654321:table/abca-TaskTable-1A2B3C4D', /abcaTaskTable: got a table in account 210987654321, expected the fleet's account 123456789012 /],
  ])("an ABCA table in another %s fails (fleetd addresses it by name, in the fleet's own account and region)", (_what, tableArn, message) => {
    // Prepare
    const stack = new Stack(fastApp(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
    const table = dynamodb.Table.fromTableArn(stack, 'AbcaTaskTable', tableArn);
    // Act
    const error = (() => {
      try {
        new AgentFleet(stack, 'Fleet', { abcaTaskTable: table });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    // Assess
    expect(error).toBeInstanceOf(AgentFleetPropsError);
    expect((error as Error).message).toMatch(message);
  });

  test("an ABCA table in the fleet's account and region is accepted", () => {
    // Prepare
    const stack = new Stack(fastApp(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
    const table = dynamodb.Table.fromTableArn(stack, 'AbcaTaskTable', 'arn:aws:dynamodb:us-east-1:123456789012:table/abca-TaskTable-1A2B3C4D');
    // Act
    const fleet = new AgentFleet(stack, 'Fleet', { abcaTaskTable: table });
    // Assess
    expect(fleet.fleetdConfig.abcaTaskTable).toBe('abca-TaskTable-1A2B3C4D');
  });

  test('every problem is reported at once, before any resource is created', () => {
    // Prepare
    const stack = new Stack(fastApp(), 'Test');
    // Act
    const act = (): unknown => new AgentFleet(stack, 'Fleet', { minCapacity: 3, maxCapacity: 1, slotsPerInstance: 0, instanceTypes: [] });
    // Assess
    expect(act).toThrow(/maxCapacity[\s\S]*slotsPerInstance[\s\S]*instanceTypes/);
    expect(stack.node.tryFindChild('Fleet')?.node.children ?? []).toHaveLength(0);
  });
});

describe('context → props (the same keys through npm run synth and the CDK CLI)', () => {
  test('parses -c pairs and lists', () => {
    // Prepare
    const app = fastApp(contextFromArgs(['-c', 'maxCapacity=20', '--context', 'instanceTypes=g5.xlarge, g5.2xlarge', '-c', 'spot=true']));
    // Act
    const props = fleetPropsFromContext(app.node);
    // Assess
    expect(props.maxCapacity).toBe(20);
    expect(props.instanceTypes?.map(String)).toEqual(['g5.xlarge', 'g5.2xlarge']);
    expect(props.spot).toEqual({});
  });

  test('a bad value names the key, what it got and an example', () => {
    // Prepare
    const app = fastApp({ maxCapacity: 'lots', amiId: 'ubuntu' });
    // Act + Assess
    expect(() => fleetPropsFromContext(app.node)).toThrow(/context maxCapacity: got "lots", expected a number \(-c maxCapacity=3\)/);
    expect(() => fleetPropsFromContext(app.node)).toThrow(/context amiId: got "ubuntu", expected an AMI id like ami-0123456789abcdef0/);
  });
});

/**
 * The user data with every CloudFormation value replaced by a plausible deploy-time value, so
 * the config JSON can be parsed with fleetd's own schema.
 */
function renderUserData(t: FleetUnderTest): string {
  const lt = onlyResource(t, 'AWS::EC2::LaunchTemplate').Properties.LaunchTemplateData as { UserData: { 'Fn::Base64': { 'Fn::Join': [string, unknown[]] } } };
  const resources = t.template.toJSON().Resources as Record<string, { Type: string }>;
  const pseudo: Record<string, string> = { 'AWS::Region': 'eu-west-1', 'AWS::AccountId': '123456789012', 'AWS::URLSuffix': 'amazonaws.com', 'AWS::Partition': 'aws' };
  const value = (part: unknown): string => {
    if (typeof part === 'string') return part;
    const ref = (part as { Ref?: string }).Ref;
    if (ref && pseudo[ref]) return pseudo[ref];
    if (ref && resources[ref]?.Type === 'AWS::SQS::Queue') return `https://sqs.eu-west-1.amazonaws.com/123456789012/${ref}`;
    if (ref) return ref.toLowerCase();
    const [logicalId] = (part as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'];
    if (resources[logicalId]?.Type === 'AWS::KMS::Key') return `arn:aws:kms:eu-west-1:123456789012:key/${logicalId}`;
    return `arn:aws:iam::123456789012:role/${logicalId}`;
  };
  const [separator, parts] = lt.UserData['Fn::Base64']['Fn::Join'];
  return parts.map(value).join(separator);
}

describe("fleetd's user data", () => {
  let t: FleetUnderTest;
  let script: string;
  beforeAll(() => {
    t = buildFleet({ fleetName: 'gpu', slotsPerInstance: 2, allowedRegistries: ['ghcr.io'] });
    script = renderUserData(t);
  });

  test('only writes the config file and starts fleetd', () => {
    // Act
    const lines = script.split('\n');
    // Assess
    expect(lines[0]).toBe('#!/bin/bash');
    const commands = lines.filter((l, i) => i > 0 && !l.startsWith('{') && l !== 'FLEETD_CONFIG_JSON');
    expect(commands).toEqual([
      'set -euo pipefail',
      'install -d -m 0700 /etc/fleetd',
      `cat > ${DEFAULT_CONFIG_PATH}.tmp <<'FLEETD_CONFIG_JSON'`,
      `chmod 0600 ${DEFAULT_CONFIG_PATH}.tmp`,
      `mv -f ${DEFAULT_CONFIG_PATH}.tmp ${DEFAULT_CONFIG_PATH}`,
      `systemctl enable --now ${FLEETD_SYSTEMD_UNIT}`,
    ]);
  });

  test("the config is valid for fleetd's schema and has exactly the documented keys", () => {
    // Prepare
    const json = script.split('\n').find((l) => l.startsWith('{'))!;
    // Act
    const config = JSON.parse(json) as FleetdConfigFileInput;
    const parsed = parseFleetdConfigFile(config);
    // Assess
    expect(parsed.ok ? [] : parsed.problems).toEqual([]);
    expect(Object.keys(config).sort()).toEqual(
      [
        'fleetName',
        'region',
        'queueUrl',
        'dlqUrl',
        'tasksTable',
        'eventsTable',
        'instancesTable',
        'payloadBucket',
        'logGroup',
        'cancelDocument',
        'asgName',
        'tagPrefix',
        'slots',
        'allowedRegistries',
        'secretArnPrefix',
        'taskRoleArn',
        'sealKeyId',
        'readinessHookName',
      ].sort(),
    );
    expect(config).toMatchObject({
      fleetName: 'gpu',
      region: 'eu-west-1',
      slots: 2,
      allowedRegistries: ['ghcr.io'],
      asgName: t.fleet.autoScalingGroupName,
      tagPrefix: 'bgagent',
      secretArnPrefix: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:agent-fleet/gpu/',
    });
    expect(t.fleet.fleetdConfig.asgName).toBe(config.asgName);
    // Sealed specs: fleetd verifies with the fleet's own HMAC key, named by its ARN.
    const keyLogicalId = t.stack.getLogicalId(t.fleet.sealKey.node.defaultChild as CfnElement);
    expect(config.sealKeyId).toBe(`arn:aws:kms:eu-west-1:123456789012:key/${keyLogicalId}`);
  });
});

describe("fleetd's user data with abcaTaskTable", () => {
  test("carries the table's name, valid for fleetd's schema (the one key added to the default config)", () => {
    // Prepare
    const t = buildFleet((stack) => ({ abcaTaskTable: dynamodb.Table.fromTableName(stack, 'AbcaTaskTable', 'abca-TaskTable-1A2B3C4D') }));
    const json = renderUserData(t).split('\n').find((l) => l.startsWith('{'))!;
    // Act
    const config = JSON.parse(json) as FleetdConfigFileInput;
    const parsed = parseFleetdConfigFile(config);
    // Assess
    expect(parsed.ok ? [] : parsed.problems).toEqual([]);
    expect(config.abcaTaskTable).toBe('abca-TaskTable-1A2B3C4D');
    expect(parsed.ok && parsed.value.abcaTaskTable).toBe('abca-TaskTable-1A2B3C4D');
  });
});

describe('the app', () => {
  test('synthesizes offline with cdk-nag AwsSolutions on and nothing unacknowledged, and needs no lookup', () => {
    // Prepare
    const { app } = buildApp({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [] } });
    // Act
    const assembly = app.synth();
    // Assess
    expect(assembly.manifest.missing ?? []).toEqual([]);
    expect(assembly.stacks.map((s) => s.stackName)).toEqual(['AgentFleet']);
  });

  test('an unacknowledged finding fails the synth (the checks are really on)', () => {
    // Prepare: a bucket that breaks AwsSolutions-S1/S10.
    const { app, stack } = buildApp({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [] } });
    new s3.Bucket(stack, 'Careless');
    // Act
    const error = (() => {
      try {
        app.synth();
      } catch (e) {
        return (e as Error).message;
      }
      return 'synth passed';
    })();
    // Assess
    expect(error).toContain('AgentFleet/Careless/Resource');
    expect(error).toContain('AwsSolutions-S10');
  });
});
