/**
 * `fleetd`: the instance daemon's entry point.
 *   fleetd run                 boot preflight, then pull and run tasks until SIGTERM (drains)
 *   fleetd cancel --task-id ID ask the local daemon to cancel a task (the SSM document runs this)
 *   fleetd status [--json]     slots, running tasks, heartbeat ages, draining / idle state
 * Exit codes: 0 ok · 1 failure (boot preflight, daemon error, cancel refused) · 2 usage
 * (bad arguments, an invalid task id) · 78 invalid configuration (systemd does not restart it).
 */
import './quiet-sdk-warning';
import { Command, CommanderError } from 'commander';
import { createAwsClients } from './aws';
import { ConfigError, loadConfig } from './config';
import { DEFAULT_SOCKET_PATH, FLEET_ENV, TASK_ID_PATTERN } from './contract';
import { sendControlRequest } from './control';
import { BootError, Fleetd } from './daemon';
import { dockerClient } from './docker';
import { ImdsClient } from './imds';
import { Logger } from './log';

export const EXIT = { ok: 0, failure: 1, usage: 2, config: 78 } as const;

function socketPath(): string {
  return process.env[FLEET_ENV.socket] ?? DEFAULT_SOCKET_PATH;
}

async function run(options: { config?: string }): Promise<void> {
  const log = new Logger({ component: 'fleetd' });
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
  const imds = new ImdsClient();
  const region = config.region ?? process.env.AWS_REGION ?? (await imds.identity().then((i) => i.region).catch(() => undefined));
  const clients = createAwsClients({ region });
  const fleetd = new Fleetd({ config, clients, docker: dockerClient(), imds, log });
  let stopping: Promise<void> | undefined;
  const onSignal = (signal: string) => {
    if (stopping) {
      log.warn('second signal: releasing running tasks now', { signal });
      void fleetd.stop({ abort: true, reason: `${signal} received twice` });
      return;
    }
    log.info('signal received: draining', { signal, budget_s: config.drainBudgetSeconds });
    stopping = fleetd.stop({ reason: `${signal} received` }).then(() => process.exit(EXIT.ok));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  try {
    await fleetd.start();
  } catch (err) {
    log.error('fleetd could not start', { error: err });
    process.exit(err instanceof BootError ? EXIT.failure : EXIT.failure);
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
  const res = await sendControlRequest(socketPath(), { cmd: 'status' }, 10_000);
  if (options.json || !res.ok) {
    console.log(JSON.stringify(res, null, 2));
  } else {
    const s = res as unknown as { instance_id: string; state: string; slots: number; free_slots: number; draining: boolean; disk_problem: string | null; tasks: Array<{ task_id: string; attempt: number; phase: string; heartbeat_age_s: number }> };
    console.log(`instance ${s.instance_id}: ${s.state}${s.draining ? ' (draining)' : ''}, ${s.slots - s.free_slots}/${s.slots} slots busy`);
    if (s.disk_problem) console.log(`not claiming: ${s.disk_problem}`);
    for (const t of s.tasks) console.log(`  ${t.task_id}  attempt ${t.attempt}  ${t.phase}  heartbeat ${t.heartbeat_age_s}s ago`);
  }
  process.exit(res.ok ? EXIT.ok : EXIT.failure);
}

const program = new Command('fleetd')
  .description('agent-fleet instance daemon: pulls tasks from SQS, claims them in DynamoDB and runs them in Docker.')
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
program.command('status').description('show slots, running tasks and heartbeat ages').option('--json', 'machine-readable output').addHelpText('after', '\nExample:\n  fleetd status').action(status);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  console.error(`fleetd: ${(err as Error).message}`);
  process.exit(EXIT.failure);
});
