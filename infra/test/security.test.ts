/**
 * The trust model on the synthesized template (docs/security.md): who may seal a spec (the
 * fleet's KMS HMAC key), the attribute-scoped task writes of every non-submitting principal,
 * and the instance role's SSM permissions without AmazonSSMManagedInstanceCore.
 */
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { FLEET_ENV, TASKS_TABLE } from '../../daemon/src/contract';
import { AgentFleetStack } from '../fleet-stack';
import { actionsOf, buildFleet, fastApp, resolved, resourcesOf, statementsOfRole, type FleetUnderTest, type Statement } from './fleet-factory';

const KEY = TASKS_TABLE.partitionKey;

/** What each writer may name in an UpdateItem on the tasks table, pinned here on purpose: a change must be made twice. */
const PINNED = {
  instance: [
    KEY,
    'status',
    'instance_id',
    'attempt',
    'attempts_left',
    'takeovers',
    'lease_expires_at',
    'claimed_at',
    'started_at',
    'heartbeat_at',
    'container_id',
    'cancel_requested_at',
    'message_sent_at',
    'updated_at',
    'finished_at',
    'expires_at',
    'reason',
    'exit_code',
    'oom_killed',
    'duration_ms',
    'result',
    'result_error',
    'log_tail',
    'artifacts',
    'artifacts_error',
    'dispatch',
  ],
  cancel: [KEY, 'status', 'attempt', 'cancel_requested_at', 'reason', 'updated_at', 'finished_at', 'expires_at'],
  resend: [KEY, 'status', 'attempt', 'lease_expires_at', 'message_sent_at', 'updated_at'],
  reconciler: [KEY, 'status', 'attempt', 'lease_expires_at', 'message_sent_at', 'reason', 'updated_at', 'finished_at', 'expires_at'],
};

const scoped = (attributes: string[], returnValues: string[]) => ({
  'ForAllValues:StringEquals': { 'dynamodb:Attributes': attributes },
  StringEqualsIfExists: { 'dynamodb:ReturnValues': returnValues },
  Null: { 'dynamodb:Attributes': 'false' },
});

let t: FleetUnderTest;
const roles: Record<string, iam.Role> = {};
beforeAll(() => {
  t = buildFleet({}, (stack, f) => {
    for (const id of ['Submitter', 'Operator', 'Intake', 'Canceller', 'Redriver', 'Reader']) roles[id] = new iam.Role(stack, id, { assumedBy: new iam.AccountRootPrincipal() });
    f.grantSubmit(roles.Submitter);
    f.grantOperate(roles.Operator);
    f.grantSeal(roles.Intake);
    f.grantCancel(roles.Canceller);
    f.grantRedrive(roles.Redriver);
    f.grantRead(roles.Reader);
  });
});

const fleetRoles = () => ({ instance: t.fleet.instanceRole, task: t.fleet.taskRole, scaler: t.fleet.scaler.role, reconciler: t.fleet.reconciler.role });

/** Every statement of every IAM policy in the template, with the policy's roles. */
function allPolicyStatements(): Array<{ roles: unknown[]; statement: Statement }> {
  const policies = Object.values(t.template.findResources('AWS::IAM::Policy')) as Array<{ Properties: { Roles?: unknown[]; PolicyDocument: { Statement: Statement[] } } }>;
  return policies.flatMap((p) => p.Properties.PolicyDocument.Statement.map((statement) => ({ roles: p.Properties.Roles ?? [], statement })));
}

function keyPolicy(): Statement[] {
  const keys = t.template.findResources('AWS::KMS::Key');
  const sealKeyId = t.stack.getLogicalId(t.fleet.sealKey.node.defaultChild as iam.CfnRole);
  return (keys[sealKeyId].Properties as { KeyPolicy: { Statement: Statement[] } }).KeyPolicy.Statement;
}

const grants = (role: iam.IRole, action: string) => statementsOfRole(t, role).some((s) => actionsOf(s).includes(action));

