/**
 * `fleetd`: the instance daemon's entry point.
 *   fleetd run                 boot preflight, then pull and run tasks until SIGTERM (drains)
 *   fleetd cancel --task-id ID ask the local daemon to cancel a task (the SSM document runs this)
 *   fleetd status [--json]     slots, running tasks, heartbeat ages, draining / idle state, and
 *                              why it is not claiming (draining, low disk, idle check)
 *   fleetd guard [--every S]   stop containers whose lease fleetd did not renew (lease-guard.ts)
 *   fleetd --version           package version and build commit ("unknown" when not recorded)
 * Exit codes: 0 ok · 1 failure (boot preflight, daemon error, cancel refused) · 2 usage
 * (bad arguments, an invalid task id) · 78 invalid configuration (systemd does not restart it).
 */
import './quiet-sdk-warning';
import { installStackSourceMap } from './stack-source-map';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { createAwsClients } from './aws';
import { ConfigError, loadConfig } from './config';
import { DEFAULT_SOCKET_PATH, DEFAULT_TAG_PREFIX, FLEET_ENV, FleetdConfigFileSchema, TASK_ID_PATTERN, type StatusResponse } from './contract';
import { sendControlRequest } from './control';
import { Fleetd } from './daemon';
import { dockerClient } from './docker';
import { ImdsClient } from './imds';
import { InstanceState } from './instance';
import { InstanceTagsProcess } from './instance-tags';
import { LeaseFiles, guardMarginMs, guardOnce } from './lease-guard';
import { Logger } from './log';
import { StartupTimer } from './startup-timing';
import { versionLine } from './version';

export const EXIT = { ok: 0, failure: 1, usage: 2, config: 78 } as const;

// The bundle's stacks name the TypeScript sources through its map, read only when a stack is
// formatted (stack-source-map.ts; fleetd runs without --enable-source-maps for its idle memory).
installStackSourceMap(__filename);

function socketPath(): string {
  return process.env[FLEET_ENV.socket] ?? DEFAULT_SOCKET_PATH;
}

async function run(options: { config?: string }): Promise<void> {
  // Exec → ready, step by step, on the "fleetd ready" line (startup-timing.ts).
  const startup = new StartupTimer();
  startup.markProcessStart();
  const log = new Logger({ component: 'fleetd' });
  const imds = new ImdsClient();
  let config;
  try {
    config = loadConfig(process.env, options.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) log.error('invalid configuration', { problem: p });
      await reportConfigFailure(err, imds, log);
      process.exit(EXIT.config);
    }
    throw err;
  }
  startup.mark('config');
  const region = config.region ?? process.env.AWS_REGION ?? (await imds.identity().then((i) => i.region).catch(() => undefined));
  const clients = createAwsClients({ region });
  startup.mark('imds.region');
  // EC2 tags through a helper process: @aws-sdk/client-ec2 never loads on fleetd's heap
  // (instance-tags.ts). Started now: its load overlaps the boot's IMDS and preflight steps.
  const tags = new InstanceTagsProcess({ region: clients.region, log });
  tags.start();
  const fleetd = new Fleetd({ config, clients, docker: dockerClient(), imds, log, tags, startup });
  // Drained (SIGTERM, or a termination hook completed): a deliberate stop, not restarted.
  fleetd.once('stopped', () => process.exit(EXIT.ok));
  let signals = 0;
  const onSignal = (signal: string) => {
    if (signals++ > 0) {
      log.warn('second signal: releasing running tasks now', { signal });
      void fleetd.stop({ abort: true, reason: `${signal} received twice` });
      return;
    }
    log.info('signal received: draining', { signal, budget_s: config.drainBudgetSeconds });
    void fleetd.stop({ reason: `${signal} received` });
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  try {
    await fleetd.start();
  } catch (err) {
    log.error('fleetd could not start', { error: err });
    process.exit(EXIT.failure);
  }
  dropStartupGarbage();
}

