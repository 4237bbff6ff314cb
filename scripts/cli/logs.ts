/**
 * `fleet logs ID [--follow]`: the task's log file when this machine has it (log-file.ts says
 * where), else the last 8 KiB kept in the record when the task ended; which one is shown is
 * always said on stderr. With --follow: the file is tailed until the task ends; without a
 * file, the command waits for the end and prints the record's tail.
 */
import { sleep } from '../../daemon/src/retry';
import { LIMITS, isTerminal, type TaskRecord } from '../../daemon/src/contract';
import type { CliContext } from './config';
import { EXIT } from './errors';
import { printJson } from './format';
import { LogFollower, logDirectory, logFilePath } from './log-file';

export interface LogsOptions {
  readonly follow?: boolean;
  readonly json?: boolean;
  readonly logDir?: string;
  readonly intervalMs?: number;
}

export async function logsCommand(ctx: CliContext, taskId: string, o: LogsOptions): Promise<number> {
  const dir = logDirectory(o.logDir);
  const follower = new LogFollower(logFilePath(dir, taskId));
  let record = await ctx.client.getTask(taskId);
  const interval = o.intervalMs ?? 1000;

  if (follower.available()) {
    if (o.json) {
      // JSON is one document: with --follow it is written once the task ended.
      while (o.follow && !isTerminal(record.status)) {
        await sleep(interval);
        record = await ctx.client.getTask(taskId);
      }
      printJson({ task_id: taskId, status: record.status, source: 'file', path: follower.file, text: follower.readNew() });
      return EXIT.ok;
    }
    process.stdout.write(follower.readNew());
    while (o.follow && !isTerminal(record.status)) {
      await sleep(interval);
      process.stdout.write(follower.readNew());
      record = await ctx.client.getTask(taskId);
    }
    process.stdout.write(follower.readNew());
    return EXIT.ok;
  }

  const where = `no log file for ${taskId} on this machine (looked in ${dir}; --log-dir sets another place)`;
  if (!isTerminal(record.status)) {
    if (!o.follow) {
      process.stderr.write(`${taskId} is ${record.status}${record.instance_id ? ` on ${record.instance_id}` : ''}; ${where}. Its last ${LIMITS.logTailBytes / 1024} KiB are kept in the record when it ends: "fleet logs ${taskId} --follow" waits for them\n`);
      if (o.json) printJson({ task_id: taskId, status: record.status, source: 'none', text: '' });
      return EXIT.ok;
    }
    process.stderr.write(`${where}; waiting for ${taskId} to end to print the tail kept in its record\n`);
    record = await ctx.client.waitForTerminal(taskId, { intervalMs: interval, timeoutMs: Number.MAX_SAFE_INTEGER });
  }
  return printRecordTail(record, where, o.json);
}

function printRecordTail(record: TaskRecord, where: string, json?: boolean): number {
  const text = record.log_tail ?? '';
  if (json) {
    printJson({ task_id: record.task_id, status: record.status, source: 'record', text });
    return EXIT.ok;
  }
  process.stderr.write(`${where}; showing the last ${LIMITS.logTailBytes / 1024} KiB kept in the task record (${record.status})\n`);
  if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  else process.stderr.write('(the task recorded no output)\n');
  return EXIT.ok;
}
