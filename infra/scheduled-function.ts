/**
 * A TypeScript Lambda on a schedule, the way the fleet's scaler and reconciler run: a
 * FleetFunction (./fleet-function: bundled at synth time, its own role and log group) plus the
 * EventBridge schedule that invokes it.
 */
import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambdaNodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { createFleetFunction } from './fleet-function';

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
    const parts = createFleetFunction(this, {
      ...props,
      // The next scheduled run re-evaluates anyway; a retry would only overlap it.
      retryAttempts: 0,
    });
    this.function = parts.function;
    this.role = parts.role;
    this.logGroup = parts.logGroup;
    this.rule = new events.Rule(this, 'Schedule', {
      description: `${props.description} (schedule)`,
      schedule: props.schedule,
      targets: [new targets.LambdaFunction(this.function, { retryAttempts: 0 })],
    });
  }
}
