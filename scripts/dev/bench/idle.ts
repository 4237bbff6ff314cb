/**
 * Idle footprint of one fleetd (production bundle, one slot, default timings) that has booted
 * and has no work: resident memory (VmRSS from /proc, sampled every 2 s), CPU seconds
 * (utime + stime from /proc over the window, scaled to an hour) and AWS API calls (every HTTP
 * request it sends, counted at a loopback proxy in front of moto, scaled to an hour).
 *
 * The window runs while the other phases run on other daemons: the figures are this process's
 * own (its CPU time and its requests), which other load on the machine does not add to.
 *
 * Alone (no other phase), for the idle AWS calls at several slot counts at once: one daemon per
 * slot count, each behind its own counting proxy, on one throwaway fleet whose queue stays
 * empty. The window should span at least one instance heartbeat (360 s) to see the row write
 * and the rollout marker read:
 *   npx tsx scripts/dev/bench/idle.ts [window seconds, default 400] [slot counts, default 1,4]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAwsClients } from '../../../daemon/src/aws';
import { DEFAULT_TIMINGS } from '../../../daemon/src/contract';
import { provisionFleet } from '../local/provision';
import { BenchDaemon, buildFleetdBundle, type ProcSample } from './fleetd-process';
import { formatLoad, loadAverage } from './machine';
import { AwsProxy, countCalls } from './proxy';
import { summarize, type Summary } from './stats';
import { runStandalone } from './standalone';
import { stackEnv as localStackEnv } from '../harness/fleet';

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

/** The idle phase alone: one idle daemon per slot count, the calls each made over the window. */
async function main(): Promise<void> {
  const windowSeconds = Number(process.argv[2] ?? 400);
  const slotCounts = (process.argv[3] ?? '1,4').split(',').map(Number);
  if (!(windowSeconds > 0) || slotCounts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('usage: idle.ts [window seconds] [slot counts, e.g. 1,4]');
  const stackEnv = localStackEnv();
  const fleet = await provisionFleet(createAwsClients(), `idle${Date.now().toString(36)}`, { instances: slotCounts.length, minSize: slotCounts.length, maxSize: slotCounts.length });
  const bundle = await buildFleetdBundle();
  console.error(`load average ${formatLoad(loadAverage())}; bundle ${bundle.cached ? 'cached' : `built in ${bundle.seconds.toFixed(1)} s`}; window ${windowSeconds} s; slots ${slotCounts.join(', ')}`);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-idle-'));
  const proxies: AwsProxy[] = [];
  const daemons: BenchDaemon[] = [];
  try {
    const windows = await Promise.all(slotCounts.map(async (slots, i) => {
      const proxy = await AwsProxy.start(stackEnv.AWS_ENDPOINT_URL);
      proxies.push(proxy);
      // The SQS client sends each request to its QueueUrl's host: the queue URLs name the proxy too.
      const viaProxy = (url: string) => `${proxy.url}${new URL(url).pathname}`;
      const daemon = new BenchDaemon({
        name: `idle${slots}`,
        fleet: { ...fleet, queueUrl: viaProxy(fleet.queueUrl), dlqUrl: viaProxy(fleet.dlqUrl) },
        instanceId: fleet.instanceIds[i],
        slots,
        stackEnv,
        bundlePath: bundle.path,
        runDir,
        awsEndpoint: proxy.url,
      });
      daemons.push(daemon);
      const spawnedAt = Date.now();
      const readyAt = await daemon.boot();
      return new IdleWindow(daemon, proxy, spawnedAt, readyAt);
    }));
    // Boot is over once the first poll is out; give it a few seconds, then the window opens.
    await new Promise((r) => setTimeout(r, 5000));
    for (const w of windows) w.begin();
    await new Promise((r) => setTimeout(r, windowSeconds * 1000));
    for (const w of windows) {
      const r = w.end();
      const ops = Object.entries(r.byOperation).map(([op, c]) => `${op} ${c.count} (${c.perHour}/h)`).join(', ');
      console.log(`${r.slots} slot(s), ${r.windowSeconds} s window: ${r.awsCalls} AWS calls = ${Math.round(r.awsCallsPerHour)}/h (by design ≤ ${r.expectedCallsPerHour}/h): ${ops}`);
    }
    console.log(`load average at end ${formatLoad(loadAverage())}`);
  } finally {
    await Promise.all(daemons.map((d) => d.kill()));
    await Promise.all(proxies.map((p) => p.close()));
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone('idle', main);
