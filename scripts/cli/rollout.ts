/**
 * `fleet rollout start|status|abort|finish`: move the fleet to a new launch template version
 * without cutting a task (scripts/lib/rollout.ts; docs/operations.md "Rolling out a new launch
 * template version").
 */
import { FLEET_ENV, type RolloutMarker } from '../../daemon/src/contract';
import { FleetRollout, type RolloutStatus } from '../lib/rollout';
import type { CliContext } from './config';
import { EXIT, UsageError } from './errors';
import { printJson, table } from './format';

function rolloutFor(ctx: CliContext, env: NodeJS.ProcessEnv = process.env): FleetRollout {
  const asgName = env[FLEET_ENV.asgName];
  if (!asgName) throw new UsageError(`no Auto Scaling group: ${FLEET_ENV.asgName} is not set`, 'the CDK stack outputs FLEET_ASG_NAME; the local stack\'s .fleet/local.env has it');
  return new FleetRollout(ctx.client.clients, asgName, ctx.client);
}

export function markerJson(m: RolloutMarker): Record<string, unknown> {
  return { launch_template_id: m.launch_template_id, target_version: m.target_version, previous_version: m.previous_version, started_at: m.started_at };
}

/** `fleet rollout start|abort|finish --json`: the outcome and the marker it acted on. */
export function rolloutOutcomeJson(outcome: 'started' | 'aborted' | 'finished', m: RolloutMarker, oldLeft: readonly string[] = []): Record<string, unknown> {
  return {
    outcome,
    rollout: markerJson(m),
    ...(outcome === 'aborted' ? { restored_version: m.previous_version } : {}),
    ...(outcome === 'finished' ? { old_left: [...oldLeft] } : {}),
  };
}

/** `fleet rollout status --json`. */
export function rolloutStatusJson(s: RolloutStatus): Record<string, unknown> {
  return {
    asg_name: s.asgName,
    rollout: s.marker ? markerJson(s.marker) : null,
    group_version: s.groupVersion ?? null,
    done: s.done,
    instances: s.instances.map((i) => ({
      instance_id: i.instanceId,
      generation: i.generation,
      launch_template_version: i.launchTemplateVersion ?? null,
      status: i.status,
      lifecycle_state: i.lifecycleState ?? null,
      running: i.running,
    })),
    tasks_on_old: s.tasksOnOld.map((t) => ({ task_id: t.taskId, instance_id: t.instanceId })),
    warnings: s.warnings,
  };
}

export function formatRolloutStatus(s: RolloutStatus): string {
  const head = s.marker
    ? `rollout of ${s.asgName} to launch template ${s.marker.launch_template_id} version ${s.marker.target_version} (from ${s.marker.previous_version}), started ${s.marker.started_at}${s.done ? ': no old instance left; "fleet rollout finish" ends it' : ''}`
    : `no rollout under way on ${s.asgName} (the group launches version ${s.groupVersion ?? 'unknown'})`;
  const rows = s.instances.map((i) => [i.instanceId, i.generation, i.launchTemplateVersion ?? '-', i.status, i.lifecycleState ?? '-', i.running.length ? i.running.join(',') : '-']);
  const old = s.tasksOnOld.length ? `\n${s.tasksOnOld.length} task(s) still on old instances: ${s.tasksOnOld.map((t) => `${t.taskId} (${t.instanceId})`).join(', ')}` : s.marker ? '\nno task left on old instances' : '';
  return `${head}\n${rows.length ? table(['instance', 'generation', 'lt version', 'status', 'group state', 'running'], rows) : 'no instances'}${old}`;
}

export async function rolloutStartCommand(ctx: CliContext, o: { launchTemplateVersion?: string; json?: boolean }): Promise<number> {
  const marker = await rolloutFor(ctx).start({ targetVersion: o.launchTemplateVersion });
  if (o.json) printJson(rolloutOutcomeJson('started', marker));
  else process.stdout.write(`rollout started: new instances launch version ${marker.target_version}; old ones (from ${marker.previous_version}) retire once their tasks end\n  follow it: fleet rollout status\n`);
  return EXIT.ok;
}

export async function rolloutStatusCommand(ctx: CliContext, o: { json?: boolean }): Promise<number> {
  const status = await rolloutFor(ctx).status();
  for (const w of status.warnings) process.stderr.write(`warning: ${w}\n`);
  if (o.json) printJson(rolloutStatusJson(status));
  else process.stdout.write(`${formatRolloutStatus(status)}\n`);
  return EXIT.ok;
}

export async function rolloutAbortCommand(ctx: CliContext, o: { json?: boolean }): Promise<number> {
  const marker = await rolloutFor(ctx).abort();
  if (o.json) printJson(rolloutOutcomeJson('aborted', marker));
  else process.stdout.write(`rollout aborted: the group launches version ${marker.previous_version} again; retiring instances that have not left serve again (instances of version ${marker.target_version} stay and serve)\n`);
  return EXIT.ok;
}

export async function rolloutFinishCommand(ctx: CliContext, o: { force?: boolean; json?: boolean }): Promise<number> {
  const { marker, oldLeft } = await rolloutFor(ctx).finish({ force: o.force });
  if (o.json) printJson(rolloutOutcomeJson('finished', marker, oldLeft));
  else process.stdout.write(`rollout to version ${marker.target_version} finished: the marker is removed${oldLeft.length ? ` (forced: ${oldLeft.join(', ')} will claim again)` : ''}\n`);
  return EXIT.ok;
}
