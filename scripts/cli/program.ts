/**
 * The `fleet` command line (commander): every command, its options, its help with an example,
 * and the mapping of outcomes to exit codes. Arguments are checked before any configuration is
 * read, so a usage error never needs a fleet. Commands live in small modules beside this one,
 * each imported only when its command runs (`await import`, lazy in the esbuild bundle too): the
 * AWS SDK is loaded by the command that calls AWS, never by `--help`, `--version` or a usage
 * error (issue #18; figures in docs/benchmarks.md).
 */
import { Command, type OptionValues } from 'commander';
import { ALL_STATUSES, type TaskStatus } from '../../daemon/src/contract/states';
import type { CliContext } from './config';
import type { ReadContext } from './read-context';
import { EXIT, describeError } from './errors';
import { RECONCILE_HELP, SCALE_HELP, reconcileOptionsFromFlags, type ReconcileFlags } from './operate-options';
import { ROLLOUT_HELP, parseLaunchTemplateVersion } from './rollout-options';
import { collect, parseCount, parseStatuses, parseTaskId } from './parse';
import type { LogsOptions } from './logs';
import type { SubmitOptions } from './submit';
import { versionLine } from '../../daemon/src/version';

const LOGS_HELP = `
Where the output comes from (said on stderr):
  1. CloudWatch Logs: fleetd ships each attempt's output (redacted, as its log file has it) to
     the stream <task_id>/<attempt> in the fleet's task log group ($FLEET_LOG_GROUP). Works from
     any machine with read access; --follow shows each line about a second after it was printed.
  2. The task's log file, when this machine is the instance that ran it (--log-dir).
  3. The last 8 KiB kept in the task record when the task ended.
Lines dropped under back-pressure (a flooding container) are counted in the stream:
  "[fleetd] dropped N lines (M bytes) under back-pressure". docs/logs.md has the limits.`;

const ARTIFACTS_HELP = `
After the container exits, fleetd uploads what the agent wrote under /fleet/output (except
result.json, which is in the record) to s3://$FLEET_PAYLOAD_BUCKET/artifacts/<task_id>/<attempt>/.
Caps (fleetd config "artifacts"): 100 files, 100 MiB per file, 1 GiB in all; symbolic links and
special files are never uploaded; names are sanitised. docs/logs.md has the details.`;

const EXAMPLE_ID = 't-01jd8x5k2m3n4p5q6r7s8t9v0w';

const PROGRAM_HELP = `
Configuration:
  The fleet's names come from FLEET_* variables (FLEET_QUEUE_URL, FLEET_DLQ_URL,
  FLEET_TASKS_TABLE, FLEET_EVENTS_TABLE, FLEET_INSTANCES_TABLE, FLEET_PAYLOAD_BUCKET,
  FLEET_CANCEL_DOCUMENT, FLEET_NAME, FLEET_LOG_GROUP); AWS settings from AWS_REGION, AWS_ENDPOINT_URL and the
  SDK's credential chain. --env-file FILE loads KEY=VALUE lines first. With no FLEET_QUEUE_URL
  set, in an agent-fleet checkout, the local stack's .fleet/local.env is used (stderr says so);
  anywhere else nothing is guessed.
  NODE_EXTRA_CA_CERTS is read at the first TLS connection, not at node's start.
  The standalone bundle (dist/bundle/fleet) keeps a V8 code cache for status and list in
  $XDG_CACHE_HOME/agent-fleet or ~/.cache/agent-fleet (mode 700); FLEET_NO_CODE_CACHE=1 turns it off.

Exit codes:
  0  ok (a cancel of a finished task is ok too)
  1  watch / submit --follow: the task ended FAILED, TIMED_OUT or CANCELLED;
     reconcile --once: the pass ran but reported errors
  2  usage error: bad arguments or configuration; nothing was done
  3  no such task
  4  AWS could not be reached or refused the request
  130 watch interrupted with Ctrl-C (the task goes on)

Examples:
  $ fleet submit --image agent-fleet/demo-agent:latest --prompt "fix the flaky test" --follow
  $ fleet list --status running
  $ fleet cancel ${EXAMPLE_ID} --wait
  $ fleet instances --json
  $ fleet reconcile --once

docs/cli.md describes every command.`;

