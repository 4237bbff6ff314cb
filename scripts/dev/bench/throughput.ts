/**
 * Throughput of one daemon with N slots against the raw engine at the same concurrency.
 * Fleet: a batch of M trivial tasks enqueued at once; wall time from the first record's
 * created_at to the last container's removal (engine `destroy`). Raw: the same M containers
 * through N workers doing create + start + wait + remove back to back. Reps alternate the
 * order (fleet first, then raw first) so slow drift of the shared machine hits both sides.
 */
import { sleep } from '../../../daemon/src/retry';
import { followToEnd, submit, trivialSpec, type BenchContext, type BenchFleet } from './fleet-task';
import { summarize, type Summary } from './stats';

export interface ThroughputRep {
  readonly fleetWallMs: number;
  readonly rawWallMs: number;
  readonly fleetPerMin: number;
  readonly rawPerMin: number;
  readonly ratio: number;
  readonly failed: number;
}

export interface ThroughputResult {
  readonly slots: number;
  readonly tasksPerBatch: number;
  readonly reps: ThroughputRep[];
  readonly fleetPerMin: Summary;
  readonly rawPerMin: Summary;
  /** Per rep: fleet tasks/min ÷ raw tasks/min. */
  readonly ratio: Summary;
}

async function fleetBatch(ctx: BenchContext, fleet: BenchFleet, count: number): Promise<{ wallMs: number; failed: number }> {
  const spec = trivialSpec(ctx.demoImage);
  const submitted = await Promise.all(Array.from({ length: count }, () => submit(fleet, spec)));
  const ends = await Promise.all(submitted.map((s) => followToEnd(ctx, fleet, s.taskId)));
  const first = Math.min(...submitted.map((s) => s.createdAt));
  const last = Math.max(...ends.map((e) => e.engine.destroy ?? Number.NaN));
  return { wallMs: last - first, failed: ends.filter((e) => e.status !== 'COMPLETED').length };
}

export async function throughputPhase(ctx: BenchContext, fleet: BenchFleet, options: { tasks: number; reps: number; until: number }): Promise<ThroughputResult> {
  const slots = fleet.daemon.o.slots;
  const spec = trivialSpec(ctx.demoImage);
  const reps: ThroughputRep[] = [];
  for (let r = 0; r < options.reps; r++) {
    if (r > 0 && Date.now() > options.until) {
      ctx.say(`throughput ${slots} slot(s): stopping after ${r} rep(s) (time budget)`);
      break;
    }
    const prefix = `bench-raw-t${slots}r${r}-${Date.now().toString(36)}`;
    let f: { wallMs: number; failed: number };
    let raw: { wallMs: number };
    if (r % 2 === 0) {
      f = await fleetBatch(ctx, fleet, options.tasks);
      await sleep(500);
      raw = await ctx.raw.batch(prefix, options.tasks, slots, spec);
    } else {
      raw = await ctx.raw.batch(prefix, options.tasks, slots, spec);
      await sleep(500);
      f = await fleetBatch(ctx, fleet, options.tasks);
    }
    await sleep(500);
    const rep = {
      fleetWallMs: f.wallMs,
      rawWallMs: raw.wallMs,
      fleetPerMin: (options.tasks / f.wallMs) * 60_000,
      rawPerMin: (options.tasks / raw.wallMs) * 60_000,
      ratio: raw.wallMs / f.wallMs,
      failed: f.failed,
    };
    reps.push(rep);
    ctx.say(`throughput ${slots} slot(s) rep ${r + 1}: fleet ${rep.fleetPerMin.toFixed(1)}/min (${f.wallMs} ms), raw ${rep.rawPerMin.toFixed(1)}/min (${raw.wallMs} ms)`);
  }
  return {
    slots,
    tasksPerBatch: options.tasks,
    reps,
    fleetPerMin: summarize(reps.map((r) => r.fleetPerMin)),
    rawPerMin: summarize(reps.map((r) => r.rawPerMin)),
    ratio: summarize(reps.map((r) => r.ratio)),
  };
}
