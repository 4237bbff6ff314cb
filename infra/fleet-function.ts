/**
 * One of the fleet's TypeScript Lambdas: bundled at synth time by the locally installed esbuild
 * (no Docker, no network), with its own role that holds exactly the given statements plus
 * writing to its own log group (no managed policies). ScheduledFunction (the scaler, the
 * reconciler) and the intake's event-source functions (infra/intake.ts) are built with it.
 */
import * as path from 'node:path';
import { RemovalPolicy, type Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaNodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** The repository root: the bundler resolves imports (the contract, node_modules) from here. */
const PROJECT_ROOT = path.resolve(__dirname, '..');

export interface FleetFunctionProps {
  /** Handler source file (exports `handler`), absolute. */
  readonly entry: string;
  readonly description: string;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
  /** Everything the function may do besides writing its logs. */
  readonly statements: iam.PolicyStatement[];
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** Asynchronous-invocation retries (schedules). @default Lambda's default */
  readonly retryAttempts?: number;
  /** @default 256 */
  readonly memorySize?: number;
}

export interface FleetFunctionParts {
  readonly function: lambdaNodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
}

/** Creates `Logs`, `Role` and `Function` in `scope`. */
export function createFleetFunction(scope: Construct, props: FleetFunctionProps): FleetFunctionParts {
  const logGroup = new logs.LogGroup(scope, 'Logs', {
    retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const role = new iam.Role(scope, 'Role', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: props.description,
  });
  for (const s of props.statements) role.addToPrincipalPolicy(s);
  logGroup.grantWrite(role);

  const fn = new lambdaNodejs.NodejsFunction(scope, 'Function', {
    entry: props.entry,
    handler: 'handler',
    description: props.description,
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: props.memorySize ?? 256,
    timeout: props.timeout,
    ...(props.retryAttempts !== undefined ? { retryAttempts: props.retryAttempts } : {}),
    role,
    logGroup,
    environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
    bundling: {
      minify: true,
      sourceMap: true,
      keepNames: true,
      // Bundle the pinned SDK the tests ran against instead of the runtime's copy.
      bundleAwsSDK: true,
    },
  });
  return { function: fn, role, logGroup };
}
