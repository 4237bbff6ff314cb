/**
 * `fleet reconcile --once` and `fleet scale --once`: one pass of the fleet's two scheduled
 * Lambdas, run from a terminal with the CLI's clients and FLEET_* names. The code is the
 * Lambdas' own (infra/handlers/reconcile/run.ts `reconcileOnce`, infra/handlers/scaler.ts
 * `scaleOnce`), so what an operator sees here is what the schedule does.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { AbcaHeartbeatMirror } from '../../daemon/src/abca-mirror';
import { connectionConfig } from '../../daemon/src/aws';
import { FLEET_ENV } from '../../daemon/src/contract';
import { Logger } from '../../daemon/src/log';
import type { ReconcileOptions } from '../../infra/handlers/reconcile/decide';
import { reconcileOnce, type ReconcileReport } from '../../infra/handlers/reconcile/run';
import { ScalerError, scaleOnce, type ScalingDecision } from '../../infra/handlers/scaler';
import { ScalerConfigError, scalerConfigFromEnv, type ScalerConfig } from '../../infra/handlers/scaler-config';
import type { CliContext } from './config';
import { extraCaHttpsAgent } from './deferred-ca';
import { EXIT, UsageError } from './errors';
import { formatDuration, formatTime, printJson, table } from './format';

export { RECONCILE_HELP, SCALE_HELP, reconcileOptionsFromFlags, type ReconcileFlags } from './operate-options';

/** The report with snake_case keys, as `--json` prints it. */
export function reportJson(r: ReconcileReport): Record<string, unknown> {
  return {
    started_at: r.startedAt,
    duration_ms: r.durationMs,
    scanned: r.scanned,
    resent: r.resent,
    requeued: r.requeued,
    failed: r.failed,
    cancelled: r.cancelled,
    raced: r.raced,
    resend_deferred: r.resendDeferred,
    stale_instances: r.staleInstances,
    errors: r.errors,
  };
}

const ACTION_LINES = new Set(['reconciler.resend', 'reconciler.requeue', 'reconciler.fail', 'reconciler.cancel', 'reconciler.raced']);

export async function reconcileCommand(ctx: CliContext, o: { json?: boolean; options: ReconcileOptions }): Promise<number> {
  const { clients } = ctx.client;
  // Human output: one stderr line per action, with its reason; the report's table on stdout.
  const log = (line: object) => {
    const l = line as { msg?: string; task_id?: string; why?: string; note?: string };
    if (!o.json && l.msg && ACTION_LINES.has(l.msg)) process.stderr.write(`${l.msg.slice('reconciler.'.length)} ${l.task_id}: ${l.why ?? l.note ?? ''}\n`);
  };
  const abcaTable = process.env[FLEET_ENV.abcaTaskTable]?.trim();
  // The mirror's own lines (a failed ABCA write) go to stderr; stdout keeps the report.
  const abcaMirror = abcaTable ? new AbcaHeartbeatMirror({ ddb: clients.ddb, table: abcaTable, log: new Logger({ component: 'reconcile' }, undefined, 'warn', (line) => process.stderr.write(`${line}\n`)) }) : undefined;
  const report = await reconcileOnce({ ddb: clients.ddb, sqs: clients.sqs, names: ctx.names, log, ...(abcaMirror ? { abcaMirror } : {}) }, o.options);
  if (o.json) {
    printJson(reportJson(report));
    return report.errors.length > 0 ? EXIT.passErrors : EXIT.ok;
  }
  const tasks = (ids: readonly string[]) => (ids.length ? ids.join(',') : '-');
  const rows = [
    ['resent', String(report.resent.length), tasks(report.resent)],
    ['requeued', String(report.requeued.length), tasks(report.requeued)],
    ['failed', String(report.failed.length), tasks(report.failed)],
    ['cancelled', String(report.cancelled.length), tasks(report.cancelled)],
    ['raced', String(report.raced.length), tasks(report.raced)],
    ['deferred', String(report.resendDeferred), report.resendDeferred ? 'resends held back: the queue still holds that many messages' : '-'],
  ];
  process.stdout.write(`${table(['outcome', 'count', 'tasks'], rows)}\n`);
  if (report.staleInstances.length > 0) {
    const stale = report.staleInstances.map((s) => [s.instance_id, s.status, `${formatDuration(s.silent_ms)} (since ${formatTime(s.last_seen_at)})`, s.running.length ? s.running.join(',') : '-']);
    process.stdout.write(`\n${table(['stale instance', 'status', 'silent', 'running'], stale)}\n`);
  }
  for (const e of report.errors) process.stderr.write(`error: ${e.name}: ${e.message}\n`);
  process.stderr.write(`${report.scanned} unfinished task(s) examined in ${formatDuration(report.durationMs)}${report.errors.length ? `; ${report.errors.length} error(s), the next pass retries them` : ''}\n`);
  return report.errors.length > 0 ? EXIT.passErrors : EXIT.ok;
}

