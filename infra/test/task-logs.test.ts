/**
 * Task output leaves the instance (infra/logs.ts, docs/logs.md): the task log group with its
 * retention and optional KMS key, the instance role's ship and upload rights (that group and
 * artifacts/* only), the bucket's artifacts lifecycle rule, and fleetd's config naming the group.
 */
import { Duration } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { actionsOf, buildFleet, resolved, resourcesOf, statementBySid, statementsOfRole } from './fleet-factory';

describe('the task log group', () => {
  const t = buildFleet();

  test('is <prefix>/task-logs, kept 90 days by default, and fleetd\'s config names it', () => {
    t.template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/agent-fleet/task-logs', RetentionInDays: 90 });
    expect(t.fleet.fleetdConfig.logGroup).toBe('/agent-fleet/task-logs');
  });

  test('the instance role: CreateLogStream and PutLogEvents on that group only (no CreateLogGroup, no other group)', () => {
    const statements = statementsOfRole(t, t.fleet.instanceRole);
    const s = statementBySid(statements, 'TaskLogShip');
    expect(actionsOf(s).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    expect(resourcesOf(s)).toEqual([resolved(t, t.fleet.taskLogs.logGroup.logGroupArn)]);
    expect(statements.flatMap(actionsOf)).not.toContain('logs:CreateLogGroup');
  });

  test('the instance role: PutObject under artifacts/ only, and no read of artifacts', () => {
    const statements = statementsOfRole(t, t.fleet.instanceRole);
    const s = statementBySid(statements, 'ArtifactUpload');
    expect(actionsOf(s)).toEqual(['s3:PutObject']);
    expect(resourcesOf(s)).toEqual([resolved(t, t.fleet.payloadBucket.arnForObjects('artifacts/*'))]);
    const puts = statements.filter((x) => actionsOf(x).includes('s3:PutObject'));
    expect(puts).toHaveLength(1);
  });

  test('the bucket expires artifacts/ after 30 days by default', () => {
    t.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-artifacts', Prefix: 'artifacts/', ExpirationInDays: 30, Status: 'Enabled' })]) },
    });
  });

  test('the AMI agent\'s old tasks group is gone (it watched a path fleetd never wrote)', () => {
    const names = Object.values(t.template.findResources('AWS::Logs::LogGroup')).map((r) => (r as { Properties: { LogGroupName?: string } }).Properties.LogGroupName);
    expect(names).not.toContain('/agent-fleet/tasks');
    expect(names).toEqual(expect.arrayContaining(['/agent-fleet/fleetd', '/agent-fleet/system', '/agent-fleet/task-logs']));
  });
});

describe('props', () => {
  test('taskLogRetention, artifactRetention and a KMS key (which CloudWatch Logs is allowed to use)', () => {
    let key!: kms.Key;
    const t = buildFleet((stack) => {
      key = new kms.Key(stack, 'LogKey');
      return { taskLogRetention: logs.RetentionDays.ONE_WEEK, artifactRetention: Duration.days(7), taskLogEncryptionKey: key };
    });
    t.template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/agent-fleet/task-logs', RetentionInDays: 7, KmsKeyId: resolved(t, key.keyArn) });
    t.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-artifacts', ExpirationInDays: 7 })]) },
    });
    const policy = (Object.values(t.template.findResources('AWS::KMS::Key'))[0] as { Properties: { KeyPolicy: { Statement: Array<{ Principal?: unknown; Action: string | string[] }> } } }).Properties.KeyPolicy;
    const forLogs = policy.Statement.filter((st) => JSON.stringify(st.Principal ?? '').includes('logs.'));
    expect(forLogs).toHaveLength(1);
    expect(forLogs[0].Action).toEqual(expect.arrayContaining(['kms:Decrypt', 'kms:Encrypt']));
  });
});