/**
 * Start-up leaves garbage (module load, the SDK clients' set-up, config parsing) that V8's
 * memory reducer frees only 8–24 s after ready (docs/benchmarks.md, "Idle memory"). With
 * `--expose-gc` and `--compact-on-every-full-gc` in the unit's flags (FLEETD_NODE_FLAGS), one
 * compacting collection right after ready (~20 ms, once) hands the pages back at once; a plain
 * full collection frees the objects but keeps the pages. Without the flags this does nothing.
 */
function dropStartupGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
}

/**
 * An invalid config is a boot failure too: when IMDS answers (we know which instance we are),
 * tag it unhealthy, write the instance row with the problems (if the table name itself is
 * readable) and tell the group, as the preflight does.
 */
async function reportConfigFailure(err: ConfigError, imds: ImdsClient, log: Logger): Promise<void> {
  const identity = await imds.identity().catch(() => undefined);
  if (!identity) {
    log.warn('IMDS does not answer: the invalid configuration is reported by the unit failing only');
    return;
  }
  const raw = err.raw ?? {};
  const field = <K extends keyof typeof FleetdConfigFileSchema.shape>(key: K) => {
    const parsed = FleetdConfigFileSchema.shape[key].safeParse(raw[key]);
    return parsed.success ? parsed.data : undefined;
  };
  try {
    const clients = createAwsClients({ region: (field('region') as string | undefined) ?? process.env.AWS_REGION ?? identity.region, maxAttempts: 2 });
    // The bundle's fleetd.js has no EC2 SDK (scripts/bundle.ts): the helper, as in a normal run.
    const tags = new InstanceTagsProcess({ region: clients.region, lingerMs: 0, log });
    const instance = new InstanceState({
      tags,
      ddb: clients.ddb,
      instancesTable: field('instancesTable') as string | undefined,
      instanceId: identity.instanceId,
      tagPrefix: (field('tagPrefix') as string | undefined) ?? DEFAULT_TAG_PREFIX,
      slots: 0,
      asgName: field('asgName') as string | undefined,
      availabilityZone: identity.availabilityZone,
      log,
    });
    await instance.reportUnhealthy(clients.autoscaling, `invalid configuration: ${err.problems.join('; ')}`.slice(0, 2000)).finally(() => tags.close());
  } catch (reportErr) {
    log.error('reporting the invalid configuration failed', { error: reportErr });
  }
}

function parsePositiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 3600) throw new InvalidArgumentError(`expected seconds between 0 and 3600, got ${JSON.stringify(value)}`);
  return n;
}

/** `fleetd guard`: lease-guard.ts, one pass or a loop (interval `--every`, no jitter: local only). */
async function guard(options: { config?: string; every?: number }): Promise<void> {
  const log = new Logger({ component: 'fleetd-guard' });
  let config;
  try {
    config = loadConfig(process.env, options.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) log.error('invalid configuration', { problem: p });
      process.exit(EXIT.config);
    }
    throw err;
  }
  const docker = dockerClient();
  const files = new LeaseFiles(config.workDir);
  const marginMs = guardMarginMs(config.timings.leaseSeconds);
  for (;;) {
    try {
      const pass = await guardOnce({ docker, files, marginMs });
      for (const k of pass.killed) log.warn('stopped a container whose lease fleetd did not renew', { task_id: k.taskId, container_id: k.containerId, why: k.why, instance_id: pass.instanceId });
    } catch (err) {
      log.error('guard pass failed', { error: err });
      if (!options.every) process.exit(EXIT.failure);
    }
    if (!options.every) process.exit(EXIT.ok);
    await new Promise((r) => setTimeout(r, options.every! * 1000));
  }
}

async function cancel(options: { taskId: string }): Promise<void> {
  // Checked here as well as by the SSM document's allowedPattern (moto does not enforce it).
  if (!TASK_ID_PATTERN.test(options.taskId)) {
    console.error(`fleetd cancel: invalid task id ${JSON.stringify(options.taskId.slice(0, 80))}: expected ${TASK_ID_PATTERN}`);
    process.exit(EXIT.usage);
  }
  const res = await sendControlRequest(socketPath(), { cmd: 'cancel', task_id: options.taskId });
  console.log(JSON.stringify(res));
  process.exit(res.ok ? EXIT.ok : EXIT.failure);
}

