/**
 * A TypeScript Lambda on a schedule, the way the fleet's scaler and reconciler run: bundled at
 * synth time by the locally installed esbuild (no Docker, no network), with its own role that
 * holds exactly the given statements plus writing to its own log group (no managed policies).
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaNodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The repository root: the bundler resolves imports (the contract, node_modules) from here. */
const PROJECT_ROOT = path.resolve(__dirname, '..');

export interface ScheduledFunctionProps {
  /** Handler source file (exports `handler`), absolute. */
  readonly entry: string;
  readonly description: string;
  readonly schedule: events.Schedule;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
  /** Everything the function may do besides writing its logs. */
  readonly statements: iam.PolicyStatement[];
  /**
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

export class ScheduledFunction extends Construct {
  readonly function: lambdaNodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: ScheduledFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: props.description,
    });
    for (const s of props.statements) this.role.addToPrincipalPolicy(s);
    this.logGroup.grantWrite(this.role);

    this.function = new lambdaNodejs.NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: props.timeout,
      // The next scheduled run re-evaluates anyway; a retry would only overlap it.
      retryAttempts: 0,
      role: this.role,
      logGroup: this.logGroup,
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
    this.rule = new events.Rule(this, 'Schedule', {
      description: `${props.description} (schedule)`,
      schedule: props.schedule,
      targets: [new targets.LambdaFunction(this.function, { retryAttempts: 0 })],
    });
  }
}
