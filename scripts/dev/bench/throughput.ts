/**
 * Throughput of one daemon with N slots against the raw engine at the same concurrency.
 * Fleet: a batch of M trivial tasks enqueued at once. Raw: the same M containers through N
 * workers doing create + start + wait + remove back to back. Reps alternate the order (fleet
 * first, then raw first) so slow drift of the shared machine hits both sides. Two rates per side:
 * - steady state (judged, issue #18): tasks started per minute once every slot is busy, from the
 *   N-th container start to the last (engine `start` events, both sides alike): M − N starts over
 *   that span. It leaves out what a batch pays once, which the dispatch rows measure on their own:
 *   the first dispatch (enqueue → SQS → claim → start) and the last task's outcome and removal.
 * - batch: M over the wall time from the first record's created_at (raw: the first create) to the
 *   last container's removal (engine `destroy`), once paid costs included.
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
import { formatLoad, loadAverage, machineBusyCpuSeconds, motoPid, processCpuSeconds } from './machine';
import { summarize, type Summary } from './stats';
import { runStandalone } from './standalone';
import { stackEnv as localStackEnv } from '../harness/fleet';

export interface ThroughputRep {
  readonly fleetWallMs: number;
  readonly rawWallMs: number;
  readonly fleetPerMin: number;
  readonly rawPerMin: number;
  /** Batch rates: fleet ÷ raw. */
  readonly ratio: number;
  /** Steady-state rates (`steadyPerMin`), tasks/min. */
  readonly fleetSteadyPerMin: number;
  readonly rawSteadyPerMin: number;
  /** Steady-state rates: fleet ÷ raw (the judged figure). */
  readonly steadyRatio: number;
  /** CPU seconds per task over each batch: the whole machine, and within it fleetd and moto. */
  readonly cpu: { readonly fleet: BatchCpu; readonly raw: BatchCpu };
  readonly failed: number;
}

/** CPU seconds per task of a batch (machine: every process, all cores) and the share of cores it kept busy. */
export interface BatchCpu {
  readonly machinePerTask: number;
  readonly fleetdPerTask: number;
  readonly motoPerTask: number;
  /** Machine CPU ÷ (wall × cores): 1 = every core busy for the whole batch. */
  readonly busy: number;
}

/** Runs a batch while counting the CPU the machine, fleetd (when given) and moto spend on it. */
async function withCpu<T extends { wallMs: number }>(tasks: number, fleetdPid: number | undefined, batch: () => Promise<T>): Promise<T & { cpu: BatchCpu }> {
  const moto = motoPid();
  const before = { machine: machineBusyCpuSeconds(), fleetd: fleetdPid ? processCpuSeconds(fleetdPid) : 0, moto: moto ? processCpuSeconds(moto) : Number.NaN };
  const out = await batch();
  const after = { machine: machineBusyCpuSeconds(), fleetd: fleetdPid ? processCpuSeconds(fleetdPid) : 0, moto: moto ? processCpuSeconds(moto) : Number.NaN };
  const machine = after.machine - before.machine;
  return {
    ...out,
    cpu: {
      machinePerTask: machine / tasks,
      fleetdPerTask: (after.fleetd - before.fleetd) / tasks,
      motoPerTask: (after.moto - before.moto) / tasks,
      busy: machine / ((out.wallMs / 1000) * os.cpus().length),
    },
  };
}

export interface ThroughputResult {
  readonly slots: number;
  readonly tasksPerBatch: number;
  readonly reps: ThroughputRep[];
  readonly fleetPerMin: Summary;
  readonly rawPerMin: Summary;
  /** Per rep: fleet tasks/min ÷ raw tasks/min, batch rates. */
  readonly ratio: Summary;
  readonly fleetSteadyPerMin: Summary;
  readonly rawSteadyPerMin: Summary;
  /** Per rep: fleet ÷ raw, steady-state rates (issue #18's judged figure). */
  readonly steadyRatio: Summary;
  /** Medians over the reps of each side's CPU per task (BatchCpu). */
  readonly cpu: { readonly fleet: BatchCpu; readonly raw: BatchCpu };
}

