/**
 * `fleet watch ID` (and `submit --follow`): events as they happen, a live status line with the
 * heartbeat age and a spinner (only on a terminal), the task's output when this machine has its
 * log file, then the outcome, the result and the log tail. Exit code: 0 COMPLETED, 1 FAILED /
 * TIMED_OUT / CANCELLED, 130 when the user stopped watching (the task goes on).
 */
import { TaskStatus, isTerminal, type TaskRecord } from '../../daemon/src/contract';
import type { FleetClient } from '../lib/client';
import { extraCaHttpsAgent } from './deferred-ca';
import { EXIT } from './errors';
import { formatEvent, formatOutcome, formatProgress } from './format';
import { LogFollower, logDirectory, logFilePath } from './log-file';
import { createLogsClient, displayLine, TaskLogStreamReader } from '../lib/task-logs';

export interface WatchCommandOptions {
  readonly json?: boolean;
  readonly logDir?: string;
  /** Poll interval in ms. @default 1000 */
  readonly intervalMs?: number;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** A status line redrawn in place on a terminal (stderr); plain lines go to stdout above it. */
class LiveLine {
  private text = '';
  private frame = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly enabled: boolean) {
    if (enabled) {
      this.timer = setInterval(() => this.draw(), 100);
      this.timer.unref();
    }
  }

  set(text: string): void {
    this.text = text;
    this.draw();
  }

  println(line: string): void {
    this.clear();
    process.stdout.write(`${line}\n`);
    this.draw();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.clear();
  }

  private clear(): void {
    if (this.enabled) process.stderr.write('\r\x1b[2K');
  }

  private draw(): void {
    if (!this.enabled || !this.text) return;
    this.frame = (this.frame + 1) % SPINNER.length;
    const width = (process.stderr.columns ?? 100) - 3;
    process.stderr.write(`\r\x1b[2K${SPINNER[this.frame]} ${this.text.slice(0, width)}`);
  }
}

export function exitCodeFor(status: TaskStatus): number {
  return status === TaskStatus.COMPLETED ? EXIT.ok : EXIT.taskFailed;
}

/** The outcome block after a task ended: one line, the result, the log tail (unless already shown). */
export function printOutcome(record: TaskRecord, options: { logShown: boolean }): void {
  const out: string[] = [formatOutcome(record)];
  if (record.result !== undefined) out.push('result:', JSON.stringify(record.result, null, 2));
  if (record.result_error) out.push(`result not recorded: ${record.result_error}`);
  if (!options.logShown && record.log_tail) {
    const lines = record.log_tail.replace(/\n$/, '').split('\n').slice(-20);
    out.push('log tail (from the record):', ...lines.map((l) => `  | ${l}`));
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

export async function watchTask(client: FleetClient, taskId: string, options: WatchCommandOptions = {}): Promise<number> {
  const json = Boolean(options.json);
  const live = new LiveLine(!json && Boolean(process.stderr.isTTY));
  const logs = new LogFollower(logFilePath(logDirectory(options.logDir), taskId));
  // The attempt's CloudWatch Logs stream first (any machine), else this machine's log file (docs/logs.md).
  const cwl = client.names.logGroup ? await createLogsClient(client.clients.region, extraCaHttpsAgent()) : undefined;
  let stream: TaskLogStreamReader | undefined;
  let source: 'cloudwatch' | 'file' | undefined;
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  let logShown = false;
  let last: TaskRecord | undefined;
  let lastPrinted = '';
  const emit = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
  const print = (line: string) => {
    logShown = true;
    if (json) emit({ kind: 'log', line });
    else live.println(`  | ${line}`);
  };
  const showLogs = async (flush: boolean, record?: TaskRecord) => {
    if (cwl && source !== 'file' && record && record.attempt > 0) {
      if (stream?.attempt !== record.attempt) stream = new TaskLogStreamReader(cwl, client.names.logGroup!, taskId, record.attempt);
      const lines = await stream.read();
      if (lines) {
        if (!source && !json) process.stderr.write(`fleet: output from CloudWatch Logs (${client.names.logGroup}, stream ${stream.stream})\n`);
        source = 'cloudwatch';
        for (const l of lines) print(displayLine(l.message));
        return;
      }
    }
    if (source === 'cloudwatch' || !logs.available()) return;
    source = 'file';
    for (const line of logs.readLines(flush)) print(line);
  };
  try {
    for await (const update of client.watchTask(taskId, { intervalMs: options.intervalMs ?? 1000, signal: abort.signal })) {
      if (update.kind === 'event') {
        if (json) emit({ kind: 'event', ...update.event });
        else live.println(formatEvent(update.event));
        continue;
      }
      last = update.record;
      await showLogs(false, last);
      if (json) {
        const key = `${last.status}/${last.heartbeat_at ?? ''}`;
        if (key !== lastPrinted) emit({ kind: 'record', ...last });
        lastPrinted = key;
      } else live.set(formatProgress(last));
    }
    await showLogs(true, last);
  } finally {
    process.removeListener('SIGINT', onSigint);
    live.stop();
  }
  if (!last) return EXIT.failure;
  if (abort.signal.aborted && !isTerminal(last.status)) {
    process.stderr.write(`stopped watching ${taskId} (${last.status}): the task goes on; "fleet cancel ${taskId}" stops it\n`);
    return EXIT.interrupted;
  }
  if (!json) printOutcome(last, { logShown });
  return exitCodeFor(last.status);
}
