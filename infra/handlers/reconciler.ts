/**
 * The reconciler Lambda: runs `reconcileOnce` (reconcile/run.ts) on a schedule and publishes
 * the count of stale instances as a fleet metric. The decisions are reconcile/decide.ts; the
 * writes are the store's (daemon/src/store). `fleet reconcile --once` runs the same pass.
 */
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AbcaHeartbeatMirror } from '../../daemon/src/abca-mirror';
import { FLEET_ENV } from '../../daemon/src/contract';
import { Logger } from '../../daemon/src/log';
import { reconcileOnce, type ReconcileReport, type ReconcilerNames } from './reconcile/run';
import { FLEET_METRIC_DIMENSION, FLEET_METRICS_NAMESPACE, FleetMetric, METRICS_NAMESPACE_ENV } from '../metrics';

export interface ReconcilerHandlerConfig {
  readonly fleetName: string;
  readonly names: ReconcilerNames;
  readonly metricsNamespace: string;
  /** ABCA's TaskTable (FLEET_ABCA_TASK_TABLE), told of the ABCA tasks a pass ends. */
  readonly abcaTaskTable?: string;
}

export function reconcilerConfigFromEnv(env: NodeJS.ProcessEnv): ReconcilerHandlerConfig {
  const missing: string[] = [];
  const read = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) missing.push(name);
    return value ?? '';
  };
  const config = {
    fleetName: read(FLEET_ENV.fleetName),
    names: {
      tasksTable: read(FLEET_ENV.tasksTable),
      eventsTable: read(FLEET_ENV.eventsTable),
      instancesTable: read(FLEET_ENV.instancesTable),
      queueUrl: read(FLEET_ENV.queueUrl),
    },
    metricsNamespace: env[METRICS_NAMESPACE_ENV]?.trim() || FLEET_METRICS_NAMESPACE,
    ...(env[FLEET_ENV.abcaTaskTable]?.trim() ? { abcaTaskTable: env[FLEET_ENV.abcaTaskTable]!.trim() } : {}),
  };
  if (missing.length > 0) {
    throw new Error(`reconciler configuration: ${missing.join(', ')} not set; the AgentFleet construct sets them on the Lambda`);
  }
  return config;
}

let clients: { ddb: DynamoDBDocumentClient; sqs: SQSClient; cloudwatch: CloudWatchClient } | undefined;

export async function handler(): Promise<Omit<ReconcileReport, 'staleInstances'> & { staleInstances: number }> {
  const config = reconcilerConfigFromEnv(process.env);
  clients ??= {
    ddb: DynamoDBDocumentClient.from(new DynamoDBClient({ maxAttempts: 4 }), { marshallOptions: { removeUndefinedValues: true } }),
    sqs: new SQSClient({ maxAttempts: 4 }),
    cloudwatch: new CloudWatchClient({ maxAttempts: 3 }),
  };
  const abcaMirror = config.abcaTaskTable ? new AbcaHeartbeatMirror({ ddb: clients.ddb, table: config.abcaTaskTable, log: new Logger({ component: 'reconciler' }) }) : undefined;
  const report = await reconcileOnce({ ddb: clients.ddb, sqs: clients.sqs, names: config.names, ...(abcaMirror ? { abcaMirror } : {}) });
  await clients.cloudwatch.send(
    new PutMetricDataCommand({
      Namespace: config.metricsNamespace,
      MetricData: [
        {
          MetricName: FleetMetric.STALE_INSTANCES,
          Dimensions: [{ Name: FLEET_METRIC_DIMENSION, Value: config.fleetName }],
          Value: report.staleInstances.length,
          Unit: 'Count',
        },
      ],
    }),
  );
  const summary = { ...report, staleInstances: report.staleInstances.length };
  console.log(JSON.stringify({ level: report.errors.length > 0 ? 'error' : 'info', event: 'reconciler.run', ...summary }));
  if (report.errors.length > 0) {
    // Fail the invocation so the Lambda Errors metric (and its alarm) sees it; each error was
    // already logged by reconcileOnce with its task id.
    throw new Error(`reconciler: ${report.errors.length} error(s); first: ${report.errors[0].during}: ${report.errors[0].message}`);
  }
  return summary;
}
