/**
 * Idle footprint of one fleetd (production bundle, one slot, default timings) that has booted
 * and has no work: resident memory (VmRSS from /proc, sampled every 2 s), CPU seconds
 * (utime + stime from /proc over the window, scaled to an hour) and AWS API calls (every HTTP
 * request it sends, counted at a loopback proxy in front of moto, scaled to an hour).
 *
 * The window runs while the other phases run on other daemons: the figures are this process's
 * own (its CPU time and its requests), which other load on the machine does not add to.
 */
import { DEFAULT_TIMINGS } from '../../../daemon/src/contract';
import type { BenchDaemon, ProcSample } from './fleetd-process';
import { countCalls, type AwsProxy } from './proxy';
import { summarize, type Summary } from './stats';

export interface IdleResult {
  readonly windowSeconds: number;
  readonly slots: number;
  readonly rssMiB: Summary;
  readonly peakRssMiB: number;
  readonly cpuSeconds: number;
  readonly cpuSecondsPerHour: number;
  readonly awsCalls: number;
  readonly awsCallsPerHour: number;
  readonly byOperation: Record<string, { count: number; perHour: number }>;
  /** What the loops should cost by design: 3600 / long poll (one receive loop, any slot count) + 2 × 3600 / instance heartbeat (row, rollout marker). */
  readonly expectedCallsPerHour: number;
  /** Calls made from spawn to "ready" (boot preflight, tags, instance row). */
  readonly bootCalls: Record<string, number>;
  readonly counting: string;
}

const MiB = 1024;

export class IdleWindow {
  private readonly samples: ProcSample[] = [];
  private timer?: NodeJS.Timeout;
  private first?: ProcSample;

  constructor(
    private readonly daemon: BenchDaemon,
    private readonly proxy: AwsProxy,
    private readonly spawnedAt: number,
    private readonly readyAt: number,
  ) {}

  begin(): void {
    this.first = this.daemon.sample();
    this.samples.push(this.first);
    this.timer = setInterval(() => this.samples.push(this.daemon.sample()), 2000);
    this.timer.unref();
  }

  end(): IdleResult {
    if (!this.first) throw new Error('idle window never began');
    clearInterval(this.timer);
    const last = this.daemon.sample();
    this.samples.push(last);
    const seconds = (last.at - this.first.at) / 1000;
    const perHour = (n: number) => (n / seconds) * 3600;
    const ops = countCalls(this.proxy.calls, this.first.at, last.at);
    const total = Object.values(ops).reduce((a, b) => a + b, 0);
    const slots = this.daemon.o.slots;
    const cpu = last.cpuSeconds - this.first.cpuSeconds;
    return {
      windowSeconds: Math.round(seconds * 10) / 10,
      slots,
      rssMiB: summarize(this.samples.map((s) => s.rssKiB / MiB)),
      peakRssMiB: last.hwmKiB / MiB,
      cpuSeconds: cpu,
      cpuSecondsPerHour: perHour(cpu),
      awsCalls: total,
      awsCallsPerHour: perHour(total),
      byOperation: Object.fromEntries(Object.entries(ops).map(([op, n]) => [op, { count: n, perHour: Math.round(perHour(n)) }])),
      expectedCallsPerHour: 3600 / DEFAULT_TIMINGS.longPollSeconds + 2 * (3600 / DEFAULT_TIMINGS.instanceHeartbeatSeconds),
      bootCalls: countCalls(this.proxy.calls, this.spawnedAt, this.readyAt + 1),
      counting: 'every HTTP request fleetd sent to AWS, counted at a loopback proxy in front of moto (SDK retries included; IMDS not counted)',
    };
  }
}