function examples(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('fleet')
    .description('Submit, watch, cancel and inspect tasks of an agent-fleet (a pull-based EC2 fleet for long agent containers).')
    .option('--env-file <file>', 'load the fleet\'s variables (KEY=VALUE lines) from this file first')
    .version(versionLine('fleet'), '-V, --version', 'print the package version and the git commit it was built from')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`fleet: ${str.replace(/^error: /, '')}`) })
    .showHelpAfterError('  hint: "fleet --help" lists the commands')
    .addHelpText('after', PROGRAM_HELP);

  /** A subcommand with the shared error hint and its examples. */
  const command = (name: string, description: string, ...example: string[]) =>
    program
      .command(name)
      .description(description)
      .showHelpAfterError(`  hint: "fleet ${name.split(' ')[0]} --help" shows the options and an example`)
      .addHelpText('after', examples(...example));

  /** Runs a command with the fleet's context (created only after the arguments were checked). */
  const run = async (cmd: Command, body: (ctx: CliContext, opts: OptionValues) => Promise<number>) => {
    const opts = cmd.optsWithGlobals();
    const { createContext } = await import('./config');
    return body(createContext({ envFile: opts.envFile as string | undefined }), opts).then(setExit);
  };

  /** `fleet status` and `fleet list`: the DynamoDB client alone (read-context.ts), not every AWS client. */
  const runRead = async (cmd: Command, body: (ctx: ReadContext) => Promise<number>) => {
    const opts = cmd.optsWithGlobals();
    const { createReadContext } = await import('./read-context');
    return body(createReadContext({ envFile: opts.envFile as string | undefined })).then(setExit);
  };

  /** A command on one task: `<id>` checked before anything else, then `body`. */
  const taskCommand = (name: string, description: string, ...example: string[]) => command(name, description, ...example).argument('<id>', 'task id');
  const onTask = <O>(body: (ctx: CliContext, taskId: string, o: O) => Promise<number>) => (id: string, o: O, cmd: Command) => {
    const taskId = parseTaskId(id);
    return run(cmd, (ctx) => body(ctx, taskId, o));
  };
  const LOG_DIR_HELP = 'where fleetd keeps task logs on this machine (default $FLEETD_WORK_DIR/logs, /var/lib/fleetd/logs)';

  command('submit', 'submit a task; prints its id',
    'fleet submit --image agent-fleet/demo-agent:latest --prompt "fix the bug" --env LOG_LEVEL=debug --memory 2g --timeout 90m',
    'fleet submit --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:1.4 --payload-file task.json --secret GITHUB_TOKEN=arn:aws:secretsmanager:us-east-1:123456789012:secret:gh --follow')
    .requiredOption('--image <image>', 'container image (from a registry the fleet allows)')
    .option('--payload-file <file>', 'JSON object handed to the agent (AGENT_PAYLOAD and /fleet/payload.json); - reads stdin')
    .option('--prompt <text>', 'shorthand for the payload {"prompt": TEXT}')
    .option('--env <NAME=VALUE>', 'environment variable for the agent (repeatable)', collect, [])
    .option('--secret <NAME=ARN>', 'Secrets Manager ARN resolved by fleetd into NAME (repeatable)', collect, [])
    .option('--cpus <n>', 'CPU limit, e.g. 2 or 0.5 (default 1)')
    .option('--memory <size>', 'memory limit, e.g. 512m or 2g (default 2g)')
    .option('--timeout <duration>', 'task timeout, e.g. 90s, 15m, 2h, 1h30m (default 2h, at most 11h)')
    .option('--idempotency-key <key>', 'submitting again with the same key returns the same task')
    .option('--follow', 'watch the task until it ends (exit code 1 when it fails)')
    .option('--log-dir <dir>', 'with --follow: where fleetd keeps task logs on this machine')
    .option('--json', 'print {task_id, created, status} (with --follow: JSON lines)')
    .action((o: SubmitOptions, cmd: Command) => run(cmd, async (ctx) => (await import('./submit')).submitCommand(ctx, o)));

  taskCommand('status', 'show one task: status, where it runs, heartbeat, outcome and result', `fleet status ${EXAMPLE_ID}`, `fleet status ${EXAMPLE_ID} --json | jq .result`)
    .option('--json', 'print the task record as JSON')
    .action((id: string, o: { json?: boolean }, cmd: Command) => {
      const taskId = parseTaskId(id);
      return runRead(cmd, async (ctx) => (await import('./tasks')).statusCommand(ctx, taskId, o));
    });

  command('list', 'list tasks, newest first', 'fleet list --status running,queued --limit 50', 'fleet list --status failed --json')
    .option('--status <statuses>', `only these statuses, comma-separated (${ALL_STATUSES.join(', ').toLowerCase()})`)
    .option('--limit <n>', 'tasks per page, 1-1000', '20')
    .option('--cursor <cursor>', 'the next page (printed after a full page)')
    .option('--json', 'print {tasks, next_cursor} as JSON')
    .action((o: { status?: string; limit: string; cursor?: string; json?: boolean }, cmd: Command) => {
      const statuses: TaskStatus[] | undefined = o.status !== undefined ? parseStatuses(o.status) : undefined;
      const limit = parseCount(o.limit, '--limit');
      return runRead(cmd, async (ctx) => (await import('./tasks')).listCommand(ctx, { statuses, limit, cursor: o.cursor, json: o.json, statusText: o.status }));
    });

  taskCommand('watch', 'follow a task until it ends: events, live status with heartbeat age, output, then the result', `fleet watch ${EXAMPLE_ID}`, `fleet watch ${EXAMPLE_ID} --json`)
    .option('--json', 'print events and status changes as JSON lines')
    .option('--log-dir <dir>', LOG_DIR_HELP)
    .action(onTask(async (ctx, taskId, o: { json?: boolean; logDir?: string }) => (await import('./watch')).watchTask(ctx.client, taskId, o)));

  taskCommand(
    'logs',
    "print a task's output: its CloudWatch Logs stream (any machine), else its log file on this machine, else the tail kept in the record; stderr says which",
    `fleet logs ${EXAMPLE_ID}`,
    `fleet logs ${EXAMPLE_ID} --follow`,
    `fleet logs ${EXAMPLE_ID} --attempt 1`,
  )
    .option('--follow', 'keep printing until the task ends (a new attempt is followed when it starts)')
    .option('--attempt <n>', "which attempt's stream (default: the current one)")
    .option('--log-dir <dir>', LOG_DIR_HELP)
    .option('--json', 'print {task_id, status, source, text} as JSON (source: cloudwatch, file or record)')
    .addHelpText('after', LOGS_HELP)
    .action(onTask(async (ctx, taskId, o: Omit<LogsOptions, 'attempt'> & { attempt?: string }) =>
      (await import('./logs')).logsCommand(ctx, taskId, { ...o, attempt: o.attempt !== undefined ? parseCount(o.attempt, '--attempt', 1, 1000) : undefined })));

  taskCommand('artifacts', 'list (and download) the files the agent left under /fleet/output, uploaded when the attempt ended', `fleet artifacts ${EXAMPLE_ID}`, `fleet artifacts ${EXAMPLE_ID} --download ./out`, `fleet artifacts ${EXAMPLE_ID} --attempt 2 --json`)
    .option('--attempt <n>', "which attempt's artifacts (default: the current one)")
    .option('--download <dir>', 'write the files under this directory (never overwrites a file)')
    .option('--json', 'print {task_id, attempt, summary, artifacts: [{key, path, size}]} as JSON')
    .addHelpText('after', ARTIFACTS_HELP)
    .action(onTask(async (ctx, taskId, o: { attempt?: string; download?: string; json?: boolean }) =>
      (await import('./artifacts')).artifactsCommand(ctx, taskId, { ...o, attempt: o.attempt !== undefined ? parseCount(o.attempt, '--attempt', 1, 1000) : undefined })));

  taskCommand('cancel', 'cancel a task: a queued one never starts; a running one gets SIGTERM, then SIGKILL after the grace period', `fleet cancel ${EXAMPLE_ID}`, `fleet cancel ${EXAMPLE_ID} --wait`)
    .option('--wait', 'wait until the task has stopped')
    .option('--json', 'print the outcome as JSON')
    .action(onTask(async (ctx, taskId, o: { wait?: boolean; json?: boolean }) => (await import('./cancel')).cancelCommand(ctx, taskId, o)));

  command('instances', "list the fleet's instances: idle / busy / draining / unhealthy, running task, last heartbeat, uptime", 'fleet instances', 'fleet instances --json')
    .option('--json', 'print {instances, warnings} as JSON')
    .action((o: { json?: boolean }, cmd: Command) => run(cmd, async (ctx) => (await import('./instances')).instancesCommand(ctx, o)));

  /** An operator's one-off run of a scheduled Lambda; its help teaches what, when, and how. */
  const once = (name: string, description: string, help: string) =>
    program
      .command(name)
      .description(description)
      .requiredOption('--once', 'run one pass now (required: the recurring runs are the scheduled Lambda\'s)')
      .option('--json', 'print the outcome as JSON (snake_case keys)')
      .showHelpAfterError(`  hint: "fleet ${name} --help" explains what it does and when to use it`)
      .addHelpText('after', help);

  once('reconcile', 'one reconciler pass: resend lost messages, fail tasks past their attempts, finish orphaned cancels; report stale instances', RECONCILE_HELP)
    .option('--resend-after <duration>', "resend a message silent this long (e.g. 5m; more than the lease; default 5m or 2.5 leases)")
    .option('--lease <duration>', "the fleet's lease when fleetd's config changes it (default 2m)")
    .option('--heartbeat <duration>', "the fleet's heartbeat when fleetd's config changes it (default 30s)")
    .action((o: ReconcileFlags & { json?: boolean }, cmd: Command) => {
      const options = reconcileOptionsFromFlags(o);
      return run(cmd, async (ctx) => (await import('./operate')).reconcileCommand(ctx, { json: o.json, options }));
    });

  once('scale', 'one scaler tick: read the backlog and the group, raise desired capacity when short, publish the metrics; print the decision', SCALE_HELP)
    .action((o: { json?: boolean }, cmd: Command) => run(cmd, async (ctx) => (await import('./operate')).scaleCommand(ctx, o)));

  const rollout = program
    .command('rollout')
    .description('move the fleet to a new launch template version without cutting a task: old instances finish their tasks, then leave')
    .showHelpAfterError('  hint: "fleet rollout --help" explains the rollout and shows the subcommands')
    .addHelpText('after', ROLLOUT_HELP);
  /** A rollout subcommand, with --json and its example. */
  const rolloutCommand = (name: string, description: string, ...example: string[]) =>
    rollout
      .command(name)
      .description(description)
      .option('--json', 'print the outcome as JSON (snake_case keys)')
      .showHelpAfterError(`  hint: "fleet rollout ${name} --help" shows the options; "fleet rollout --help" explains the rollout`)
      .addHelpText('after', examples(...example));
  rolloutCommand('start', 'point the group at the new version and mark the rollout: old instances claim nothing new, finish what they run, then terminate themselves', 'fleet rollout start', 'fleet rollout start --launch-template-version 7')
    .option('--launch-template-version <n>', 'the version to roll out (default: the launch template\'s latest)')
    .action((o: { launchTemplateVersion?: string; json?: boolean }, cmd: Command) => {
      const launchTemplateVersion = parseLaunchTemplateVersion(o.launchTemplateVersion);
      return run(cmd, async (ctx) => (await import('./rollout')).rolloutStartCommand(ctx, { launchTemplateVersion, json: o.json }));
    });
  rolloutCommand('status', 'old and new instances (launch template version, state) and the tasks still on old ones', 'fleet rollout status', 'fleet rollout status --json | jq .tasks_on_old')
    .action((o: { json?: boolean }, cmd: Command) => run(cmd, async (ctx) => (await import('./rollout')).rolloutStatusCommand(ctx, o)));
  rolloutCommand('abort', 'put the group back on the previous version and remove the marker; retiring instances that have not left serve again', 'fleet rollout abort')
    .action((o: { json?: boolean }, cmd: Command) => run(cmd, async (ctx) => (await import('./rollout')).rolloutAbortCommand(ctx, o)));
  rolloutCommand('finish', 'remove the marker once no old instance is left (a later launch template change must not retire instances)', 'fleet rollout finish')
    .option('--force', 'remove it even though old instances are left (they claim again)')
    .action((o: { force?: boolean; json?: boolean }, cmd: Command) => run(cmd, async (ctx) => (await import('./rollout')).rolloutFinishCommand(ctx, o)));

  const dlq = program
    .command('dlq')
    .description('inspect and redrive the dead-letter queue')
    .showHelpAfterError('  hint: "fleet dlq --help" shows the subcommands')
    .addHelpText('after', examples('fleet dlq list', 'fleet dlq redrive --dry-run'));
  dlq
    .command('list')
    .description('show dead-lettered messages, with the task and the reason (they stay in the queue)')
    .option('--limit <n>', 'at most this many messages, 1-1000', '50')
    .option('--json', 'print {dead_letters} as JSON')
    .showHelpAfterError('  hint: "fleet dlq list --help" shows the options and an example')
    .addHelpText('after', examples('fleet dlq list --limit 10'))
    .action((o: { limit: string; json?: boolean }, cmd: Command) => {
      const limit = parseCount(o.limit, '--limit');
      return run(cmd, async (ctx) => (await import('./instances')).dlqListCommand(ctx, { limit, json: o.json }));
    });
  dlq
    .command('redrive')
    .description('send runnable tasks back to the task queue; delete letters of finished tasks; keep the rest')
    .option('--task-id <id>', 'only the letters of this task')
    .option('--limit <n>', 'at most this many messages, 1-1000', '100')
    .option('--dry-run', 'only say what would be done')
    .option('--json', 'print the outcomes as JSON')
    .showHelpAfterError('  hint: "fleet dlq redrive --help" shows the options and an example')
    .addHelpText('after', examples('fleet dlq redrive --dry-run', `fleet dlq redrive --task-id ${EXAMPLE_ID}`))
    .action((o: { taskId?: string; limit: string; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      const taskId = o.taskId !== undefined ? parseTaskId(o.taskId) : undefined;
      const limit = parseCount(o.limit, '--limit');
      return run(cmd, async (ctx) => (await import('./instances')).dlqRedriveCommand(ctx, { limit, taskId, dryRun: o.dryRun, json: o.json }));
    });

  return program;
}

/** Parses argv, runs the command, returns the exit code; every error is printed by describeError. */
export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  let command: string | undefined;
  const program = buildProgram((c) => (code = c));
  // The command being run, for the hint of a usage error found by its action.
  program.hook('preAction', (_program, action) => {
    command = action.parent && action.parent !== program ? `${action.parent.name()} ${action.name()}` : action.name();
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    const report = describeError(err, { tasksTable: process.env.FLEET_TASKS_TABLE, command });
    for (const line of report.lines) process.stderr.write(`${line}\n`);
    if (process.env.FLEET_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return report.code;
  }
}
