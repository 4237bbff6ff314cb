/**
 * The fleet as ABCA's `ec2` compute strategy, on the IAM side (docs/abca.md, docs/architecture.md
 * "ABCA"):
 *
 * - `abcaInstanceStatements(table)`: what fleetd's instance role may do on ABCA's TaskTable when
 *   the fleet's `abcaTaskTable` prop is set (infra/permissions.ts adds them): GetItem of `status`
 *   only (the mirror's read, for ABCA's cancel), and UpdateItem of the mirror's attributes only
 *   (`agent_heartbeat_at`; FAILED with `error_message`, `completed_at`, `status_created_at`),
 *   enforced with `dynamodb:Attributes`, returning nothing. No other item action, no other table.
 * - `AbcaIntegration`: the fleet's task role (the credentials every task container gets) gets
 *   what ABCA's ECS task role gets on ABCA's agent resources, and nothing more: read/write on the
 *   TaskTable, TaskEventsTable and UserConcurrencyTable, read of the GitHub token secret, write to
 *   the agent log group; plus read of the task's *own* payload object in the fleet's bucket (for
 *   AGENT_PAYLOAD_S3_URI), scoped by the task-id session tag. Bedrock, memory, gateway and OAuth
 *   grants stay with the deployer (`fleet.taskRole`), as they vary per ABCA deployment.
 */
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { ABCA_MIRROR_ATTRIBUTES } from '../daemon/src/abca-mirror';
import { TASK_SESSION_TAG_KEYS, payloadKey } from '../daemon/src/contract';
import { acknowledgeWildcardResource } from './nag';

/** The attributes fleetd's read projects (GetItem: the key and `status`). */
export const ABCA_MIRROR_READ_ATTRIBUTES = ['task_id', 'status'] as const;

/** The instance role's statements on ABCA's TaskTable (infra/permissions.ts, with `abcaTaskTable`). */
export function abcaInstanceStatements(table: dynamodb.ITable): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: 'AbcaMirrorReadStatus',
      actions: ['dynamodb:GetItem'],
      resources: [table.tableArn],
      conditions: {
        'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...ABCA_MIRROR_READ_ATTRIBUTES] },
        StringEquals: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' },
      },
    }),
    abcaMirrorWriteStatement(table),
  ];
}

/**
 * UpdateItem of the mirror's attributes only, returning nothing: the instance role's (fleetd's
 * mirror) and the reconciler's, which tells ABCA of the ABCA tasks it ends (AbcaHeartbeatMirror.ended).
 */
export function abcaMirrorWriteStatement(table: dynamodb.ITable): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'AbcaMirrorWrite',
    actions: ['dynamodb:UpdateItem'],
    resources: [table.tableArn],
    conditions: {
      'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...ABCA_MIRROR_ATTRIBUTES] },
      StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
    },
  });
}

export interface AbcaIntegrationProps {
  /** The fleet's task role (`AgentFleet.taskRole`): the role every task container's credentials come from. */
  readonly taskRole: iam.IRole;
  /** The fleet's payload bucket (`AgentFleet.payloadBucket`): large payloads, read by the task as AGENT_PAYLOAD_S3_URI. */
  readonly payloadBucket: s3.IBucket;
  /** ABCA's TaskTable (TASK_TABLE_NAME). */
  readonly taskTable: dynamodb.ITable;
  /** ABCA's TaskEventsTable (TASK_EVENTS_TABLE_NAME). */
  readonly taskEventsTable: dynamodb.ITable;
  /** ABCA's UserConcurrencyTable (USER_CONCURRENCY_TABLE_NAME). */
  readonly userConcurrencyTable: dynamodb.ITable;
  /** ABCA's GitHub token secret (GITHUB_TOKEN_SECRET_ARN). */
  readonly githubTokenSecret: secretsmanager.ISecret;
  /** The agent's log group (LOG_GROUP_NAME). */
  readonly logGroup: logs.ILogGroup;
}

/**
 * `new AbcaIntegration(this, 'Abca', { taskRole: fleet.taskRole, payloadBucket: fleet.payloadBucket, … })`
 * next to `new AgentFleet(this, 'Fleet', { abcaTaskTable })`.
 */
export class AbcaIntegration extends Construct {
  constructor(scope: Construct, id: string, props: AbcaIntegrationProps) {
    super(scope, id);
    const role = props.taskRole;
    // As ABCA's ECS task role (its EcsAgentCluster without a SessionRole): read/write data on
    // the three tables, read the GitHub token, write the agent log group.
    props.taskTable.grantReadWriteData(role);
    props.taskEventsTable.grantReadWriteData(role);
    props.userConcurrencyTable.grantReadWriteData(role);
    props.githubTokenSecret.grantRead(role);
    props.logGroup.grantWrite(role);
    // ECS grants read of its whole payload bucket; here only the task's own object, by the
    // session tag fleetd sets when it assumes the role for the task.
    const ownPayload = props.payloadBucket.arnForObjects(payloadKey(`\${aws:PrincipalTag/${TASK_SESSION_TAG_KEYS.taskId}}`));
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'AbcaOwnPayloadRead', actions: ['s3:GetObject'], resources: [ownPayload] }));
    // cdk-nag: the wildcards are CDK's grant renderings, acknowledged one by one on the role.
    const why = "ABCA's agent grants as ABCA's ECS task role has them (CDK grant renderings)";
    for (const t of [props.taskTable, props.taskEventsTable, props.userConcurrencyTable]) acknowledgeWildcardResource(role, `${t.tableArn}/index/*`, `${why}: the table's indexes (grantReadWriteData)`);
    acknowledgeWildcardResource(role, `${props.githubTokenSecret.secretArn}-??????`, `${why}: the GitHub token secret's version suffix (grantRead)`);
    acknowledgeWildcardResource(role, props.logGroup.logGroupArn, `${why}: the agent log group's streams (grantWrite)`);
  }
}
