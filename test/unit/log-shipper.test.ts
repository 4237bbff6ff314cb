/**
 * The task log shipper (daemon/src/log-shipper.ts) against a recording LogsApi that checks every
 * PutLogEvents limit on every call: batch sizes, ordering, drops counted and written into the
 * stream, an outage, close() with a deadline. Real CloudWatch (moto) is in
 * test/integration/task-logs.test.ts.
 */
import { Logger } from '../../daemon/src/log';
import { LogShipper, PUT_LOG_EVENTS_LIMITS as L, splitForEvents, type LogEvent, type LogsApi } from '../../daemon/src/log-shipper';
import type { RetryPolicy } from '../../daemon/src/retry';

const quiet = new Logger({}, undefined, 'error', () => undefined);
const fastRetry: RetryPolicy = { maxAttempts: 2, baseMs: 1, capMs: 2 };

class RecordingApi implements LogsApi {
  calls: LogEvent[][] = [];
  streams: string[] = [];
  failWith?: () => Error;
  async createLogStream(_group: string, stream: string): Promise<void> {
    if (this.failWith) throw this.failWith();
    this.streams.push(stream);
  }
  async putLogEvents(_group: string, _stream: string, events: LogEvent[]): Promise<{ rejected: number }> {
    if (this.failWith) throw this.failWith();
    // The service's own checks, on every call.
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThanOrEqual(L.maxEvents);
    const bytes = events.reduce((n, e) => n + Buffer.byteLength(e.message) + L.eventOverheadBytes, 0);
    expect(bytes).toBeLessThanOrEqual(L.maxBatchBytes);
    for (let i = 1; i < events.length; i++) expect(events[i].timestamp).toBeGreaterThanOrEqual(events[i - 1].timestamp);
    expect(events[events.length - 1].timestamp - events[0].timestamp).toBeLessThanOrEqual(L.maxSpanMs);
    for (const e of events) {
      expect(e.message.length).toBeGreaterThan(0);
      expect(Buffer.byteLength(e.message) + L.eventOverheadBytes).toBeLessThanOrEqual(L.maxEventBytes);
    }
    this.calls.push(events);
    return { rejected: 0 };
  }
  get messages(): string[] {
    return this.calls.flat().map((e) => e.message);
  }
}

function transient(): Error {
  return Object.assign(new Error('service unavailable'), { name: 'ServiceUnavailableException', $metadata: { httpStatusCode: 503 } });
}

test('one stream per attempt, named <task_id>/<attempt>; lines arrive in order without their newline; a blank line ships as a space', async () => {
  const api = new RecordingApi();
  const s = new LogShipper({ api, logGroup: 'g', log: quiet, minIntervalMs: 1, lingerMs: 1 }).stream('t-1', 3);
  for (let i = 0; i < 50; i++) s.line(`line ${i}\n`);
  s.line('\n');
  const summary = await s.close();
  expect(api.streams).toEqual(['t-1/3']);
  expect(api.messages).toEqual([...Array.from({ length: 50 }, (_, i) => `line ${i}`), ' ']);
  expect(summary).toMatchObject({ stream: 't-1/3', shippedLines: 51, droppedLines: 0 });
});

test('batches respect 10,000 events and 1,048,576 bytes (26 bytes per event counted)', async () => {
  const api = new RecordingApi();
  const s = new LogShipper({ api, logGroup: 'g', log: quiet, minIntervalMs: 0, lingerMs: 0, maxBufferBytes: 64 * 1024 * 1024 }).stream('t', 1);
  // 25,000 tiny lines: the event cap binds.
  for (let i = 0; i < 25_000; i++) s.line('x\n');
  // Then 40 lines of 100 KiB: the byte cap binds (10 per call at most).
  const big = 'y'.repeat(100 * 1024);
  for (let i = 0; i < 40; i++) s.line(`${big}\n`);
  const summary = await s.close(30_000);
  expect(summary.shippedLines).toBe(25_040);
  expect(summary.droppedLines).toBe(0);
  expect(Math.max(...api.calls.map((c) => c.length))).toBe(L.maxEvents);
  const bigCalls = api.calls.filter((c) => c.some((e) => e.message === big));
  expect(bigCalls.length).toBeGreaterThanOrEqual(4);
  console.log(`calls: ${api.calls.length}, sizes: ${api.calls.map((c) => c.length).join(',')}`);
});

test('timestamps never go backwards, even when the clock does', async () => {
  const api = new RecordingApi();
  let now = 1_000_000_000_000;
  const s = new LogShipper({ api, logGroup: 'g', log: quiet, minIntervalMs: 0, lingerMs: 0, now: () => now }).stream('t', 1);
  s.line('a\n');
  now -= 60_000;
  s.line('b\n');
  now += 120_000;
  s.line('c\n');
  await s.close();
  const ts = api.calls.flat().map((e) => e.timestamp);
  expect(ts).toEqual([1_000_000_000_000, 1_000_000_000_000, 1_000_000_060_000]);
});

test('a batch never spans more than 24 h, and events older than 14 days are dropped (counted)', async () => {
  const api = new RecordingApi();
  let now = 1_000_000_000_000;
  const s = new LogShipper({ api, logGroup: 'g', log: quiet, minIntervalMs: 0, lingerMs: 1_000_000_000, now: () => now }).stream('t', 1);
  s.line('ancient\n');
  now += 15 * 86_400_000;
  s.line('day 15\n');
  now += 25 * 3_600_000;
  s.line('day 16\n');
  const summary = await s.close();
  expect(api.messages).toEqual(['day 15', 'day 16']);
  expect(api.calls.length).toBe(2);
  expect(summary.droppedLines).toBe(1);
});