export function formatCpu(c: BatchCpu): string {
  const fleetd = c.fleetdPerTask > 0 ? `, fleetd ${(c.fleetdPerTask * 1000).toFixed(0)} ms` : '';
  return `machine ${(c.machinePerTask * 1000).toFixed(0)} ms (moto ${(c.motoPerTask * 1000).toFixed(0)} ms${fleetd}; cores ${(c.busy * 100).toFixed(0)} % busy)`;
}

function medianCpu(all: readonly BatchCpu[]): BatchCpu {
  const m = (pick: (c: BatchCpu) => number) => summarize(all.map(pick)).median;
  return { machinePerTask: m((c) => c.machinePerTask), fleetdPerTask: m((c) => c.fleetdPerTask), motoPerTask: m((c) => c.motoPerTask), busy: m((c) => c.busy) };
}

/**
 * Tasks started per minute once all `slots` are busy: container starts (engine times) from the
 * `slots`-th to the last, `starts.length − slots` of them over that span. Both sides fill their
 * slots at once (fleetd receives up to its free slots per poll; the raw engine runs `slots`
 * workers), so the span is whole turns of every slot. NaN without a start after the fill.
 */
export function steadyPerMin(starts: readonly number[], slots: number): number {
  const sorted = [...starts].sort((a, b) => a - b);
  if (sorted.length <= slots) return Number.NaN;
  const spanMs = sorted[sorted.length - 1] - sorted[slots - 1];
  return spanMs > 0 ? ((sorted.length - slots) / spanMs) * 60_000 : Number.NaN;
}

/**
 * Engine start times of a batch's containers. A task whose container never started (it failed
 * before; the batch counts it in `failed`) has none and is left out rather than ending the phase.
 */
function startTimes(ctx: BenchContext, taskIds: readonly string[]): number[] {
  return taskIds.flatMap((id) => ctx.events.times(id).start ?? []);
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
    let f: { wallMs: number; failed: number; ends: TaskTimeline[]; cpu: BatchCpu };
    let raw: { wallMs: number; runs: Array<{ id: string }>; cpu: BatchCpu };
    const fleetSide = () => withCpu(options.tasks, fleet.daemon.pid, () => fleetBatch(ctx, fleet, options.tasks));
    const rawSide = () => withCpu(options.tasks, undefined, () => ctx.raw.batch(prefix, options.tasks, slots, spec));
    if (r % 2 === 0) {
      f = await fleetSide();
      await sleep(500);
      raw = await rawSide();
    } else {
      raw = await rawSide();
      await sleep(500);
      f = await fleetSide();
    }
    await sleep(500);
    const fleetSteady = steadyPerMin(startTimes(ctx, f.ends.map((e) => e.taskId)), slots);
    const rawSteady = steadyPerMin(startTimes(ctx, raw.runs.map((run) => run.id)), slots);
    const rep = {
      fleetWallMs: f.wallMs,
      rawWallMs: raw.wallMs,
      fleetPerMin: (options.tasks / f.wallMs) * 60_000,
      rawPerMin: (options.tasks / raw.wallMs) * 60_000,
      ratio: raw.wallMs / f.wallMs,
      fleetSteadyPerMin: fleetSteady,
      rawSteadyPerMin: rawSteady,
      steadyRatio: fleetSteady / rawSteady,
      cpu: { fleet: f.cpu, raw: raw.cpu },
      failed: f.failed,
    };
    reps.push(rep);
    ctx.say(
      `throughput ${slots} slot(s) rep ${r + 1}: steady fleet ${fleetSteady.toFixed(1)}/min, raw ${rawSteady.toFixed(1)}/min; ` +
        `batch fleet ${rep.fleetPerMin.toFixed(1)}/min (${f.wallMs} ms), raw ${rep.rawPerMin.toFixed(1)}/min (${raw.wallMs} ms); ` +
        `CPU per task: fleet ${formatCpu(f.cpu)}, raw ${formatCpu(raw.cpu)}`,
    );
  }
  return {
    slots,
    tasksPerBatch: options.tasks,
    reps,
    fleetPerMin: summarize(reps.map((r) => r.fleetPerMin)),
    rawPerMin: summarize(reps.map((r) => r.rawPerMin)),
    ratio: summarize(reps.map((r) => r.ratio)),
    fleetSteadyPerMin: summarize(reps.map((r) => r.fleetSteadyPerMin)),
    rawSteadyPerMin: summarize(reps.map((r) => r.rawSteadyPerMin)),
    steadyRatio: summarize(reps.map((r) => r.steadyRatio)),
    cpu: { fleet: medianCpu(reps.map((r) => r.cpu.fleet)), raw: medianCpu(reps.map((r) => r.cpu.raw)) },
  };
}

