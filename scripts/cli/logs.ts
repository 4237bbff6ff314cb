/**
 * `fleet logs ID [--follow] [--attempt N]` (docs/logs.md). Sources, in order, and always said on
 * stderr:
 *   1. the attempt's CloudWatch Logs stream `<task_id>/<attempt>` in the fleet's task log group
 *      (FLEET_LOG_GROUP): works from any machine with read access; with --follow it is read
 *      live until the record is terminal (a new attempt is followed when it starts);
 *   2. the task's log file, when this machine has it (run on the instance; log-file.ts);
 *   3. the last 8 KiB kept in the record when the task ended.
 */
import { sleep } from '../../daemon/src/retry';
import { LIMITS, isTerminal, type TaskRecord } from '../../daemon/src/contract';
import { createLogsClient, displayLine, followTaskLog, TaskLogStreamReader, type TaskLogLine } from '../lib/task-logs';
import type { CliContext } from './config';
import { extraCaHttpsAgent } from './deferred-ca';
import { EXIT } from './errors';
import { printJson } from './format';
import { LogFollower, logDirectory, logFilePath } from './log-file';

export interface LogsOptions {
  readonly follow?: boolean;
  readonly json?: boolean;
  readonly logDir?: string;
  readonly intervalMs?: number;
  /** Which attempt's stream (default: the record's current attempt). */
  readonly attempt?: number;
}

export async function logsCommand(ctx: CliContext, taskId: string, o: LogsOptions): Promise<number> {
  let record = await ctx.client.getTask(taskId);
  if (ctx.names.logGroup) {
    const shown = await fromStream(ctx, ctx.names.logGroup, record, o);
    if (shown.found) return EXIT.ok;
    record = shown.record;
  }
  return fromFileOrRecord(ctx, taskId, record, o, ctx.names.logGroup ? `no log stream for ${taskId} in ${ctx.names.logGroup}` : `no task log group configured (FLEET_LOG_GROUP)`);
}

/** Source 1: the stream. Returns found=false (and the latest record) when there is none to show. */
async function fromStream(ctx: CliContext, logGroup: string, first: TaskRecord, o: LogsOptions): Promise<{ found: boolean; record: TaskRecord }> {
  const logs = await createLogsClient(ctx.client.clients.region, extraCaHttpsAgent());
  let record = first;
  let attempt = o.attempt ?? Math.max(1, record.attempt);
  let reader = new TaskLogStreamReader(logs, logGroup, record.task_id, attempt);
  const text: string[] = [];
  let announced = false;
  const announce = () => {
    if (announced || o.json) return;
    announced = true;
    process.stderr.write(`fleet: ${record.task_id} attempt ${attempt} from CloudWatch Logs (group ${logGroup}, stream ${reader.stream})${o.follow ? '; following until the task ends' : ''}\n`);
  };
  const print = (lines: TaskLogLine[]) => {
    announce();
    for (const l of lines) {
      if (o.json) text.push(`${displayLine(l.message)}\n`);
      else process.stdout.write(`${displayLine(l.message)}\n`);
    }
  };
  if (!o.follow) {
    const lines = await reader.read();
    if (!lines) return { found: false, record };
    print(lines);
    announce();
  } else {
    let foundAny = false;
    for (;;) {
      const { found } = await followTaskLog(reader, async () => {
        record = await ctx.client.getTask(record.task_id);
        return isTerminal(record.status) || (o.attempt === undefined && record.attempt > attempt);
      }, print, { intervalMs: o.intervalMs ?? 500 });
      foundAny ||= found;
      if (isTerminal(record.status) || o.attempt !== undefined || record.attempt <= attempt) break;
      // A new attempt started (the last one was released or taken over): follow it.
      attempt = record.attempt;
      reader = new TaskLogStreamReader(logs, logGroup, record.task_id, attempt);
      if (!o.json) process.stderr.write(`fleet: attempt ${attempt} started; following its stream ${reader.stream}\n`);
    }
    if (!foundAny) return { found: false, record };
  }
  if (o.json) printJson({ task_id: record.task_id, status: record.status, source: 'cloudwatch', log_group: logGroup, stream: reader.stream, attempt, text: text.join('') });
  return { found: true, record };
}

/** Sources 2 and 3: the instance's file, else the record's tail. */
async function fromFileOrRecord(ctx: CliContext, taskId: string, first: TaskRecord, o: LogsOptions, why: string): Promise<number> {
  let record = first;
  const dir = logDirectory(o.logDir);
  const follower = new LogFollower(logFilePath(dir, taskId));
  const interval = o.intervalMs ?? 1000;

  if (follower.available()) {
    if (!o.json) process.stderr.write(`fleet: ${why}; showing this machine's log file ${follower.file}\n`);
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

  const where = `${why}; no log file for ${taskId} on this machine (looked in ${dir}; --log-dir sets another place)`;
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
