/**
 * heartbeatLoop (daemon/src/task-heartbeat.ts): the early beat that writes a started container's
 * facts within seconds, and nothing more often than the interval otherwise. A host of plain
 * functions records each beat; the interval is 30 s, so any beat within the test's second is
 * the early one.
 */
import { heartbeatLoop, type HeartbeatHost } from '../../daemon/src/task-heartbeat';
import { DEFAULT_TIMINGS, TaskStatus, type TaskRecord } from '../../daemon/src/contract';
import { Logger } from '../../daemon/src/log';
import { sleep } from '../../daemon/src/retry';

const LEASE = { taskId: 't-01jd8x5k2m3n4p5q6r7s8t9v0w', instanceId: 'i-0123456789abcdef0', attempt: 1 };

/** A host whose beats are recorded (ms since the loop began); `earlyBeat` as given. */
function hostWith(earlyBeat: Promise<void> | undefined): { host: HeartbeatHost; beats: number[]; stop: () => void } {
  const abort = new AbortController();
  const t0 = Date.now();
  const beats: number[] = [];
  const host: HeartbeatHost = {
    timings: { ...DEFAULT_TIMINGS, heartbeatSeconds: 30 },
    signal: abort.signal,
    lease: LEASE,
    record: { task_id: LEASE.taskId, status: TaskStatus.RUNNING, spec: { image: 'agent:1' } } as unknown as TaskRecord,
    log: new Logger({}, undefined, 'error', () => undefined),
    beat: async () => {
      beats.push(Date.now() - t0);
      return { kind: 'ok', status: TaskStatus.RUNNING };
    },
    leaseExpiresAt: () => Date.now() + 90_000,
    renewed: () => undefined,
    leaseLost: () => undefined,
    cancel: () => undefined,
    extendVisibility: async () => undefined,
    ...(earlyBeat ? { earlyBeat, earlyBeatDelayMs: 100 } : {}),
  };
  return { host, beats, stop: () => abort.abort() };
}

describe('heartbeatLoop: the early beat after the container starts', () => {
  it('beats once, the delay after the start, then waits the interval', async () => {
    // Prepare
    let started!: () => void;
    const { host, beats, stop } = hostWith(new Promise<void>((resolve) => (started = resolve)));
    // Act
    const loop = heartbeatLoop(host);
    await sleep(200);
    started();
    await sleep(800);
    stop();
    await loop;
    // Assess: one beat (the interval is 30 s: it is the early one), not before the start + delay.
    expect(beats).toHaveLength(1);
    expect(beats[0]).toBeGreaterThanOrEqual(295);
  });

  it('without a start (an attempt still preparing), nothing before the interval', async () => {
    const { host, beats, stop } = hostWith(undefined);
    const loop = heartbeatLoop(host);
    await sleep(500);
    stop();
    await loop;
    expect(beats).toEqual([]);
  });

  it('a run that ends before the early beat writes nothing more (its terminal write carries the facts)', async () => {
    const { host, beats, stop } = hostWith(Promise.resolve());
    const loop = heartbeatLoop(host);
    await sleep(30);
    stop();
    await loop;
    await sleep(150);
    expect(beats).toEqual([]);
  });
});
