/**
 * Throughput of one daemon with N slots against the raw engine at the same concurrency.
 * Fleet: a batch of M trivial tasks enqueued at once; wall time from the first record's
 * created_at to the last container's removal (engine `destroy`). Raw: the same M containers
 * through N workers doing create + start + wait + remove back to back. Reps alternate the
 * order (fleet first, then raw first) so slow drift of the shared machine hits both sides.
 *
 * Alone, to compare two fleetd builds on the same machine at the same time (a change's A/B):
 *   BENCH_BASE_BUNDLE=/path/to/fleetd.js npx tsx scripts/dev/bench/throughput.ts [slot counts, default 1,4] [reps, default 3] [batch multiplier, default 1]
 * runs, per slot count and rep, a batch through this checkout's fleetd, one through the base
 * bundle (order alternating; each daemon on a fleet and queue of its own) and the raw engine.
 */
import '../../../daemon/src/quiet-sdk-warning';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAwsClients } from '../../../daemon/src/aws';
import { dockerClient } from '../../../daemon/src/docker';
import { sleep } from '../../../daemon/src/retry';
import { FleetClient } from '../../lib/client';
import { provisionFleet } from '../local/provision';
import { EngineEvents, RawEngine } from './engine';
import { followToEnd, submit, trivialSpec, type BenchContext, type BenchFleet, type TaskTimeline } from './fleet-task';
import { BenchDaemon, buildFleetdBundle } from './fleetd-process';
import { formatLoad, loadAverage } from './machine';
import { summarize, type Summary } from './stats';
import { runStandalone } from './standalone';
import { stackEnv as localStackEnv } from '../harness/fleet';

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

async function fleetBatch(ctx: BenchContext, fleet: BenchFleet, count: number): Promise<{ wallMs: number; failed: number; ends: TaskTimeline[] }> {
  const spec = trivialSpec(ctx.demoImage);
  const submitted = await Promise.all(Array.from({ length: count }, () => submit(fleet, spec)));
  const ends = await Promise.all(submitted.map((s) => followToEnd(ctx, fleet, s.taskId)));
  const first = Math.min(...submitted.map((s) => s.createdAt));
  const last = Math.max(...ends.map((e) => e.engine.destroy ?? Number.NaN));
  return { wallMs: last - first, failed: ends.filter((e) => e.status !== 'COMPLETED').length, ends };
}

/**
 * One slot, a backlog: per task, its terminal write → the next task's claim (the slot's serial
 * work between two tasks: what is left of the cleanup, the next receive, the claim's read).
 */
