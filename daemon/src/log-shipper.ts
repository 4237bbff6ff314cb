/**
 * Ships each task attempt's output to the fleet's CloudWatch Logs group (config `logGroup`),
 * one stream per attempt: `<task_id>/<attempt>` (TASK_LOG_STREAM in the contract). It is fed
 * the very lines the task's log file gets (task-output.ts), already redacted, so the stream and
 * the file always say the same thing. docs/logs.md has the whole story.
 *
 * - Batches within the PutLogEvents limits: at most 10,000 events and 1,048,576 bytes per call
 *   (each event counts its UTF-8 bytes + 26), events in time order (timestamps never go
 *   backwards, even when the clock does), no event older than 14 days or more than 2 h ahead,
 *   and at most 24 h between the first and last event of one call.
 * - Bounded memory: at most `maxBufferBytes` (4 MiB) waits per stream. A line that does not fit
 *   is dropped and counted; once there is room again the stream gets a line
 *   `[fleetd] dropped N lines (M bytes) under back-pressure` in its place, so a reader knows.
 *   A flooding container costs fleetd a bounded buffer, never a stall: `line()` never waits.
 * - Paced: one call in flight per stream, at least `minIntervalMs` (500 ms) apart; a line is
 *   sent at most `lingerMs` (200 ms) plus one interval after it was written (live follow).
 * - Outages: a failed call is retried under RETRY_POLICIES.logShipping (isTransient decides);
 *   meanwhile the buffer fills and then drops (counted). When the policy is spent the batch
 *   is dropped (counted) and shipping goes on with the next one. Never throws into the task.
 * - `close()` flushes what is left within a deadline (before the terminal write).
 */
import { taskLogStreamName } from './contract';
import type { Logger } from './log';
import { RETRY_POLICIES, retry, type RetryPolicy } from './retry';

/** PutLogEvents limits (CloudWatch Logs quotas). */
export const PUT_LOG_EVENTS_LIMITS = {
  maxEvents: 10_000,
  maxBatchBytes: 1_048_576,
  /** Added to each event's UTF-8 length when the batch size is computed. */
  eventOverheadBytes: 26,
  /** Largest event (message bytes + overhead), 256 KiB. */
  maxEventBytes: 256 * 1024,
  /** Oldest event accepted: 14 days (kept an hour inside the limit). */
  maxAgeMs: 14 * 86_400_000 - 3_600_000,
  /** Newest event accepted: 2 h ahead of the service's clock. */
  maxFutureMs: 2 * 3_600_000,
  /** First to last event of one call. */
  maxSpanMs: 24 * 3_600_000,
} as const;

/** Defaults of the shipper (docs/logs.md "Limits and defaults"). */
export const LOG_SHIPPER_DEFAULTS = {
  /** Bytes (message + overhead) waiting per stream before lines are dropped. */
  maxBufferBytes: 4 * 1024 * 1024,
  /** Least time between two calls for one stream. */
  minIntervalMs: 500,
  /** How long a first waiting line may wait for company before a call is made. */
  lingerMs: 200,
  /** How long `close()` may take to send what is left. */
  closeDeadlineMs: 10_000,
} as const;

export interface LogEvent {
  readonly timestamp: number;
  readonly message: string;
}

/** The two calls the shipper makes; the SDK implementation is loaded on first use. */
export interface LogsApi {
  createLogStream(group: string, stream: string): Promise<void>;
  /** Returns how many events the service rejected (too old, too new, expired). */
  putLogEvents(group: string, stream: string, events: LogEvent[]): Promise<{ rejected: number }>;
}

