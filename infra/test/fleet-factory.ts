/**
 * Small factories for the template tests: a fleet in a bare stack, synthesized fast (asset
 * bundling skipped, the CloudFormation validation plugin off: `npm run synth` runs both), and
 * helpers to find things in the template.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { AgentFleet, type AgentFleetProps } from '../agent-fleet';

export interface FleetUnderTest {
  readonly app: App;
  readonly stack: Stack;
  readonly fleet: AgentFleet;
  readonly template: Template;
}

/** An App whose synth skips Lambda bundling and the built-in CloudFormation validation. */
export function fastApp(context: Record<string, unknown> = {}): App {
  return new App({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [], ...context } });
}

/** `props` may be a function of the stack, for props that are constructs in it (an imported table). */
export function buildFleet(
  props: AgentFleetProps | ((stack: Stack) => AgentFleetProps) = {},
  extend?: (stack: Stack, fleet: AgentFleet) => void,
): FleetUnderTest {
  const app = fastApp();
  const stack = new Stack(app, 'Test');
  const fleet = new AgentFleet(stack, 'Fleet', typeof props === 'function' ? props(stack) : props);
  extend?.(stack, fleet);
  return { app, stack, fleet, template: Template.fromStack(stack) };
}

export interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

export function actionsOf(s: Statement): string[] {
  return Array.isArray(s.Action) ? s.Action : [s.Action];
}

export function resourcesOf(s: Statement): unknown[] {
  return Array.isArray(s.Resource) ? s.Resource : [s.Resource];
}

interface PolicyResource {
  Properties: { Roles: unknown[]; PolicyDocument: { Statement: Statement[] } };
}

/** Every statement of the AWS::IAM::Policy resources attached to `role`. */
export function statementsOfRole(t: FleetUnderTest, role: iam.IRole): Statement[] {
  const roleRef = JSON.stringify(t.stack.resolve(role.roleName));
  const policies = Object.values(t.template.findResources('AWS::IAM::Policy')) as PolicyResource[];
  return policies
    .filter((p) => p.Properties.Roles.some((r) => JSON.stringify(r) === roleRef))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

export function statementBySid(statements: Statement[], sid: string): Statement {
  const found = statements.filter((s) => s.Sid === sid);
  if (found.length !== 1) {
    throw new Error(`expected one statement with Sid ${sid}, found ${found.length} among: ${statements.map((s) => s.Sid).join(', ')}`);
  }
  return found[0];
}

/** `x` (a token such as an ARN) as it appears in the template. */
export function resolved(t: FleetUnderTest, x: unknown): unknown {
  return t.stack.resolve(x);
}

/** A Lambda function's environment variables as the template writes them. */
export function functionEnvironment(t: FleetUnderTest, fn: lambda.IFunction): Record<string, unknown> {
  const id = t.stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction);
  const resource = (t.template.toJSON() as { Resources: Record<string, { Properties: { Environment?: { Variables?: Record<string, unknown> } } }> }).Resources[id];
  if (!resource) throw new Error(`no function ${id} in the template`);
  return resource.Properties.Environment?.Variables ?? {};
}

/** The single resource of `type`, or a clear failure. */
export function onlyResource(t: FleetUnderTest, type: string): { Properties: Record<string, unknown> } {
  const all = Object.values(t.template.findResources(type));
  if (all.length !== 1) throw new Error(`expected one ${type}, found ${all.length}`);
  return all[0] as { Properties: Record<string, unknown> };
}
