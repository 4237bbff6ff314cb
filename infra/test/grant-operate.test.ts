/**
 * grantOperate: exactly what the `fleet` CLI needs for the read verbs, submit, cancel and
 * dlq list/redrive: the union of grantRead, grantSubmit, grantCancel and grantRedrive.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import { actionsOf, buildFleet, resolved, resourcesOf, statementsOfRole, type FleetUnderTest, type Statement } from './fleet-factory';

/** Each (action, resource, condition) a set of statements allows, as sorted strings. */
function permissions(statements: Statement[]): string[] {
  const out = new Set<string>();
  for (const s of statements) {
    expect(s.Effect).toBe('Allow');
    for (const a of actionsOf(s)) for (const r of resourcesOf(s)) out.add(JSON.stringify([a, r, s.Condition ?? null]));
  }
  return [...out].sort();
}

describe('grantOperate', () => {
  let t: FleetUnderTest;
  let operator: iam.Role;
  let separate: iam.Role[];
  beforeAll(() => {
    t = buildFleet({}, (stack, f) => {
      operator = new iam.Role(stack, 'Operator', { assumedBy: new iam.AccountRootPrincipal() });
      f.grantOperate(operator);
      separate = ['Reader', 'Submitter', 'Canceller', 'Redriver'].map((id) => new iam.Role(stack, id, { assumedBy: new iam.AccountRootPrincipal() }));
      f.grantRead(separate[0]);
      f.grantSubmit(separate[1]);
      f.grantCancel(separate[2]);
      f.grantRedrive(separate[3]);
    });
  });

  test('allows exactly the union of the four CLI grants, nothing more, nothing less', () => {
    // Act
    const operate = permissions(statementsOfRole(t, operator));
    const union = [...new Set(separate.flatMap((role) => permissions(statementsOfRole(t, role))))].sort();
    // Assess
    expect(operate).toEqual(union);
  });

  test('includes cancel (SendCommand on the document and on fleet-tagged instances) and redrive (the DLQ)', () => {
    // Prepare
    const statements = statementsOfRole(t, operator);
    const dlq = resolved(t, t.fleet.deadLetterQueue.queueArn);
    // Act
    const actions = statements.flatMap(actionsOf);
    const onDlq = statements.filter((s) => resourcesOf(s).some((r) => JSON.stringify(r) === JSON.stringify(dlq))).flatMap(actionsOf).sort();
    // Assess
    expect(actions.filter((a) => a === 'ssm:SendCommand')).toHaveLength(2);
    expect(onDlq).toEqual(['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:ReceiveMessage']);
    expect(actions).toEqual(expect.arrayContaining(['sqs:SendMessage', 's3:PutObject', 'dynamodb:Query', 'ec2:DescribeInstances']));
  });
});