/**
 * Tasks per batch for a slot count: 9 / 10 / 16 for 1 / 2 / 4 slots, so the steady state has
 * 8 / 8 / 12 starts after the fill (`npm run bench` uses the same batches).
 */
export function throughputBatch(slots: number): number {
  return Math.max(8, slots * 4, slots + 8);
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
      const tasks = throughputBatch(slots) * batchMultiplier;
      const perMin: Record<string, number[]> = Object.fromEntries([...builds.map((b) => [b.label, []]), ['raw', []]]);
      const steady: Record<string, number[]> = Object.fromEntries([...builds.map((b) => [b.label, []]), ['raw', []]]);
      const cpus: Record<string, BatchCpu[]> = Object.fromEntries([...builds.map((b) => [b.label, []]), ['raw', []]]);
      const turnarounds: Record<string, number[]> = Object.fromEntries(builds.map((b) => [b.label, []]));
      const removals: Record<string, number[]> = Object.fromEntries(builds.map((b) => [b.label, []]));
      // fleetd's utime + stime per task of each batch (issue #18): the build's CPU cost beside its rate.
      const cpuPerTask: Record<string, number[]> = Object.fromEntries(builds.map((b) => [b.label, []]));
      for (let r = 0; r < reps; r++) {
        const order = r % 2 === 0 ? fleets : [...fleets].reverse();
        for (const f of order) {
          const cpuBefore = f.fleet.daemon.sample().cpuSeconds;
          const batch = await withCpu(tasks, f.fleet.daemon.pid, () => fleetBatch(ctx, f.fleet, tasks));
          cpus[f.label].push(batch.cpu);
          perMin[f.label].push((tasks / batch.wallMs) * 60_000);
          steady[f.label].push(steadyPerMin(startTimes(ctx, batch.ends.map((e) => e.taskId)), slots));
          cpuPerTask[f.label].push((f.fleet.daemon.sample().cpuSeconds - cpuBefore) / tasks);
          if (slots === 1) turnarounds[f.label].push(...slotTurnaroundsMs(batch.ends));
          removals[f.label].push(...batch.ends.filter((e) => e.finishedAt !== undefined && e.engine.destroy !== undefined).map((e) => e.engine.destroy! - e.finishedAt!));
          if (batch.failed) say(`${f.label}: ${batch.failed} task(s) did not complete`);
          await sleep(500);
        }
        const raw = await withCpu(tasks, undefined, () => ctx.raw.batch(`${run}-raw-s${slots}r${r}`, tasks, slots, trivialSpec(ctx.demoImage)));
        cpus.raw.push(raw.cpu);
        perMin.raw.push((tasks / raw.wallMs) * 60_000);
        steady.raw.push(steadyPerMin(startTimes(ctx, raw.runs.map((run) => run.id)), slots));
        say(`${slots} slot(s) rep ${r + 1}: steady ${Object.entries(steady).map(([k, v]) => `${k} ${v[v.length - 1].toFixed(1)}/min`).join(', ')}; batch ${Object.entries(perMin).map(([k, v]) => `${k} ${v[v.length - 1].toFixed(1)}/min`).join(', ')}`);
        await sleep(500);
      }
      const line = (rates: Record<string, number[]>) => Object.entries(rates).map(([k, v]) => `${k} ${summarize(v).median.toFixed(1)}/min (reps ${v.map((x) => x.toFixed(1)).join(' ')})`).join('; ');
      console.log(`${slots} slot(s), ${tasks} tasks per batch, ${reps} reps, median steady state: ${line(steady)}`);
      console.log(`${slots} slot(s), median batch (enqueue → last removal): ${line(perMin)}`);
      console.log(`${slots} slot(s), CPU per task (medians): ${Object.entries(cpus).map(([k, v]) => `${k} ${formatCpu(medianCpu(v))}`).join('; ')}`);
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
