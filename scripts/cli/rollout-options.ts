/**
 * What `fleet rollout` needs before any configuration is read: its help and the version flag,
 * checked. No AWS client here (program.ts imports ./rollout only when a subcommand runs).
 */
import { UsageError } from './errors';

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

/** `--launch-template-version N`: a version number, checked before any AWS call. */
export function parseLaunchTemplateVersion(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,9}$/.test(value)) throw new UsageError(`--launch-template-version: got ${JSON.stringify(value)}, expected a version number such as 7`, '"aws ec2 describe-launch-template-versions --launch-template-id lt-…" lists them');
  return value;
}
