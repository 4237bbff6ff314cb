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

export const ROLLOUT_HELP = `
What it does:
  Moves the fleet to a new launch template version (a new AMI, a new fleetd, a new config)
  without cutting a task. "start" points the Auto Scaling group at the new version, so every
  new instance runs it, and puts a rollout marker on the group. Each fleetd reads the marker
  (about once a minute); an instance of another version retires: it claims nothing new, lets
  its running tasks finish, however long they run (only their own timeouts apply, no drain
  budget), then terminates itself. The scaler does not count retiring instances as capacity,
  so it brings up new ones for the queue.

  "status" lists old and new instances and the tasks still on old ones; "abort" puts the
  group back on the previous version and removes the marker (retiring instances that have not
  left serve again); "finish" removes the marker once no old instance is left.

When to use it, and when instance refresh is better:
  Use a rollout when tasks run long (more than the drain budget, 10 minutes by default): an
  instance refresh drains each instance within that budget and releases what still runs, so
  those tasks start over. For a fleet of short tasks, or to replace instances now whatever
  they run, an instance refresh is simpler and faster (infra/README.md).

Exit codes: 0 done; 2 usage, or the group's state refuses it (no rollout under way, another
one is, no such version, old instances left for "finish"); 4 AWS could not be reached or refused.

Examples:
  $ fleet rollout start                              # to the launch template's latest version
  $ fleet rollout start --launch-template-version 7
  $ fleet rollout status --json | jq '.tasks_on_old'
  $ fleet rollout abort
  $ fleet rollout finish`;

function rolloutFor(ctx: CliContext, env: NodeJS.ProcessEnv = process.env): FleetRollout {
  const asgName = env[FLEET_ENV.asgName];
  if (!asgName) throw new UsageError(`no Auto Scaling group: ${FLEET_ENV.asgName} is not set`, 'the CDK stack outputs FLEET_ASG_NAME; the local stack\'s .fleet/local.env has it');
  return new FleetRollout(ctx.client.clients, asgName, ctx.client);
}

/** `--launch-template-version N`: a version number, checked before any AWS call. */
export function parseLaunchTemplateVersion(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,9}$/.test(value)) throw new UsageError(`--launch-template-version: got ${JSON.stringify(value)}, expected a version number such as 7`, '"aws ec2 describe-launch-template-versions --launch-template-id lt-…" lists them');
  return value;
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
