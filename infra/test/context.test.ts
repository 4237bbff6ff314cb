/**
 * The app's `-c` context: an unknown key or a bad value is a one-line error per problem that
 * says what was got, what was expected and how to fix it (with the valid keys), exit code 2,
 * no stack trace; the CDK's own keys (aws:*, @aws-cdk/*, cached lookups) are left alone.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { AgentFleetPropsError } from '../agent-fleet';
import { buildApp, contextFromArgs } from '../app';
import { CONTEXT_KEYS, fleetPropsFromContext, fleetStackFromContext, unknownContextProblems } from '../fleet-stack';
import { fastApp } from './fleet-factory';

const ROOT = path.resolve(__dirname, '..', '..');

function problemsOf(act: () => unknown): string[] {
  try {
    act();
  } catch (e) {
    if (e instanceof AgentFleetPropsError) return [...e.problems];
    throw e;
  }
  return [];
}

describe('the app on the command line (npx tsx infra/app.ts -c ...)', () => {
  test.each([
    ['an unknown key', ['-c', 'bogusKey=1'], 'bogusKey', /got -c bogusKey=1, expected one of the app's keys \(stackName, fleetName, .*maxCapacity.*\)/],
    ['a number that is not one', ['-c', 'maxCapacity=abc'], 'maxCapacity', /got "abc", expected a number \(-c maxCapacity=3\)/],
  ])('%s: exit code 2, one line on stderr naming the key, no stack trace', (_what, args, key, message) => {
    // Act
    const r = spawnSync('npx', ['tsx', 'infra/app.ts', ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 90_000,
      env: { ...process.env, CDK_OUTDIR: path.join(ROOT, 'infra', 'cdk.out', 'context-test') },
    });
    // Assess
    const lines = r.stderr.split('\n').filter((l) => l.trim().length > 0);
    expect(r.status).toBe(2);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(key);
    expect(lines[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/^ {4}at /m);
    expect(r.stdout).toBe('');
  }, 120_000);
});

describe('context keys', () => {
  test("the CDK's own keys are ignored: feature flags, aws:cdk settings, cached lookups, acknowledged notices", () => {
    // Prepare
    const app = fastApp({
      '@aws-cdk/core:newStyleStackSynthesis': true,
      '@aws-cdk-containers/ecs-service-extensions:enableDefaultLogDriver': true,
      'aws:cdk:enable-path-metadata': true,
      'aws-cdk:enableDiffNoFail': 'true',
      'availability-zones:account=123456789012:region=eu-west-1': ['eu-west-1a'],
      'acknowledged-issue-numbers': [32775],
      maxCapacity: '20',
    });
    // Act
    const props = fleetPropsFromContext(app.node);
    // Assess
    expect(props.maxCapacity).toBe(20);
  });

  test('an unknown key is rejected with the list of valid keys, and a near miss gets a suggestion', () => {
    // Act
    const problems = problemsOf(() => fleetPropsFromContext(fastApp({ maxcapacity: '3', bogusKey: 1 }).node));
    // Assess
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^context key "maxcapacity": got -c maxcapacity=3, expected one of the app's keys .*; did you mean -c maxCapacity=\.\.\.\?$/);
    expect(problems[1]).toMatch(/^context key "bogusKey": .*fix the spelling or drop it/);
    for (const key of Object.keys(CONTEXT_KEYS)) expect(problems[1]).toContain(key);
  });

  test('every key the README documents is a known key (nothing documented is rejected)', () => {
    // Act
    const problems = unknownContextProblems(Object.fromEntries(Object.keys(CONTEXT_KEYS).map((k) => [k, 'x'])));
    // Assess
    expect(problems).toEqual([]);
  });

  test('every problem at once: bad values, both alarm targets, a bad topic ARN', () => {
    // Act
    const problems = problemsOf(() =>
      fleetStackFromContext(fastApp({ spot: 'yes', alarmTopicArn: 'oncall', alarmEmail: 'a@example.com', stackName: '1bad' }).node),
    );
    // Assess
    expect(problems).toEqual([
      'context alarmTopicArn: got "oncall", expected an SNS topic ARN like arn:aws:sns:us-east-1:123456789012:oncall',
      'context alarmTopicArn and alarmEmail: got both, expected at most one; subscribe the address to your topic, or drop alarmTopicArn to get a topic for alarmEmail',
      'context stackName: got "1bad", expected a CloudFormation stack name (a letter, then letters, digits or \'-\', at most 128)',
      'context spot: got "yes", expected true or false (-c spot=true)',
    ]);
  });

  test('alarm keys reach the stack: alarmTopicArn as the stack prop, alarmEmail and runbookBaseUrl as fleet props', () => {
    // Act
    const fromArn = fleetStackFromContext(fastApp({ alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:oncall' }).node);
    const fromEmail = fleetStackFromContext(fastApp({ alarmEmail: 'oncall@example.com', runbookBaseUrl: 'https://wiki.example.com/fleet' }).node);
    // Assess
    expect(fromArn.props.alarmTopicArn).toBe('arn:aws:sns:eu-west-1:123456789012:oncall');
    expect(fromEmail.props.fleet).toMatchObject({ alarmEmail: 'oncall@example.com', runbookBaseUrl: 'https://wiki.example.com/fleet' });
  });

  test('a -c without key=value is an error, not silently dropped', () => {
    // Act
    const problems = problemsOf(() => contextFromArgs(['-c', 'maxCapacity']));
    // Assess
    expect(problems).toEqual(['-c maxCapacity: got no key=value after it, expected e.g. -c maxCapacity=20']);
  });

  test('buildApp refuses an unknown key before creating any stack', () => {
    // Act
    const problems = problemsOf(() => buildApp({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [], tagprefix: 'x' } }));
    // Assess
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/did you mean -c tagPrefix=/);
  });
});