/** CloudWatch Logs through the SDK, which is imported only when a fleet ships logs. */
export function sdkLogsApi(clientConfig: { region?: string | (() => Promise<string>); maxAttempts?: number } = {}): LogsApi {
  type Sdk = typeof import('@aws-sdk/client-cloudwatch-logs');
  let loaded: Promise<{ sdk: Sdk; client: InstanceType<Sdk['CloudWatchLogsClient']> }> | undefined;
  const load = () => (loaded ??= import('@aws-sdk/client-cloudwatch-logs').then((sdk) => ({ sdk, client: new sdk.CloudWatchLogsClient({ maxAttempts: 2, ...clientConfig }) })));
  return {
    async createLogStream(group, stream) {
      const { sdk, client } = await load();
      try {
        await client.send(new sdk.CreateLogStreamCommand({ logGroupName: group, logStreamName: stream }));
      } catch (err) {
        if ((err as { name?: string }).name !== 'ResourceAlreadyExistsException') throw err;
      }
    },
    async putLogEvents(group, stream, events) {
      const { sdk, client } = await load();
      const out = await client.send(new sdk.PutLogEventsCommand({ logGroupName: group, logStreamName: stream, logEvents: events }));
      const r = out.rejectedLogEventsInfo;
      if (!r) return { rejected: 0 };
      // The indexes bound the rejected head (too old, expired) and tail (too new) of the batch.
      const head = Math.max(r.tooOldLogEventEndIndex ?? -1, r.expiredLogEventEndIndex ?? -1) + 1;
      const tail = r.tooNewLogEventStartIndex !== undefined ? events.length - r.tooNewLogEventStartIndex : 0;
      return { rejected: Math.min(events.length, head + tail) };
    },
  };
}

export interface LogShipperOptions {
  readonly api: LogsApi;
  readonly logGroup: string;
  readonly log: Logger;
  /** @default LOG_SHIPPER_DEFAULTS.maxBufferBytes */
  readonly maxBufferBytes?: number;
  /** @default LOG_SHIPPER_DEFAULTS.minIntervalMs */
  readonly minIntervalMs?: number;
  /** @default LOG_SHIPPER_DEFAULTS.lingerMs */
  readonly lingerMs?: number;
  /** @default RETRY_POLICIES.logShipping */
  readonly retryPolicy?: RetryPolicy;
  /** @default Date.now */
  readonly now?: () => number;
}

/** What one stream shipped and lost, for fleetd's log and the bench. */
export interface ShipSummary {
  readonly stream: string;
  readonly shippedLines: number;
  readonly shippedBytes: number;
  readonly droppedLines: number;
  readonly droppedBytes: number;
  readonly calls: number;
}

const shippers = new Map<string, LogShipper>();

/**
 * fleetd's shipper for the fleet's group (one per process and group), or undefined when the
 * config names no group. `region`: the fleet clients' (e.g. `s3.config.region`).
 */
export function logShipperFor(logGroup: string | undefined, region: string | (() => Promise<string>), log: Logger): LogShipper | undefined {
  if (!logGroup) return undefined;
  let shipper = shippers.get(logGroup);
  if (!shipper) shippers.set(logGroup, (shipper = new LogShipper({ api: sdkLogsApi({ region }), logGroup, log })));
  return shipper;
}

/** Makes one TaskLogStream per attempt, all in the fleet's group. */
export class LogShipper {
  constructor(readonly o: LogShipperOptions) {}