test('under back-pressure lines are dropped, counted, and the stream says how many', async () => {
  const api = new RecordingApi();
  // A 64 KiB buffer and a stream that cannot send yet (long linger): the flood overflows it.
  const s = new LogShipper({ api, logGroup: 'g', log: quiet, maxBufferBytes: 64 * 1024, minIntervalMs: 0, lingerMs: 60_000 }).stream('t', 1);
  const line = `${'z'.repeat(1000)}\n`;
  for (let i = 0; i < 1000; i++) s.line(line);
  expect(s.bufferedBytes).toBeLessThanOrEqual(64 * 1024);
  const summary = await s.close();
  const kept = api.messages.filter((m) => m.startsWith('z')).length;
  const marker = api.messages.find((m) => m.startsWith('[fleetd] dropped'));
  expect(kept).toBeGreaterThan(0);
  expect(kept + summary.droppedLines).toBe(1000);
  expect(marker).toBe(`[fleetd] dropped ${summary.droppedLines} lines (${summary.droppedLines * 1000} bytes) under back-pressure`);
  // The marker comes after the lines that were kept.
  expect(api.messages[api.messages.length - 1]).toBe(marker);
  console.log(`kept ${kept}, dropped ${summary.droppedLines}`);
});

test('a marker is written where the drop happened once there is room again', async () => {
  const api = new RecordingApi();
  const s = new LogShipper({ api, logGroup: 'g', log: quiet, maxBufferBytes: 200, minIntervalMs: 0, lingerMs: 20 }).stream('t', 1);
  for (let i = 0; i < 10; i++) s.line(`${'a'.repeat(40)}${i}\n`);
  await new Promise((r) => setTimeout(r, 200));
  s.line('after\n');
  await s.close();
  const i = api.messages.findIndex((m) => m.startsWith('[fleetd] dropped'));
  expect(i).toBeGreaterThan(0);
  expect(api.messages[i + 1]).toBe('after');
});

test('an outage: retried under the policy, then the batch is dropped (counted), shipping resumes, the task never sees an error', async () => {
  const api = new RecordingApi();
  api.failWith = transient;
  const s = new LogShipper({ api, logGroup: 'g', log: quiet, minIntervalMs: 0, lingerMs: 0, retryPolicy: fastRetry }).stream('t', 1);
  s.line('lost 1\n');
  s.line('lost 2\n');
  await new Promise((r) => setTimeout(r, 100));
  api.failWith = undefined;
  s.line('back\n');
  const summary = await s.close();
  expect(api.messages).toEqual(['[fleetd] dropped 2 lines (12 bytes) under back-pressure', 'back']);
  expect(summary.droppedLines).toBe(2);
});

test('an answer retrying cannot change (no such group) turns shipping off for the stream', async () => {
  const api = new RecordingApi();
  api.failWith = () => Object.assign(new Error('no group'), { name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 400 } });
  let tries = 0;
  const orig = api.createLogStream.bind(api);
  api.createLogStream = async (g, st) => {
    tries++;
    return orig(g, st);
  };
  const s = new LogShipper({ api, logGroup: 'g', log: quiet, minIntervalMs: 0, lingerMs: 0, retryPolicy: fastRetry }).stream('t', 1);
  s.line('a\n');
  await new Promise((r) => setTimeout(r, 50));
  s.line('b\n');
  await s.close();
  expect(tries).toBe(1);
  expect(api.calls).toEqual([]);
});

test('close() gives up at its deadline and counts what it could not send', async () => {
  const api = new RecordingApi();
  api.failWith = transient;
  const s = new LogShipper({ api, logGroup: 'g', log: quiet, minIntervalMs: 0, lingerMs: 60_000, retryPolicy: { budgetMs: 60_000, baseMs: 50, capMs: 100 } }).stream('t', 1);
  for (let i = 0; i < 5; i++) s.line(`l${i}\n`);
  const t0 = Date.now();
  const summary = await s.close(300);
  const took = Date.now() - t0;
  console.log(`close() took ${took} ms with a 300 ms deadline`);
  expect(took).toBeLessThan(5000);
  expect(summary.droppedLines).toBeGreaterThanOrEqual(5);
  expect(summary.shippedLines).toBe(0);
});

test('pacing: one call in flight per stream, at least minIntervalMs apart', async () => {
  const api = new RecordingApi();
  const at: number[] = [];
  const put = api.putLogEvents.bind(api);
  api.putLogEvents = async (g, st, ev) => {
    at.push(Date.now());
    return put(g, st, ev);
  };
  const s = new LogShipper({ api, logGroup: 'g', log: quiet, minIntervalMs: 100, lingerMs: 0 }).stream('t', 1);
  const timer = setInterval(() => s.line('tick\n'), 5);
  await new Promise((r) => setTimeout(r, 550));
  clearInterval(timer);
  await s.close();
  for (let i = 1; i < at.length; i++) expect(at[i] - at[i - 1]).toBeGreaterThanOrEqual(95);
  console.log(`${at.length} calls in ~550 ms`);
});

test('splitForEvents: a message over the event limit is cut into pieces that fit, surrogate pairs kept whole', () => {
  const emoji = '\u{1F600}';
  const msg = emoji.repeat(200_000);
  const pieces = splitForEvents(msg);
  expect(pieces.join('')).toBe(msg);
  for (const p of pieces) {
    expect(Buffer.byteLength(p) + L.eventOverheadBytes).toBeLessThanOrEqual(L.maxEventBytes);
    expect(p.includes('\uFFFD')).toBe(false);
    expect(/^[\uDC00-\uDFFF]/.test(p)).toBe(false);
  }
  expect(splitForEvents('')).toEqual([' ']);
});