async function status(options: { json?: boolean }): Promise<void> {
  // Parsed with the contract's StatusResponseSchema: a malformed answer rejects (exit 1).
  const res = await sendControlRequest(socketPath(), { cmd: 'status' }, 10_000);
  if (options.json || !res.ok) {
    console.log(JSON.stringify(res, null, 2));
  } else {
    for (const line of formatStatus(res)) console.log(line);
  }
  process.exit(res.ok ? EXIT.ok : EXIT.failure);
}

/** `fleetd status` without --json: one line per fact, then one per task. */
function formatStatus(s: StatusResponse): string[] {
  const out = [`instance ${s.instance_id ?? '(unknown)'}: ${s.state}, ${s.slots - s.free_slots}/${s.slots} slots busy`];
  out.push(s.not_claiming ? `not claiming: ${s.not_claiming}` : 'claiming: polling the queue');
  if (s.drain) out.push(`draining since ${s.drain.since}: ${s.drain.reason}${s.drain.releasing ? ` (releasing: ${s.drain.releasing})` : ''}`);
  if (!s.tasks.length) out.push(`idle for ${s.idle.idle_for_s}s${s.idle.terminate_after_s ? ` (self-termination check after ${s.idle.terminate_after_s}s)` : ''}; ${s.idle.state}`);
  if (s.credentials) out.push(`credentials endpoint ${s.credentials.endpoint}: ${s.credentials.active_tasks.length} task(s)`);
  if (s.last_prune) out.push(`last prune ${s.last_prune.at}: ${s.last_prune.containers.length} container(s), ${s.last_prune.images.length} image(s)`);
  for (const t of s.tasks) out.push(`  ${t.task_id}  attempt ${t.attempt}  ${t.phase}${t.stopping ? ` (stopping: ${t.stopping})` : ''}  heartbeat ${t.heartbeat_age_s}s ago`);
  return out;
}

const program = new Command('fleetd')
  .description('agent-fleet instance daemon: pulls tasks from SQS, claims them in DynamoDB and runs them in Docker.')
  .version(versionLine('fleetd'), '-V, --version', 'print the package version and the git commit it was built from')
  .exitOverride()
  .addHelpText('after', `\nExamples:\n  fleetd run                         # as the systemd unit does\n  fleetd cancel --task-id t-01j0abc  # what the SSM cancel document runs\n  fleetd status --json\n\nExit codes: 0 ok, 1 failure, 2 usage error, 78 invalid configuration.`);
program
  .command('run')
  .description('run the daemon (config: $FLEETD_CONFIG or /etc/fleetd/config.json, then FLEET_* variables)')
  .option('--config <path>', 'config file path')
  .action(run);
program
  .command('cancel')
  .description('cancel a task running on this instance (SIGTERM, grace, SIGKILL)')
  .requiredOption('--task-id <id>', 'the task id')
  .addHelpText('after', '\nExample:\n  fleetd cancel --task-id t-01j0abcdefghjkmnpqrstvwxyz')
  .action(cancel);
program.command('status').description('show slots, running tasks, heartbeat ages, drain / idle state and why it is not claiming').option('--json', 'machine-readable output').addHelpText('after', '\nExample:\n  fleetd status').action(status);

program
  .command('guard')
  .description('stop any container of this instance whose lease fleetd has not renewed (run by fleetd-guard.timer every 10 s; no AWS calls)')
  .option('--config <path>', 'config file path (for workDir and leaseSeconds)')
  .option('--every <seconds>', 'keep running, one pass every <seconds> (default: one pass, then exit)', parsePositiveSeconds)
  .addHelpText('after', `\nA container is stopped when its local lease (written by fleetd before the start and at each
heartbeat) is missing, belongs to another attempt, or ends within a quarter of leaseSeconds.
fleetd itself stops containers it can no longer renew; the guard covers a fleetd that is dead
or frozen, so that no task runs on two instances at once after a takeover.

Examples:
  fleetd guard                 # one pass, as the systemd timer runs it
  fleetd guard --every 2       # a loop (tests, or hosts without systemd timers)`)
  .action(guard);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  console.error(`fleetd: ${(err as Error).message}`);
  process.exit(EXIT.failure);
});
