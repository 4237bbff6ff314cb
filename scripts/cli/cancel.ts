/**
 * `fleet cancel ID [--wait]`: FleetClient.cancelTask, said in one line. A finished task is a
 * no-op (exit 0), an SSM failure a note (the heartbeat pull still cancels). --wait follows
 * the task to its end; it exits 0 whatever the end was (the task is no longer running) and
 * says when the task finished on its own before the cancel reached it.
 */
import * as os from 'node:os';
import { TaskStatus } from '../../daemon/src/contract';
import type { CliContext } from './config';
import { EXIT } from './errors';
import { formatDuration, formatOutcome, printJson } from './format';
import { cancelJson } from './json';

/** Who cancelled, for the CANCEL_REQUESTED event row. */
function requester(): string {
  try {
    return `fleet-cli:${os.userInfo().username}@${os.hostname()}`.slice(0, 128);
  } catch {
    return 'fleet-cli';
  }
}

export async function cancelCommand(ctx: CliContext, taskId: string, o: { wait?: boolean; json?: boolean; waitTimeoutMs?: number }): Promise<number> {
  const t0 = Date.now();
  const result = await ctx.client.cancelTask(taskId, { by: requester() });
  if (!o.json) {
    process.stdout.write(`${result.message}\n`);
    if (result.outcome === 'cancel-requested' && result.delivery.via === 'heartbeat') {
      process.stderr.write(`  note: the cancel is recorded; no action is needed${o.wait ? '' : `, "fleet watch ${taskId}" shows the end`}\n`);
    }
  }
  if (!o.wait || result.outcome === 'already-ended') {
    if (o.json) printJson(cancelJson(result));
    return EXIT.ok;
  }
  if (!o.json) process.stderr.write(`waiting for ${taskId} to stop…\n`);
  const record = await ctx.client.waitForTerminal(taskId, { intervalMs: 500, timeoutMs: o.waitTimeoutMs ?? 10 * 60_000 });
  if (o.json) {
    printJson(cancelJson(result, record));
    return EXIT.ok;
  }
  const tookMs = Date.now() - t0;
  if (record.status === TaskStatus.CANCELLED) process.stdout.write(`${formatOutcome(record)} (stopped ${formatDuration(tookMs)} after the request)\n`);
  else process.stdout.write(`${formatOutcome(record)}: it ended on its own before the cancel reached it\n`);
  return EXIT.ok;
}