function slotTurnaroundsMs(ends: readonly TaskTimeline[]): number[] {
  const byClaim = [...ends].filter((e) => e.claimedAt !== undefined && e.finishedAt !== undefined).sort((a, b) => a.claimedAt! - b.claimedAt!);
  return byClaim.slice(1).map((e, i) => e.claimedAt! - byClaim[i].finishedAt!);
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

/** Tasks per batch for a slot count (the full bench's 3 / 4 / 8 for 1 / 2 / 4 slots). */
function batchFor(slots: number): number {
  return Math.max(3, 2 * slots);
}

/** The throughput phase alone: this checkout's fleetd against a base bundle, batch by batch. */
async function main(): Promise<void> {
  const slotCounts = (process.argv[2] ?? '1,4').split(',').map(Number);
  const reps = Number(process.argv[3] ?? 3);
  const batchMultiplier = Number(process.argv[4] ?? 1);
  const basePath = process.env.BENCH_BASE_BUNDLE;
  if (slotCounts.some((n) => !Number.isInteger(n) || n < 1) || !Number.isInteger(reps) || reps < 1 || !Number.isInteger(batchMultiplier) || batchMultiplier < 1) {
    throw new Error('usage: throughput.ts [slot counts, e.g. 1,4] [reps] [batch multiplier]');
  }
  if (basePath && !fs.existsSync(basePath)) throw new Error(`BENCH_BASE_BUNDLE: ${basePath} does not exist`);
  const stackEnv = localStackEnv();
  const say = (line: string) => console.error(`[throughput] ${line}`);
  const docker = dockerClient(stackEnv.DOCKER_HOST);
  const clients = createAwsClients();
  const bundle = await buildFleetdBundle();
  const builds = [{ label: 'this checkout', path: bundle.path }, ...(basePath ? [{ label: 'base', path: basePath }] : [])];
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-throughput-'));
  const run = `thr${Date.now().toString(36)}`;
  const events = await EngineEvents.start(docker);
  const ctx: BenchContext = { docker, events, raw: new RawEngine(docker, runDir, `${run}-raw`), demoImage: stackEnv.FLEET_LOCAL_DEMO_IMAGE, say };
  const daemons: BenchDaemon[] = [];
  say(`load average ${formatLoad(loadAverage())}; builds: ${builds.map((b) => `${b.label} ${b.path}`).join(', ')}`);
  try {
    for (const slots of slotCounts) {
      const fleets: Array<{ label: string; fleet: BenchFleet }> = [];
      for (const [i, b] of builds.entries()) {
        const resources = await provisionFleet(clients, `${run}s${slots}b${i}`, { instances: 1, minSize: 1, maxSize: 1 });
        const daemon = new BenchDaemon({ name: `s${slots}b${i}`, fleet: resources, instanceId: resources.instanceIds[0], slots, stackEnv, bundlePath: b.path, runDir });
        daemons.push(daemon);
        await daemon.boot();
        fleets.push({ label: b.label, fleet: { resources, daemon, client: new FleetClient(clients, resources) } });
      }
      const tasks = batchFor(slots) * batchMultiplier;
      const perMin: Record<string, number[]> = Object.fromEntries([...builds.map((b) => [b.label, []]), ['raw', []]]);
      const turnarounds: Record<string, number[]> = Object.fromEntries(builds.map((b) => [b.label, []]));
      const removals: Record<string, number[]> = Object.fromEntries(builds.map((b) => [b.label, []]));
      // fleetd's utime + stime per task of each batch (issue #18): the build's CPU cost beside its rate.
      const cpuPerTask: Record<string, number[]> = Object.fromEntries(builds.map((b) => [b.label, []]));
      for (let r = 0; r < reps; r++) {
        const order = r % 2 === 0 ? fleets : [...fleets].reverse();
        for (const f of order) {
          const cpuBefore = f.fleet.daemon.sample().cpuSeconds;
          const batch = await fleetBatch(ctx, f.fleet, tasks);
          perMin[f.label].push((tasks / batch.wallMs) * 60_000);
          cpuPerTask[f.label].push((f.fleet.daemon.sample().cpuSeconds - cpuBefore) / tasks);
          if (slots === 1) turnarounds[f.label].push(...slotTurnaroundsMs(batch.ends));
          removals[f.label].push(...batch.ends.filter((e) => e.finishedAt !== undefined && e.engine.destroy !== undefined).map((e) => e.engine.destroy! - e.finishedAt!));
          if (batch.failed) say(`${f.label}: ${batch.failed} task(s) did not complete`);
          await sleep(500);
        }
        const raw = await ctx.raw.batch(`${run}-raw-s${slots}r${r}`, tasks, slots, trivialSpec(ctx.demoImage));
        perMin.raw.push((tasks / raw.wallMs) * 60_000);
        say(`${slots} slot(s) rep ${r + 1}: ${Object.entries(perMin).map(([k, v]) => `${k} ${v[v.length - 1].toFixed(1)}/min`).join(', ')}`);
        await sleep(500);
      }
      const line = Object.entries(perMin).map(([k, v]) => `${k} ${summarize(v).median.toFixed(1)}/min (reps ${v.map((x) => x.toFixed(1)).join(' ')})`).join('; ');
      console.log(`${slots} slot(s), ${tasks} tasks per batch, ${reps} reps, median: ${line}`);
      if (slots === 1) {
        const turn = Object.entries(turnarounds).map(([k, v]) => { const t = summarize(v); return `${k} p50 ${t.median.toFixed(0)} ms, p95 ${t.p95.toFixed(0)} ms (n ${t.n})`; }).join('; ');
        console.log(`1 slot: terminal write → next claim: ${turn}`);
      }
      const removed = Object.entries(removals).map(([k, v]) => { const t = summarize(v); return `${k} p50 ${t.median.toFixed(0)} ms, p95 ${t.p95.toFixed(0)} ms`; }).join('; ');
      console.log(`${slots} slot(s): terminal write → container removed (engine destroy): ${removed}`);
      console.log(`${slots} slot(s): fleetd CPU s/task (median of batches): ${Object.entries(cpuPerTask).map(([k, v]) => `${k} ${summarize(v).median.toFixed(4)} (${v.map((x) => x.toFixed(4)).join(' ')})`).join('; ')}`);
    }
    console.log(`load average at end ${formatLoad(loadAverage())}`);
  } finally {
    await Promise.all(daemons.map((d) => d.kill()));
    events.close();
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone('throughput', main);
