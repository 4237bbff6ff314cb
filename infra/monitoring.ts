/**
 * The fleet's alarms and dashboard. Each alarm answers one operator question:
 *
 * - DeadLetterQueueNotEmpty  — did a task message fail for good (poison, or rejected by fleetd)?
 * - OldestTaskAge            — is a task waiting longer than it should (no capacity, boot loop)?
 * - UnhealthyInstances       — are instances failing preflight or health checks repeatedly?
 * - StaleInstances           — is an instance alive but its fleetd silent (a zombie costing money)?
 * - ScalerNotReporting       — has the scaler stopped publishing (then nothing scales out)?
 * - ScalerErrors / ReconcilerErrors — are the Lambdas failing?
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { DLQ_REASON_ATTRIBUTE } from '../daemon/src/contract';
import type { AgentFleet } from './agent-fleet';
import { FleetMetric } from './metrics';

export interface FleetMonitoringProps {
  readonly fleet: AgentFleet;
  readonly oldestTaskAgeThreshold: Duration;
  /**
   * @default - no alarm actions
   */
  readonly alarmTopic?: sns.ITopic;
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
    const name = fleet.fleetName;
    const oneMinute = Duration.minutes(1);
    const fiveMinutes = Duration.minutes(5);

    this.deadLetterQueueNotEmpty = fleet.deadLetterQueue
      .metricApproximateNumberOfMessagesVisible({ period: oneMinute, statistic: cloudwatch.Stats.MAXIMUM })
      .createAlarm(this, 'DeadLetterQueueNotEmpty', {
        alarmDescription: `agent-fleet ${name}: messages in the dead-letter queue. Inspect them (the ${DLQ_REASON_ATTRIBUTE} attribute says why), fix, and redrive.`,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.oldestTaskAge = fleet.metricOldestTaskAge({ period: oneMinute }).createAlarm(this, 'OldestTaskAge', {
      alarmDescription: `agent-fleet ${name}: a task has waited more than ${props.oldestTaskAgeThreshold.toHumanString()} without being claimed. Check the group's max size, instance boots, and the scaler's logs.`,
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
      alarmDescription: `agent-fleet ${name}: instances keep turning unhealthy. Read the instances table (reason, boot_failed_at) and the instances' fleetd journal.`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.staleInstances = fleet
      .fleetMetric(FleetMetric.STALE_INSTANCES, { period: fiveMinutes, statistic: cloudwatch.Stats.MAXIMUM })
      .createAlarm(this, 'StaleInstances', {
        alarmDescription: `agent-fleet ${name}: an instance row has a stale heartbeat for 15 minutes (fleetd dead on a live instance?). The reconciler's log names it.`,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.scalerNotReporting = fleet
      .metricScalerDesiredCapacity({ period: fiveMinutes, statistic: cloudwatch.Stats.SAMPLE_COUNT })
      .createAlarm(this, 'ScalerNotReporting', {
        alarmDescription: `agent-fleet ${name}: the scaler published no decision for 10 minutes; nothing scales out. Check the scaler Lambda's logs and schedule.`,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 2,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
    this.scalerErrors = this.lambdaErrorsAlarm('ScalerErrors', fleet.scaler.function.metricErrors({ period: fiveMinutes }), `agent-fleet ${name}: scaler invocations fail`);
    if (fleet.reconciler) {
      this.reconcilerErrors = this.lambdaErrorsAlarm(
        'ReconcilerErrors',
        fleet.reconciler.function.metricErrors({ period: fiveMinutes }),
        `agent-fleet ${name}: reconciler runs report errors`,
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
        markdown: `# agent-fleet ${name}\nQueue → scaler → instances. Scale-in is each instance's own idle self-termination; the scaler only raises desired capacity.`,
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
          ...(fleet.reconciler ? [fleet.reconciler.function.metricErrors({ period: fiveMinutes, label: 'reconciler' })] : []),
        ],
        width: 8,
      }),
    );
  }

  private lambdaErrorsAlarm(id: string, metric: cloudwatch.Metric, description: string): cloudwatch.Alarm {
    return metric.createAlarm(this, id, {
      alarmDescription: `${description}; their log group has one JSON line per failure.`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
