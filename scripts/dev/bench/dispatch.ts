/**
 * Dispatch latency and control-plane overhead on an idle daemon (one slot, 20 s long poll).
 * Each sample is a pair measured side by side: one trivial task through the fleet (enqueue →
 * container started → terminal record → container gone) and the same container straight
 * through the engine (create + start + wait + remove). The order inside a pair alternates so
 * neither side always runs on a machine the other just warmed.
 */
import { sleep } from '../../../daemon/src/retry';
import type { RawRun } from './engine';
import { runOneTask, trivialSpec, type BenchContext, type BenchFleet, type TaskTimeline } from './fleet-task';
import { summarize, type Summary } from './stats';

export interface DispatchPair {
  readonly fleet: TaskTimeline;
  readonly raw: RawRun;
}

/** Where the time goes between enqueue and "container gone", from the record and engine events. */
export const DISPATCH_SEGMENTS: ReadonlyArray<{ readonly name: string; readonly span: (t: TaskTimeline) => number | undefined }> = [
  { name: 'client: PutItem record + SUBMITTED event', span: (t) => diff(t.createdAt, t.messageSentAt) },
  { name: 'SendMessage → long poll returns → claim read (GetItem)', span: (t) => diff(t.messageSentAt, t.claimedAt) },
  { name: 'claim write → spec, image inspect, files → container created', span: (t) => diff(t.claimedAt, t.engine.create) },
  { name: 'created → RUNNING write begins', span: (t) => diff(t.engine.create, t.runningAt) },
  { name: 'RUNNING write → attach → start → container started', span: (t) => diff(t.runningAt, t.engine.start) },
  { name: 'container runs (`true`)', span: (t) => diff(t.engine.start, t.engine.die) },
  { name: 'exit → wait, inspect, log drain → terminal write begins', span: (t) => diff(t.engine.die, t.finishedAt) },
  { name: 'terminal write → DeleteMessage → container removed', span: (t) => diff(t.finishedAt, t.engine.destroy) },
];

function diff(from: number | undefined, to: number | undefined): number | undefined {
  return from === undefined || to === undefined ? undefined : to - from;
}

export interface DispatchResult {
  readonly pairs: DispatchPair[];
  readonly enqueueToStartMs: Summary;
  readonly enqueueToTerminalMs: Summary;
  readonly enqueueToGoneMs: Summary;
  readonly rawTotalMs: Summary;
  readonly rawCreateStartMs: Summary;
  /** Per pair: (enqueue → terminal record) − (raw create + start + wait + remove). */
  readonly overheadMs: Summary;
  /** Per pair: (enqueue → container started) − (raw create + start). */
  readonly dispatchOverRawStartMs: Summary;
  readonly segments: Array<{ name: string; summary: Summary }>;
  readonly raw: { createMs: Summary; startMs: Summary; waitMs: Summary; removeMs: Summary };
}

export function summarizeDispatch(pairs: DispatchPair[]): DispatchResult {
  const f = (fn: (p: DispatchPair) => number | undefined) => summarize(pairs.map(fn).filter((v): v is number => v !== undefined));
  return {
    pairs,
    enqueueToStartMs: f((p) => diff(p.fleet.createdAt, p.fleet.engine.start)),
    enqueueToTerminalMs: f((p) => diff(p.fleet.createdAt, p.fleet.finishedAt)),
    enqueueToGoneMs: f((p) => diff(p.fleet.createdAt, p.fleet.engine.destroy)),
    rawTotalMs: f((p) => p.raw.totalMs),
    rawCreateStartMs: f((p) => p.raw.createMs + p.raw.startMs),
    overheadMs: f((p) => {
      const d = diff(p.fleet.createdAt, p.fleet.finishedAt);
      return d === undefined ? undefined : d - p.raw.totalMs;
    }),
    dispatchOverRawStartMs: f((p) => {
      const d = diff(p.fleet.createdAt, p.fleet.engine.start);
      return d === undefined ? undefined : d - (p.raw.createMs + p.raw.startMs);
    }),
    segments: DISPATCH_SEGMENTS.map((s) => ({ name: s.name, summary: f((p) => s.span(p.fleet)) })),
    raw: { createMs: f((p) => p.raw.createMs), startMs: f((p) => p.raw.startMs), waitMs: f((p) => p.raw.waitMs), removeMs: f((p) => p.raw.removeMs) },
  };
}

export async function dispatchPhase(ctx: BenchContext, fleet: BenchFleet, options: { samples: number; minSamples: number; until: number }): Promise<DispatchResult> {
  const spec = trivialSpec(ctx.demoImage);
  const pairs: DispatchPair[] = [];
  for (let i = 0; i < options.samples; i++) {
    if (i >= options.minSamples && Date.now() > options.until) {
      ctx.say(`dispatch: stopping at ${i} samples (time budget)`);
      break;
    }
    const rawId = `bench-raw-d${i}-${Date.now().toString(36)}`;
    let fleetRun: TaskTimeline;
    let raw: RawRun;
    if (i % 2 === 0) {
      fleetRun = await runOneTask(ctx, fleet, spec);
      await sleep(500); // the slot is back in its long poll, tags written: an idle daemon again
      raw = await ctx.raw.runOnce(rawId, spec);
    } else {
      raw = await ctx.raw.runOnce(rawId, spec);
      fleetRun = await runOneTask(ctx, fleet, spec);
      await sleep(500);
    }
    if (fleetRun.status !== 'COMPLETED') ctx.say(`dispatch: task ${fleetRun.taskId} ended ${fleetRun.status} (kept in the sample)`);
    pairs.push({ fleet: fleetRun, raw });
    const started = diff(fleetRun.createdAt, fleetRun.engine.start);
    ctx.say(`dispatch ${i + 1}/${options.samples}: enqueue→started ${started?.toFixed(0)} ms, →terminal ${diff(fleetRun.createdAt, fleetRun.finishedAt)} ms; raw ${raw.totalMs} ms`);
  }
  return summarizeDispatch(pairs);
}
