/**
 * Memory and start-up of fleetd (issue #18), a phase of `npm run bench`, also run on its own:
 *   npx tsx scripts/dev/bench/memory.ts [leak tasks, default 300]   (needs `npm run local -- up`)
 *   RSS_NODE_ARGS="--flag ..." adds node flags after the unit's, RSS_NO_UNIT_FLAGS=1 leaves the
 *   unit's out (fleetd-process.ts experimentNodeArgs, as rss-trace.ts);
 *   LEAK_HEAP_SNAPSHOTS=dir writes a V8 heap snapshot at each leak reading into dir, to compare
 *   what the heap holds after 30 and after all tasks (open both in Chrome DevTools, Comparison).
 * - idle RSS of fleetd (the bench's idle window, or here a 40 s window) beside a bare `node -e`
 *   process on the same machine (baseline.ts); target ≤ 80 MiB (issue #18; issue 10 asked 80 MB);
 * - exec → ready with fleetd's own breakdown (startup.ts);
 * - fleetd CPU seconds per idle hour (the idle window) and per task, and RSS after `leak tasks`
 *   trivial tasks against after 30 (leak.ts; bound ≤ 10 %).
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
import { bareNodeRss, type BareNodeResult } from './baseline';
import { EngineEvents, RawEngine } from './engine';
import type { BenchContext, BenchFleet } from './fleet-task';
import { BenchDaemon, buildFleetdBundle, experimentNodeArgs, withBenchDaemon } from './fleetd-process';
import { leakPhase, renderLeak, type LeakResult } from './leak';
import { formatLoad, loadAverage } from './machine';
import { renderStartup, startupOf, type StartupResult } from './startup';
import { summarize, type Summary } from './stats';
import { runStandalone } from './standalone';
import { stackEnv as localStackEnv } from '../harness/fleet';

/** Issue 10's "80 MB", decimal: 80·10⁶ bytes = 76.3 MiB. */
export const RSS_TARGET_ISSUE10_MIB = 80e6 / 1024 / 1024;
/** Issue #18's table: idle RSS ≤ 80 MiB (stretch 64 MiB), judged on the largest idle sample. */
export const RSS_TARGET_MIB = 80;

export interface MemoryResult {
  readonly idleRssMiB: Summary;
  readonly idleCpuSecondsPerHour: number;
  readonly bareNode: BareNodeResult;
  readonly startup: readonly StartupResult[];
  readonly leak?: LeakResult;
  readonly load: string;
}

export async function memoryPhase(ctx: BenchContext, o: { idleRssMiB: Summary; idleCpuSecondsPerHour: number; startup: readonly StartupResult[]; leakFleet?: BenchFleet; leakTasks: number; until: number }): Promise<MemoryResult> {
  const bareNode = await bareNodeRss();
  const leak = o.leakFleet && o.leakTasks > 30 ? await leakPhase(ctx, o.leakFleet, { first: 30, total: o.leakTasks, until: o.until }) : undefined;
  return { idleRssMiB: o.idleRssMiB, idleCpuSecondsPerHour: o.idleCpuSecondsPerHour, bareNode, startup: o.startup, leak, load: formatLoad(loadAverage()) };
}

export function renderMemory(r: MemoryResult): string {
  const idle = r.idleRssMiB;
  const bare = r.bareNode.rssMiB.median;
  return [
    `memory and start-up (issue #18; load average ${r.load})`,
    `  idle RSS: fleetd median ${idle.median.toFixed(1)} MiB (max ${idle.max.toFixed(1)}, ${idle.n} samples) beside a bare node -e ${bare.toFixed(1)} MiB: fleetd's own ${(idle.median - bare).toFixed(1)} MiB; target ≤ ${RSS_TARGET_MIB} MiB (issue #18) ${idle.max <= RSS_TARGET_MIB ? 'met' : 'MISSED'}, issue 10's ≤ 80 MB (${RSS_TARGET_ISSUE10_MIB.toFixed(1)} MiB) ${idle.max <= RSS_TARGET_ISSUE10_MIB ? 'met' : 'missed'}, stretch ≤ 64 MiB ${idle.max <= 64 ? 'met' : 'missed'}`,
    `  idle CPU seconds per hour: ${r.idleCpuSecondsPerHour.toFixed(1)}`,
    renderStartup(r.startup),
    ...(r.leak ? [renderLeak(r.leak)] : []),
  ].join('\n');
}

async function main(): Promise<void> {
  const stackEnv = localStackEnv();
  const leakTasks = Number(process.argv[2] ?? 300);
  const windowS = Number(process.env.RSS_WINDOW_S ?? 40);
  const say = (line: string) => console.error(`[memory] ${line}`);
  say(`load average ${formatLoad(loadAverage())}`);
  const clients = createAwsClients();
  const [bundle, resources] = await Promise.all([buildFleetdBundle(), provisionFleet(clients, `mem${Date.now().toString(36)}`, { instances: 1, minSize: 1, maxSize: 1 })]);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-mem-'));
  const docker = dockerClient(stackEnv.DOCKER_HOST);
  const events = await EngineEvents.start(docker);
  const ctx: BenchContext = { docker, events, raw: new RawEngine(docker, runDir, 'mem-raw'), demoImage: stackEnv.FLEET_LOCAL_DEMO_IMAGE, say };
  const snapshotDir = process.env.LEAK_HEAP_SNAPSHOTS;
  // On SIGUSR2 node writes Heap.<date>.<pid>.<n>.heapsnapshot into the diagnostic dir.
  const nodeArgs = experimentNodeArgs(snapshotDir ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${path.resolve(snapshotDir)}`] : []);
  if (snapshotDir) fs.mkdirSync(snapshotDir, { recursive: true });
  say(`fleetd node flags: ${nodeArgs.join(' ')}`);
  const daemon = new BenchDaemon({ name: 'mem', fleet: resources, instanceId: resources.instanceIds[0], slots: 4, stackEnv, bundlePath: bundle.path, runDir, nodeArgs });
  await withBenchDaemon(daemon, { events, runDir }, async () => {
    const spawnedAt = Date.now();
    const readyAt = await daemon.boot();
    const startup = [startupOf(daemon, spawnedAt, readyAt)];
    await sleep(5000);
    const samples = [daemon.sample()];
    for (let t = 0; t < windowS; t += 2) {
      await sleep(2000);
      samples.push(daemon.sample());
    }
    const cpuPerHour = ((samples.at(-1)!.cpuSeconds - samples[0].cpuSeconds) / ((samples.at(-1)!.at - samples[0].at) / 1000)) * 3600;
    const fleet: BenchFleet = { resources, daemon, client: new FleetClient(clients, resources) };
    const result = await memoryPhase(ctx, { idleRssMiB: summarize(samples.map((s) => s.rssKiB / 1024)), idleCpuSecondsPerHour: cpuPerHour, startup, leakFleet: fleet, leakTasks, until: Date.now() + 20 * 60_000 });
    console.log(renderMemory(result));
  });
}

if (require.main === module) runStandalone('memory', main);
