/**
 * Does fleetd's memory grow with the tasks it runs? One daemon runs `total` trivial tasks in
 * waves that keep its slots busy; its resident memory is read once the first `first` tasks are
 * done and again after all of them, each time after the daemon settled (idle, 3 s), as the
 * median of 7 samples 0.5 s apart. Bound: growth ≤ `boundPct` (10 %) between the two readings.
 * Also fleetd's CPU seconds per task (utime + stime over the tasks between the readings: claim,
 * container, heartbeat, terminal write, tags and row; the EC2 tag helper's own CPU is not fleetd's
 * and is not in it).
 */
import { sleep } from '../../../daemon/src/retry';
import { followToEnd, submit, trivialSpec, type BenchContext, type BenchFleet } from './fleet-task';
import { summarize } from './stats';

export interface LeakResult {
  readonly slots: number;
  readonly first: number;
  /** Tasks run in all (fewer than asked when the time budget ran out). */
  readonly total: number;
  readonly rssAfterFirstMiB: number;
  readonly rssAfterTotalMiB: number;
  readonly growthPct: number;
  readonly boundPct: number;
  readonly met: boolean;
  readonly cpuSecondsPerTask: number;
  readonly failed: number;
  readonly wallSeconds: number;
}

async function settledRss(fleet: BenchFleet): Promise<{ rssMiB: number; cpuSeconds: number }> {
  await sleep(3000);
  const samples = [];
  // memory.ts's LEAK_HEAP_SNAPSHOTS: fleetd then writes a heap snapshot on SIGUSR2 (after this
  // reading's samples, so the snapshot's own cost is not in them).
  // Writing one takes memory of its own: RSS readings after the first snapshot are not comparable.
  const snapshot = async () => {
    if (!process.env.LEAK_HEAP_SNAPSHOTS) return;
    process.kill(fleet.daemon.pid, 'SIGUSR2');
    await sleep(10_000);
  };
  for (let i = 0; i < 7; i++) {
    samples.push(fleet.daemon.sample());
    await sleep(500);
  }
  await snapshot();
  return { rssMiB: summarize(samples.map((s) => s.rssKiB / 1024)).median, cpuSeconds: samples[0].cpuSeconds };
}

export async function leakPhase(ctx: BenchContext, fleet: BenchFleet, options: { first?: number; total?: number; boundPct?: number; until: number }): Promise<LeakResult> {
  const first = options.first ?? 30;
  const wanted = options.total ?? 300;
  const boundPct = options.boundPct ?? 10;
  const slots = fleet.daemon.o.slots;
  const spec = trivialSpec(ctx.demoImage);
  const started = Date.now();
  let done = 0;
  let failed = 0;
  const runUpTo = async (target: number) => {
    while (done < target) {
      const wave = Math.min(slots * 2, target - done);
      const submitted = await Promise.all(Array.from({ length: wave }, () => submit(fleet, spec)));
      const ends = await Promise.all(submitted.map((s) => followToEnd(ctx, fleet, s.taskId)));
      failed += ends.filter((e) => e.status !== 'COMPLETED').length;
      done += wave;
      if (target > first && Date.now() > options.until) break;
    }
  };
  await runUpTo(first);
  const a = await settledRss(fleet);
  ctx.say(`leak check: ${done} tasks, RSS ${a.rssMiB.toFixed(1)} MiB`);
  await runUpTo(wanted);
  if (done < wanted) ctx.say(`leak check: stopped at ${done} of ${wanted} tasks (time budget)`);
  const b = await settledRss(fleet);
  const growthPct = ((b.rssMiB - a.rssMiB) / a.rssMiB) * 100;
  ctx.say(`leak check: ${done} tasks, RSS ${b.rssMiB.toFixed(1)} MiB (${growthPct >= 0 ? '+' : ''}${growthPct.toFixed(1)} %)`);
  return {
    slots,
    first,
    total: done,
    rssAfterFirstMiB: a.rssMiB,
    rssAfterTotalMiB: b.rssMiB,
    growthPct,
    boundPct,
    met: growthPct <= boundPct,
    cpuSecondsPerTask: done > first ? (b.cpuSeconds - a.cpuSeconds) / (done - first) : Number.NaN,
    failed,
    wallSeconds: (Date.now() - started) / 1000,
  };
}

export function renderLeak(r: LeakResult): string {
  return [
    `fleetd memory under work (${r.slots} slots, trivial tasks in waves of ${r.slots * 2}; ${r.wallSeconds.toFixed(0)} s${r.failed ? `; ${r.failed} not COMPLETED` : ''})`,
    `  RSS after ${r.first} tasks ${r.rssAfterFirstMiB.toFixed(1)} MiB, after ${r.total} tasks ${r.rssAfterTotalMiB.toFixed(1)} MiB: ${r.growthPct >= 0 ? '+' : ''}${r.growthPct.toFixed(1)} % (bound ≤ ${r.boundPct} %)  ${r.met ? 'met' : 'MISSED'}`,
    `  fleetd CPU seconds per task ${Number.isFinite(r.cpuSecondsPerTask) ? r.cpuSecondsPerTask.toFixed(3) : '–'} (over tasks ${r.first + 1}–${r.total}; the EC2 tag helper's CPU is its own process's)`,
  ].join('\n');
}
