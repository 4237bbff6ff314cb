/**
 * The fleet's alarms and dashboard. Each alarm answers one operator question:
 *
 * - DeadLetterQueueNotEmpty  — did a task message fail for good (poison, or rejected by fleetd)?
 * - OldestTaskAge            — is a task waiting longer than it should (no capacity, boot loop)?
 * - UnhealthyInstances       — are instances failing preflight or health checks repeatedly?
 * - StaleInstances           — is an instance alive but its fleetd silent (a zombie costing money)?
 * - ScalerNotReporting       — has the scaler stopped publishing (then nothing scales out)?
 * - ScalerErrors / ReconcilerErrors — are the Lambdas failing?
 *
 * Each description reads "<fleetName>: <what and where to look>. Runbook: <base>#<section>";
 * the sections are headings of docs/operations.md (infra/test/runbooks.test.ts checks each).
 */
import { Duration, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { DLQ_REASON_ATTRIBUTE } from '../daemon/src/contract';
import type { AgentFleet } from './agent-fleet';
import { RUNBOOK_PATH } from './fleet-props';
import { FleetMetric } from './metrics';

/**
 * The runbook section (a heading of docs/operations.md, as GitHub renders its anchor) for each
 * alarm; every alarm description ends with `Runbook: <runbookBaseUrl>#<section>`.
 */
export const RUNBOOK_SECTIONS = {
  deadLetterQueueNotEmpty: 'dead-letter-queue-not-empty',
  oldestTaskAge: 'task-waiting-too-long',
  unhealthyInstances: 'unhealthy-instances',
  staleInstances: 'stale-instances',
  scalerNotReporting: 'scaler-not-reporting',
  scalerErrors: 'scaler-errors',
  reconcilerErrors: 'reconciler-errors',
} as const;

/** The runbook sections of the intake's alarms (infra/intake.ts), in the same document. */
export const INTAKE_RUNBOOK_SECTIONS = {
  intakeDeadLetters: 'intake-dead-letters',
  taskEventsDeadLetters: 'task-events-dead-letters',
  intakeErrors: 'intake-errors',
  taskEventsErrors: 'task-events-errors',
  taskEventsLag: 'task-events-lag',
} as const;

/** CloudWatch's limit on AlarmDescription. */
const MAX_ALARM_DESCRIPTION = 1024;

export interface FleetMonitoringProps {
  readonly fleet: AgentFleet;
  readonly oldestTaskAgeThreshold: Duration;
  /**
   * @default - no alarm actions
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Base of the runbook links (a URL or a repository path, without `#`).
   *
   * @default RUNBOOK_PATH ('docs/operations.md')
   */
  readonly runbookBaseUrl?: string;
}

export class FleetMonitoring extends Construct {
  readonly deadLetterQueueNotEmpty: cloudwatch.Alarm;
  readonly oldestTaskAge: cloudwatch.Alarm;
  readonly unhealthyInstances: cloudwatch.Alarm;
  readonly staleInstances: cloudwatch.Alarm;
  readonly scalerNotReporting: cloudwatch.Alarm;
  readonly scalerErrors: cloudwatch.Alarm;
  readonly reconcilerErrors?: cloudwatch.Alarm;
  readonly alarms: cloudwatch.Alarm[];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: FleetMonitoringProps) {
    super(scope, id);
    const { fleet } = props;
    const oneMinute = Duration.minutes(1);
    const fiveMinutes = Duration.minutes(5);
    const runbook = props.runbookBaseUrl ?? RUNBOOK_PATH;
    /** "<fleetName>: <what happened and what to look at>. Runbook: <base>#<section>" */
    const describe = (text: string, section: string): string => {
      const description = `${fleet.fleetName}: ${text} Runbook: ${runbook}#${section}`;
      if (!Token.isUnresolved(description) && description.length > MAX_ALARM_DESCRIPTION) {
        throw new Error(
          `FleetMonitoring: an alarm description is ${description.length} characters, expected at most ${MAX_ALARM_DESCRIPTION} (CloudWatch's limit); use a shorter runbookBaseUrl`,
        );
      }
      return description;
    };

    this.deadLetterQueueNotEmpty = fleet.deadLetterQueue
      .metricApproximateNumberOfMessagesVisible({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM })
      .createAlarm(this, 'DeadLetterQueueNotEmpty', {
        alarmDescription: describe(
          `messages in the dead-letter queue. Inspect them with fleet dlq list (the ${DLQ_REASON_ATTRIBUTE} attribute says why), fix the cause, then fleet dlq redrive.`,
          RUNBOOK_SECTIONS.deadLetterQueueNotEmpty,
        ),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.oldestTaskAge = fleet.metricOldestTaskAge({ period: oneMinute }).createAlarm(this, 'OldestTaskAge', {
      alarmDescription: describe(
        `a task has waited more than ${props.oldestTaskAgeThreshold.toHumanString()} without being claimed. Check the group's desired and max capacity, its scaling activities, instance boots and the scaler's log.`,
        RUNBOOK_SECTIONS.oldestTaskAge,
      ),
      threshold: props.oldestTaskAgeThreshold.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      // Missing data means the scaler is silent: ScalerNotReporting covers that.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    // A single boot failure is replaced within a minute or two; two bad five-minute periods out
    // of three mean instances keep failing (a bad AMI, a broken config, no capacity).
    this.unhealthyInstances = fleet.metricUnhealthyInstances({ period: fiveMinutes }).createAlarm(this, 'UnhealthyInstances', {
      alarmDescription: describe(
        "instances keep turning unhealthy. Read fleet instances (the reason column), the instances table (reason, boot_failed_at) and the instances' fleetd journal.",
        RUNBOOK_SECTIONS.unhealthyInstances,
      ),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.staleInstances = fleet
      .fleetMetric(FleetMetric.STALE_INSTANCES, { period: fiveMinutes, statistic: cloudwatch.Stats.MAXIMUM })
      .createAlarm(this, 'StaleInstances', {
        alarmDescription: describe(
          "an instance row has been stale (no instance heartbeat for 15 minutes, 2.5 heartbeats) in three reconciler runs (fleetd dead on a live instance?). The reconciler's log and fleet instances (stale) name it.",
          RUNBOOK_SECTIONS.staleInstances,
        ),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.scalerNotReporting = fleet
      .metricScalerDesiredCapacity({ period: fiveMinutes, statistic: cloudwatch.Stats.SAMPLE_COUNT })
      .createAlarm(this, 'ScalerNotReporting', {
        alarmDescription: describe(
          "the scaler published no decision for 10 minutes, so nothing scales out. Check the scaler Lambda's log and its schedule rule.",
          RUNBOOK_SECTIONS.scalerNotReporting,
        ),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 2,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
    this.scalerErrors = this.lambdaErrorsAlarm(
      'ScalerErrors',
      fleet.scaler.function.metricErrors({ period: fiveMinutes }),
      describe('scaler invocations fail; its log group has one JSON line per failure.', RUNBOOK_SECTIONS.scalerErrors),
    );
    if (fleet.reconciler) {
      this.reconcilerErrors = this.lambdaErrorsAlarm(
        'ReconcilerErrors',
        fleet.reconciler.function.metricErrors({ period: fiveMinutes }),
        describe('reconciler runs fail; its log group has one JSON line per failure.', RUNBOOK_SECTIONS.reconcilerErrors),
      );
    }
    this.alarms = [
      this.deadLetterQueueNotEmpty,
      this.oldestTaskAge,
      this.unhealthyInstances,
      this.staleInstances,
      this.scalerNotReporting,
      this.scalerErrors,
      ...(this.reconcilerErrors ? [this.reconcilerErrors] : []),
    ];
    if (props.alarmTopic) {
      const action = new actions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    const group = fleet.autoScalingGroupName;
    const name = fleet.fleetName;
    const groupMetric = (metricName: string, label: string): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: 'AWS/AutoScaling',
        metricName,
        dimensionsMap: { AutoScalingGroupName: group },
        period: oneMinute,
        statistic: cloudwatch.Stats.MAXIMUM,
        label,
      });
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown: `# ${name}\nQueue → scaler → instances. Scale-in is each instance's own idle self-termination; the scaler only raises desired capacity.`,
        width: 24,
        height: 2,
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Tasks: queued and running',
        left: [
          fleet.queue.metricApproximateNumberOfMessagesVisible({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM, label: 'queued (visible)' }),
          fleet.queue.metricApproximateNumberOfMessagesNotVisible({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM, label: 'running (in flight)' }),
        ],
        right: [fleet.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM, label: 'dead-letter' })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Capacity: scaler decision vs. group',
        left: [
          fleet.metricScalerDesiredCapacity({ label: 'scaler decision' }),
          groupMetric('GroupDesiredCapacity', 'desired'),
          groupMetric('GroupInServiceInstances', 'in service'),
          groupMetric('GroupPendingInstances', 'pending'),
          groupMetric('GroupTerminatingInstances', 'terminating'),
        ],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Oldest unclaimed task (s)',
        left: [fleet.metricOldestTaskAge({ label: 'age' })],
        leftAnnotations: [{ value: props.oldestTaskAgeThreshold.toSeconds(), label: 'alarm' }],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Instance health',
        left: [
          fleet.metricUnhealthyInstances({ label: 'unhealthy' }),
          fleet.fleetMetric(FleetMetric.STALE_INSTANCES, { statistic: cloudwatch.Stats.MAXIMUM, label: 'stale heartbeat' }),
        ],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Fleet Lambdas: errors',
        left: [
          fleet.scaler.function.metricErrors({ period: fiveMinutes, label: 'scaler' }),
          fleet.reconciler.function.metricErrors({ period: fiveMinutes, label: 'reconciler' }),
        ],
        width: 8,
      }),
    );
  }

  private lambdaErrorsAlarm(id: string, metric: cloudwatch.Metric, description: string): cloudwatch.Alarm {
    return metric.createAlarm(this, id, {
      alarmDescription: description,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