/** The decision with snake_case keys, as `--json` prints it. */
export function decisionJson(d: ScalingDecision): Record<string, unknown> {
  return {
    fleet_name: d.fleetName,
    asg_name: d.asgName,
    visible: d.visible,
    in_flight: d.inFlight,
    slots_per_instance: d.slotsPerInstance,
    buffer: d.buffer,
    min: d.min,
    max: d.max,
    current: d.current,
    desired: d.desired,
    raised: d.raised,
    unhealthy_instances: d.unhealthyInstances,
    retiring: d.retiring ?? 0,
    oldest_unclaimed_task_age_seconds: d.oldestUnclaimedTaskAgeSeconds ?? null,
  };
}

function printDecision(d: ScalingDecision, json: boolean | undefined): void {
  if (json) return printJson(decisionJson(d));
  const age = d.oldestUnclaimedTaskAgeSeconds;
  const rows: Array<[string, string]> = [
    ['group', `${d.asgName} (fleet ${d.fleetName})`],
    ['queue', `${d.visible} waiting, ${d.inFlight} in flight`],
    ['capacity', d.raised ? `${d.current} → ${d.desired} (raised)` : `${d.desired} (unchanged; the scaler never lowers it)`],
    ['sizing', `${d.slotsPerInstance} slot(s) per instance, buffer ${d.buffer}, min ${d.min}, max ${d.max}`],
    ['unhealthy', String(d.unhealthyInstances)],
    ['retiring', d.retiring ? `${d.retiring} (a rollout is under way: they take no new task)` : '0'],
    ['oldest unclaimed', age === undefined ? 'unknown (the tasks table could not be read)' : age === 0 ? 'none' : formatDuration(age * 1000)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`);
}

/** The scaler's configuration from the environment the CLI loaded; a gap is a usage error. */
export function scalerConfigForCli(env: NodeJS.ProcessEnv = process.env): ScalerConfig {
  try {
    return scalerConfigFromEnv(env);
  } catch (err) {
    if (!(err instanceof ScalerConfigError)) throw err;
    throw new UsageError(err.message, 'the CDK stack outputs FLEET_ASG_NAME and FLEET_NAME; the local stack\'s .fleet/local.env has them');
  }
}

export async function scaleCommand(ctx: CliContext, o: { json?: boolean }): Promise<number> {
  const config = scalerConfigForCli();
  const { clients } = ctx.client;
  const deps = {
    sqs: clients.sqs,
    autoscaling: clients.autoscaling,
    cloudwatch: clients.cloudwatch,
    // The scaler queries with the low-level client (typed attribute values).
    dynamodb: new DynamoDBClient({ region: clients.region, maxAttempts: 4, ...connectionConfig(extraCaHttpsAgent()) }),
    now: () => Date.now(),
    log: () => undefined,
  };
  try {
    printDecision(await scaleOnce(deps, config), o.json);
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof ScalerError)) throw err;
    // A failure after the decision was carried out (metrics, the task-age read) still shows it.
    if (err.decision) printDecision(err.decision, o.json);
    process.stderr.write(`fleet: scaler ${err.message}\n  hint: ${err.retryable ? 'a transient fault; run it again' : 'check FLEET_ASG_NAME, the region and the permissions'}\n`);
    return EXIT.failure;
  }
}
