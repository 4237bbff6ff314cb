/**
 * infra/abca-integration.ts: the instance role's attribute-scoped access to ABCA's TaskTable
 * (through the fleet's `abcaTaskTable`), and the task role's grants on ABCA's agent resources:
 * what ABCA's ECS task role gets on them, nothing more. cdk-nag AwsSolutions clean.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AbcaIntegration } from '../abca-integration';
import { AgentFleet } from '../agent-fleet';
import { addAwsSolutionsChecks } from '../app';
import { actionsOf, fastApp, resolved, resourcesOf, statementBySid, statementsOfRole, type FleetUnderTest } from './fleet-factory';

function build(withIntegration = true): FleetUnderTest & { tables: dynamodb.ITable[] } {
  const app = fastApp();
  addAwsSolutionsChecks(app);
  const stack = new Stack(app, 'Abca');
  const taskTable = dynamodb.Table.fromTableName(stack, 'TaskTable', 'abca-TaskTable-1');
  const taskEventsTable = dynamodb.Table.fromTableName(stack, 'TaskEventsTable', 'abca-TaskEventsTable-1');
  const userConcurrencyTable = dynamodb.Table.fromTableName(stack, 'UserConcurrencyTable', 'abca-UserConcurrencyTable-1');
  const fleet = new AgentFleet(stack, 'Fleet', { abcaTaskTable: taskTable });
  if (withIntegration) {
    new AbcaIntegration(stack, 'AbcaIntegration', {
      taskRole: fleet.taskRole,
      payloadBucket: fleet.payloadBucket,
      taskTable,
      taskEventsTable,
      userConcurrencyTable,
      githubTokenSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'GithubToken', 'abca-github-token'),
      logGroup: logs.LogGroup.fromLogGroupName(stack, 'AgentLogs', '/abca/agent'),
    });
  }
  app.synth(); // throws on an unacknowledged cdk-nag finding
  return { app, stack, fleet, template: Template.fromStack(stack), tables: [taskTable, taskEventsTable, userConcurrencyTable] };
}

describe('AbcaIntegration', () => {
  let t: ReturnType<typeof build>;
  beforeAll(() => {
    t = build();
  });

  test("the instance role: GetItem of ABCA's status and UpdateItem of the mirror's attributes only, returning nothing", () => {
    const statements = statementsOfRole(t, t.fleet.instanceRole);
    const read = statementBySid(statements, 'AbcaMirrorReadStatus');
    const write = statementBySid(statements, 'AbcaMirrorWrite');
    const arn = resolved(t, t.tables[0].tableArn);
    expect(actionsOf(read)).toEqual(['dynamodb:GetItem']);
    expect(resourcesOf(read)).toEqual([arn]);
    expect(read.Condition).toEqual({ 'ForAllValues:StringEquals': { 'dynamodb:Attributes': ['task_id', 'status'] }, StringEquals: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' } });
    expect(actionsOf(write)).toEqual(['dynamodb:UpdateItem']);
    expect(resourcesOf(write)).toEqual([arn]);
    expect(write.Condition).toEqual({
      'ForAllValues:StringEquals': { 'dynamodb:Attributes': ['task_id', 'status', 'agent_heartbeat_at', 'error_message', 'completed_at', 'status_created_at'] },
      StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
    });
    // Nothing else of the instance role's touches ABCA's tables.
    const touching = statements.filter((s) => JSON.stringify(resourcesOf(s)).includes('abca-'));
    expect(touching.map((s) => s.Sid).sort()).toEqual(['AbcaMirrorReadStatus', 'AbcaMirrorWrite']);
  });

  test("the task role: ABCA's ECS task role grants on the three tables, the token secret, the log group; its own payload object", () => {
    const statements = statementsOfRole(t, t.fleet.taskRole);
    const text = JSON.stringify(statements);
    for (const name of ['abca-TaskTable-1', 'abca-TaskEventsTable-1', 'abca-UserConcurrencyTable-1']) {
      const s = statements.find((x) => JSON.stringify(resourcesOf(x)).includes(`table/${name}"`) && actionsOf(x).includes('dynamodb:PutItem'));
      expect(s).toBeDefined();
      expect(actionsOf(s!)).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query', 'dynamodb:DeleteItem']));
    }
    expect(text).toContain('secret:abca-github-token');
    expect(statements.some((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'))).toBe(true);
    expect(statements.some((s) => actionsOf(s).includes('logs:PutLogEvents') && JSON.stringify(resourcesOf(s)).includes('/abca/agent'))).toBe(true);
    const own = statementBySid(statements, 'AbcaOwnPayloadRead');
    expect(actionsOf(own)).toEqual(['s3:GetObject']);
    expect(JSON.stringify(resourcesOf(own))).toContain('/tasks/${aws:PrincipalTag/task-id}/payload.json');
    // Nothing beyond those: no Bedrock, no wildcard actions, no other bucket access.
    expect(statements.flatMap(actionsOf).filter((a) => !/^(dynamodb|secretsmanager|logs|s3:GetObject$)/.test(a))).toEqual([]);
    expect(statements.flatMap(actionsOf).filter((a) => a.endsWith(':*'))).toEqual([]);
  });

  test('without the construct the task role has no ABCA grant (the fleet alone grants tasks nothing)', () => {
    const bare = build(false);
    expect(JSON.stringify(statementsOfRole(bare, bare.fleet.taskRole))).not.toContain('abca-');
  });
});
