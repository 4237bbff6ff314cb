/**
 * Reading a task's output from anywhere (docs/logs.md): fleetd ships each attempt's output to
 * the fleet's task log group, stream `<task_id>/<attempt>` (contract/logs.ts). This reads the
 * stream from its head and follows it (GetLogEvents with the forward token) until the record is
 * terminal; fleetd flushes the stream before it writes the terminal status, so one read after
 * the terminal record sees the last line. `fleet logs` and `fleet watch` use it first, then the
 * instance's local file, then the record's log_tail.
 *
 * Needs logs:GetLogEvents (and DescribeLogStreams) on the group: grantRead gives both.
 */
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { Agent as HttpsAgent } from 'node:https';
import { connectionConfig } from '../../daemon/src/aws';
import { taskLogStreamName } from '../../daemon/src/contract';
import { sleep } from '../../daemon/src/retry';
import { FleetRequestError } from './errors';

export interface TaskLogLine {
  readonly timestamp: number;
  readonly message: string;
}

type Sdk = typeof import('@aws-sdk/client-cloudwatch-logs');
let sdk: Promise<Sdk> | undefined;
const loadSdk = () => (sdk ??= import('@aws-sdk/client-cloudwatch-logs'));

/**
 * A CloudWatch Logs client configured like the others (AWS_REGION, AWS_ENDPOINT_URL…), loaded on
 * first use. `httpsAgent`: the CLI's (scripts/cli/deferred-ca.ts), when it has one.
 */
export async function createLogsClient(region: string, httpsAgent?: HttpsAgent): Promise<CloudWatchLogsClient> {
  const { CloudWatchLogsClient: Client } = await loadSdk();
  return new Client({ region, maxAttempts: 4, ...connectionConfig(httpsAgent) });
}

/** Reads one attempt's stream from the start; `read()` returns the lines added since the last call. */
export class TaskLogStreamReader {
  private token?: string;
  readonly stream: string;

  constructor(
    private readonly logs: CloudWatchLogsClient,
    readonly logGroup: string,
    readonly taskId: string,
    readonly attempt: number,
  ) {
    this.stream = taskLogStreamName(taskId, attempt);
  }

  /** New lines, or undefined while the stream does not exist (the attempt has not printed yet, or logs are not shipped). */
  async read(): Promise<TaskLogLine[] | undefined> {
    const { GetLogEventsCommand } = await loadSdk();
    const out: TaskLogLine[] = [];
    for (let page = 0; page < 1000; page++) {
      let res;
      try {
        res = await this.logs.send(new GetLogEventsCommand({ logGroupName: this.logGroup, logStreamName: this.stream, startFromHead: true, ...(this.token ? { nextToken: this.token } : {}) }));
      } catch (err) {
        if ((err as { name?: string }).name === 'ResourceNotFoundException') return this.token ? out : undefined;
        throw new FleetRequestError(`reading log stream ${this.stream} in ${this.logGroup}`, err);
      }
      for (const e of res.events ?? []) out.push({ timestamp: e.timestamp ?? 0, message: e.message ?? '' });
      const next = res.nextForwardToken;
      const done = !next || next === this.token || (res.events ?? []).length === 0;
      if (next) this.token = next;
      if (done) break;
    }
    return out;
  }
}

export interface FollowOptions {
  /** Poll interval for the stream. @default 500 */
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Follows a stream until `isDone()` says the task is terminal, then reads once more (the last
 * flush happened before the terminal write). `onLines` gets each batch of new lines.
 */
export async function followTaskLog(reader: TaskLogStreamReader, isDone: () => Promise<boolean>, onLines: (lines: TaskLogLine[]) => void, options: FollowOptions = {}): Promise<{ found: boolean }> {
  let found = false;
  for (;;) {
    const done = await isDone();
    const lines = await reader.read();
    if (lines) {
      found = true;
      if (lines.length) onLines(lines);
    }
    if (done || options.signal?.aborted) return { found };
    await sleep(options.intervalMs ?? 500, options.signal);
  }
}

/** A shipped line as it was printed: a blank line is shipped as one space (the service refuses empty events). */
export function displayLine(message: string): string {
  return message === ' ' ? '' : message;
}