describe('the seal key', () => {
  test('is an HMAC_256 key for GENERATE_VERIFY_MAC (KMS has no rotation for HMAC keys)', () => {
    t.template.hasResourceProperties('AWS::KMS::Key', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    expect(Object.values(t.template.findResources('AWS::KMS::Key')).map((k) => (k.Properties as { KeySpec?: string }).KeySpec)).toEqual(['HMAC_256']);
  });

  test("its policy is CDK's account admin statement and a deny of GenerateMac to the fleet's own principals, nothing else", () => {
    // Act
    const statements = keyPolicy();
    // Assess
    expect(statements).toHaveLength(2);
    const [admin, deny] = statements;
    expect(admin).toMatchObject({ Effect: 'Allow', Action: 'kms:*', Resource: '*', Principal: { AWS: expect.anything() } });
    expect(JSON.stringify(admin)).toContain(':root');
    expect(deny).toMatchObject({ Sid: 'FleetPrincipalsNeverSeal', Effect: 'Deny', Action: 'kms:GenerateMac', Principal: { AWS: '*' } });
    expect(deny.Condition).toEqual({ ArnEquals: { 'aws:PrincipalArn': Object.values(fleetRoles()).map((r) => resolved(t, r.roleArn)) } });
  });

  test('no IAM policy in the template grants kms:* or *', () => {
    for (const { statement } of allPolicyStatements()) for (const a of actionsOf(statement)) expect(a === '*' || a === 'kms:*').toBe(false);
  });

  test('GenerateMac: the submit, operate and seal grantees only; never the instances, the Lambdas, cancel, redrive or read', () => {
    // Assess
    for (const id of ['Submitter', 'Operator', 'Intake']) expect({ id, generateMac: grants(roles[id], 'kms:GenerateMac') }).toEqual({ id, generateMac: true });
    for (const id of ['Canceller', 'Redriver', 'Reader']) expect({ id, generateMac: grants(roles[id], 'kms:GenerateMac') }).toEqual({ id, generateMac: false });
    for (const [id, role] of Object.entries(fleetRoles())) expect({ id, generateMac: grants(role, 'kms:GenerateMac') }).toEqual({ id, generateMac: false });
    const onKey = allPolicyStatements().filter(({ statement }) => actionsOf(statement).includes('kms:GenerateMac'));
    for (const { statement } of onKey) expect(resourcesOf(statement)).toEqual([resolved(t, t.fleet.sealKey.keyArn)]);
  });

  test('grantSeal gives kms:GenerateMac on the key and nothing else', () => {
    expect(statementsOfRole(t, roles.Intake).map((s) => ({ actions: actionsOf(s), resources: resourcesOf(s) }))).toEqual([
      { actions: ['kms:GenerateMac'], resources: [resolved(t, t.fleet.sealKey.keyArn)] },
    ]);
  });

  test('VerifyMac: the instance role only, on the key only', () => {
    // Act
    const verifiers = allPolicyStatements().filter(({ statement }) => actionsOf(statement).some((a) => a === 'kms:VerifyMac'));
    // Assess
    expect(verifiers).toHaveLength(1);
    expect(verifiers[0].roles).toEqual([resolved(t, t.fleet.instanceRole.roleName)]);
    expect(actionsOf(verifiers[0].statement)).toEqual(['kms:VerifyMac']);
    expect(resourcesOf(verifiers[0].statement)).toEqual([resolved(t, t.fleet.sealKey.keyArn)]);
  });

  test("its ARN is fleetd's sealKeyId and the stack output the CLI reads as FLEET_SEAL_KEY_ID", () => {
    // Prepare
    const stack = new AgentFleetStack(fastApp(), 'AgentFleet');
    // Act
    const outputs = Template.fromStack(stack).findOutputs('SealKeyId');
    // Assess
    expect(t.fleet.fleetdConfig.sealKeyId).toBe(t.fleet.sealKey.keyArn);
    expect(Object.values(outputs)).toEqual([{ Description: FLEET_ENV.sealKeyId, Value: stack.resolve(stack.fleet.sealKey.keyArn) }]);
  });
});

describe('attribute-scoped task writes', () => {
  /** The statements of `role` that touch the tasks table itself. */
  const onTasks = (role: iam.IRole) => statementsOfRole(t, role).filter((s) => resourcesOf(s).some((r) => JSON.stringify(r) === JSON.stringify(resolved(t, t.fleet.tasksTable.tableArn))));

  test.each([
    ['the instance role', () => t.fleet.instanceRole, PINNED.instance, ['NONE', 'ALL_NEW']],
    ['the reconciler', () => t.fleet.reconciler.role, PINNED.reconciler, ['NONE']],
    ['grantCancel', () => roles.Canceller, PINNED.cancel, ['NONE']],
    ['grantRedrive', () => roles.Redriver, PINNED.resend, ['NONE']],
    ['grantSubmit (its send mark; its record is a PutItem)', () => roles.Submitter, PINNED.resend, ['NONE']],
  ] as const)('%s: every UpdateItem on the tasks table carries its pinned allow-list', (_who, role, attributes, returnValues) => {
    // Act
    const updates = onTasks(role()).filter((s) => actionsOf(s).includes('dynamodb:UpdateItem'));
    // Assess
    expect(updates).toHaveLength(1);
    expect(actionsOf(updates[0])).toEqual(['dynamodb:UpdateItem']);
    expect(updates[0].Condition).toEqual(scoped([...attributes], [...returnValues]));
  });

  test.each([
    ['the instance role', () => t.fleet.instanceRole],
    ['the reconciler', () => t.fleet.reconciler.role],
    ['the scaler', () => t.fleet.scaler.role],
    ['grantCancel', () => roles.Canceller],
    ['grantRedrive', () => roles.Redriver],
    ['grantRead', () => roles.Reader],
  ] as const)('%s: no PutItem, DeleteItem, BatchWriteItem or unscoped UpdateItem on the tasks table', (_who, role) => {
    for (const s of onTasks(role())) {
      for (const a of actionsOf(s)) expect(['dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem', 'dynamodb:*', '*']).not.toContain(a);
      if (actionsOf(s).includes('dynamodb:UpdateItem')) expect(s.Condition?.['ForAllValues:StringEquals']).toBeDefined();
    }
  });

  test('no allow-list names spec, seal or max_attempts, anywhere in the template', () => {
    for (const { statement } of allPolicyStatements()) {
      const list = (statement.Condition?.['ForAllValues:StringEquals']?.['dynamodb:Attributes'] ?? []) as string[];
      for (const a of ['spec', 'seal', 'max_attempts', 'idempotency_key', 'created_at']) expect(list).not.toContain(a);
    }
  });

  test('only submitters (grantSubmit, grantOperate) may PutItem on the tasks table', () => {
    // Act
    const putters = allPolicyStatements()
      .filter(({ statement }) => actionsOf(statement).includes('dynamodb:PutItem') && resourcesOf(statement).some((r) => JSON.stringify(r) === JSON.stringify(resolved(t, t.fleet.tasksTable.tableArn))))
      .flatMap(({ roles: r }) => r);
    // Assess
    expect(putters.map((r) => JSON.stringify(r)).sort()).toEqual([roles.Operator, roles.Submitter].map((r) => JSON.stringify(resolved(t, r.roleName))).sort());
  });
});

describe('SSM without AmazonSSMManagedInstanceCore', () => {
  test('no managed policy on the instance role, and no ssm:GetParameter* (nor ssm:*) on "*" anywhere', () => {
    // Prepare
    const template = t.template.toJSON() as { Resources: Record<string, { Type: string; Properties?: { ManagedPolicyArns?: unknown[] } }> };
    const instanceRoleId = t.stack.getLogicalId(t.fleet.instanceRole.node.defaultChild as iam.CfnRole);
    // Assess
    expect(template.Resources[instanceRoleId].Properties?.ManagedPolicyArns).toBeUndefined();
    expect(JSON.stringify(template)).not.toContain('AmazonSSMManagedInstanceCore');
    for (const { statement } of allPolicyStatements()) {
      if (!resourcesOf(statement).includes('*')) continue;
      for (const a of actionsOf(statement)) expect(a).not.toMatch(/^(ssm:GetParameter|ssm:\*$|\*$)/);
    }
  });
});