  /** `log`: where the stream's own warnings go (the task's logger). */
  stream(taskId: string, attempt: number, log: Logger = this.o.log): TaskLogStream {
    return new TaskLogStream({ ...this.o, log }, taskLogStreamName(taskId, attempt));
  }
}

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** One attempt's stream: `line()` from the output, `close()` at the end. */
export class TaskLogStream {
  private queue: LogEvent[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private lastTimestamp = 0;
  private lastSendAt = 0;
  private timer?: NodeJS.Timeout;
  private sending?: Promise<void>;
  private created = false;
  private disabled = false;
  private closed = false;
  /** Dropped since the last marker line. */
  private pendingDropLines = 0;
  private pendingDropBytes = 0;
  private readonly abort = new AbortController();
  private readonly maxBuffer: number;
  private readonly interval: number;
  private readonly linger: number;
  private readonly now: () => number;
  private s = { shippedLines: 0, shippedBytes: 0, droppedLines: 0, droppedBytes: 0, calls: 0 };

  constructor(
    private readonly o: LogShipperOptions,
    readonly name: string,
  ) {
    this.maxBuffer = o.maxBufferBytes ?? LOG_SHIPPER_DEFAULTS.maxBufferBytes;
    this.interval = o.minIntervalMs ?? LOG_SHIPPER_DEFAULTS.minIntervalMs;
    this.linger = o.lingerMs ?? LOG_SHIPPER_DEFAULTS.lingerMs;
    this.now = o.now ?? Date.now;
  }

  get summary(): ShipSummary {
    return { stream: this.name, ...this.s };
  }

  /** Bytes waiting to be sent (message bytes + per-event overhead). */
  get bufferedBytes(): number {
    return this.queuedBytes;
  }

  /** One line of output, already redacted (its trailing newline is not part of the event). Never blocks. */
  line(text: string): void {
    if (this.closed || this.disabled) return;
    const message = text.endsWith('\n') ? text.slice(0, -1) : text;
    for (const piece of splitForEvents(message)) {
      const bytes = utf8Bytes(piece) + PUT_LOG_EVENTS_LIMITS.eventOverheadBytes;
      const marker = this.pendingDropLines > 0 ? this.dropMarkerText() : undefined;
      const markerBytes = marker ? utf8Bytes(marker) + PUT_LOG_EVENTS_LIMITS.eventOverheadBytes : 0;
      if (this.queuedBytes + markerBytes + bytes > this.maxBuffer) {
        this.countDrop(1, bytes - PUT_LOG_EVENTS_LIMITS.eventOverheadBytes);
        continue;
      }
      if (marker) {
        this.pendingDropLines = 0;
        this.pendingDropBytes = 0;
        this.enqueue(marker, markerBytes);
      }
      this.enqueue(piece, bytes);
    }
    this.schedule();
  }

  /**
   * Stops taking lines, writes the drop marker if one is owed, and sends what is left, paced,
   * until `deadlineMs` has passed; what could not be sent by then is counted as dropped.
   */
  async close(deadlineMs: number = LOG_SHIPPER_DEFAULTS.closeDeadlineMs): Promise<ShipSummary> {
    if (this.closed) return this.summary;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pendingDropLines > 0 && !this.disabled) {
      const marker = this.dropMarkerText();
      this.enqueue(marker, utf8Bytes(marker) + PUT_LOG_EVENTS_LIMITS.eventOverheadBytes);
    }
    const deadline = this.now() + deadlineMs;
    const stop = setTimeout(() => this.abort.abort(), deadlineMs);
    try {
      await this.sending;
      while (this.pending() > 0 && !this.disabled && this.now() < deadline) {
        const wait = this.lastSendAt + this.interval - this.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(0, deadline - this.now()))));
        if (this.now() >= deadline) break;
        await this.sendOne();
      }
    } finally {
      clearTimeout(stop);
    }
    const left = this.pending();
    if (left > 0) {
      const bytes = this.queue.slice(this.queueHead).reduce((n, e) => n + utf8Bytes(e.message), 0);
      this.s.droppedLines += left;
      this.s.droppedBytes += bytes;
      this.o.log.warn('task log lines not shipped before the deadline; the local log file has them', { stream: this.name, lines: left, bytes });
      this.queue = [];
      this.queueHead = 0;
      this.queuedBytes = 0;
    }
    return this.summary;
  }

  private pending(): number {
    return this.queue.length - this.queueHead;
  }

  private dropMarkerText(): string {
    return `[fleetd] dropped ${this.pendingDropLines} lines (${this.pendingDropBytes} bytes) under back-pressure`;
  }

  private countDrop(lines: number, bytes: number): void {
    this.pendingDropLines += lines;
    this.pendingDropBytes += bytes;
    this.s.droppedLines += lines;
    this.s.droppedBytes += bytes;
  }

  private enqueue(message: string, bytes: number): void {
    // Time order within a stream, even when the clock steps back.
    const timestamp = Math.max(this.lastTimestamp, this.now());
    this.lastTimestamp = timestamp;
    this.queue.push({ timestamp, message });
    this.queuedBytes += bytes;
  }

  /** Arms the send timer: after the linger, and no sooner than one interval after the last call. */
  private schedule(): void {
    if (this.timer || this.sending || this.closed || this.pending() === 0) return;
    const full = this.queuedBytes >= PUT_LOG_EVENTS_LIMITS.maxBatchBytes || this.pending() >= PUT_LOG_EVENTS_LIMITS.maxEvents;
    const at = Math.max(this.lastSendAt + this.interval, this.now() + (full ? 0 : this.linger));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending = this.sendOne().finally(() => {
        this.sending = undefined;
        this.schedule();
      });
    }, Math.max(0, at - this.now()));
    this.timer.unref?.();
  }

  /** Takes one batch off the queue (within every PutLogEvents limit) and sends it. */
  private takeBatch(): LogEvent[] {
    const L = PUT_LOG_EVENTS_LIMITS;
    const now = this.now();
    const batch: LogEvent[] = [];
    let bytes = 0;
    while (this.queueHead < this.queue.length && batch.length < L.maxEvents) {
      const e = this.queue[this.queueHead];
      const size = utf8Bytes(e.message) + L.eventOverheadBytes;
      if (e.timestamp < now - L.maxAgeMs) {
        // Waited past the service's age limit (a very long outage): never accepted, so dropped.
        this.queueHead++;
        this.queuedBytes -= size;
        this.s.droppedLines++;
        this.s.droppedBytes += size - L.eventOverheadBytes;
        continue;
      }
      if (bytes + size > L.maxBatchBytes) break;
      if (batch.length > 0 && e.timestamp - batch[0].timestamp > L.maxSpanMs) break;
      // The service refuses events more than 2 h ahead of its clock: never stamp one so.
      batch.push(e.timestamp > now + L.maxFutureMs ? { timestamp: now, message: e.message } : e);
      bytes += size;
      this.queueHead++;
      this.queuedBytes -= size;
    }
    if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    return batch;
  }

  private async sendOne(): Promise<void> {
    if (this.disabled) return;
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    this.lastSendAt = this.now();
    const { api, logGroup } = this.o;
    try {
      const { rejected } = await retry(
        `shipping log stream ${this.name}`,
        async () => {
          if (!this.created) {
            await api.createLogStream(logGroup, this.name);
            this.created = true;
          }
          return api.putLogEvents(logGroup, this.name, batch);
        },
        {
          policy: this.o.retryPolicy ?? RETRY_POLICIES.logShipping,
          signal: this.abort.signal,
          onRetry: (r) => this.o.log.warn('shipping task log lines failed; retrying', { stream: this.name, error: r.error, attempt: r.attempt, retry_in_ms: r.retryInMs }),
        },
      );
      this.s.calls++;
      const bytes = batch.reduce((n, e) => n + utf8Bytes(e.message), 0);
      this.s.shippedLines += batch.length - rejected;
      this.s.shippedBytes += bytes;
      if (rejected > 0) {
        this.s.droppedLines += rejected;
        this.o.log.warn('CloudWatch Logs rejected task log events (outside its time window)', { stream: this.name, rejected });
      }
    } catch (err) {
      const bytes = batch.reduce((n, e) => n + utf8Bytes(e.message), 0);
      this.countDrop(batch.length, bytes);
      const name = (err as { name?: string }).name ?? '';
      if (/AccessDenied|ResourceNotFound|InvalidParameter|Unrecognized/.test(name)) {
        // An answer that retrying will not change (no group, no permission): stop this stream;
        // the local log file remains the source.
        this.disabled = true;
        this.queue = [];
        this.queueHead = 0;
        this.queuedBytes = 0;
        this.o.log.error('shipping this task log to CloudWatch Logs is off for the rest of the attempt', { stream: this.name, log_group: logGroup, error: err });
      } else {
        this.o.log.warn('a batch of task log lines could not be shipped and was dropped', { stream: this.name, lines: batch.length, bytes, error: err });
      }
    }
  }
}

/** A message over the per-event limit is cut into pieces that fit (by characters, never inside a surrogate pair). */
export function splitForEvents(message: string): string[] {
  const max = PUT_LOG_EVENTS_LIMITS.maxEventBytes - PUT_LOG_EVENTS_LIMITS.eventOverheadBytes;
  // An empty message is refused by the service: a blank line ships as one space.
  if (message.length === 0) return [' '];
  if (message.length * 3 <= max || utf8Bytes(message) <= max) return [message];
  const pieces: string[] = [];
  // 4 bytes per character at most for a whole surrogate pair (2 units): max/3 units always fit.
  const step = Math.floor(max / 3);
  for (let i = 0; i < message.length; ) {
    let end = Math.min(message.length, i + step);
    const code = message.charCodeAt(end - 1);
    if (end < message.length && code >= 0xd800 && code <= 0xdbff) end--;
    pieces.push(message.slice(i, end));
    i = end;
  }
  return pieces;
}
