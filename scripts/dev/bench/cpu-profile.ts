/**
 * Where fleetd's CPU per task goes (issue #18): one 4-slot fleetd (the production bundle, or
 * BENCH_BUNDLE) runs `tasks` trivial tasks under `--cpu-prof`, then gets SIGTERM and drains
 * (up to its 20 s long poll), so V8 writes the profile; then the profile's self time is summed
 * by function and by package / source file (through the bundle's source map's file names).
 *   npx tsx scripts/dev/bench/cpu-profile.ts [tasks, default 200] [profile dir, default a temp dir]
 * Also prints CPU seconds per task (utime + stime after the first 20 tasks). BENCH_NO_PROFILE=1
 * leaves `--cpu-prof` out (CPU per task without the profiler's cost); BENCH_SLOTS sets the slots.
 */
import '../../../daemon/src/quiet-sdk-warning';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAwsClients } from '../../../daemon/src/aws';
import { dockerClient } from '../../../daemon/src/docker';
import { FLEETD_NODE_FLAGS } from '../../../daemon/src/contract';
import { sleep } from '../../../daemon/src/retry';
import { FleetClient } from '../../lib/client';
import { provisionFleet } from '../local/provision';
import { EngineEvents, RawEngine } from './engine';
import { followToEnd, submit, trivialSpec, type BenchContext, type BenchFleet } from './fleet-task';
import { BenchDaemon, buildFleetdBundle, withBenchDaemon } from './fleetd-process';
import { formatLoad, loadAverage } from './machine';
import { runStandalone } from './standalone';
import { stackEnv as localStackEnv } from '../harness/fleet';

async function main(): Promise<void> {
  const stackEnv = localStackEnv();
  const tasks = Number(process.argv[2] ?? 200);
  const profDir = process.argv[3] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fleetd-cpuprof-'));
  fs.mkdirSync(profDir, { recursive: true });
  const slots = Number(process.env.BENCH_SLOTS ?? 4);
  const say = (line: string) => console.error(`[cpu-profile] ${line}`);
  say(`load average ${formatLoad(loadAverage())}`);
  const clients = createAwsClients();
  const [built, resources] = await Promise.all([buildFleetdBundle(), provisionFleet(clients, `prof${Date.now().toString(36)}`, { instances: 1, minSize: 1, maxSize: 1 })]);
  const bundlePath = process.env.BENCH_BUNDLE ?? built.path;
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-prof-'));
  const docker = dockerClient(stackEnv.DOCKER_HOST);
  const events = await EngineEvents.start(docker);
  const ctx: BenchContext = { docker, events, raw: new RawEngine(docker, runDir, 'prof-raw'), demoImage: stackEnv.FLEET_LOCAL_DEMO_IMAGE, say };
  const profiling = process.env.BENCH_NO_PROFILE ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=500'];
  const daemon = new BenchDaemon({ name: 'prof', fleet: resources, instanceId: resources.instanceIds[0], slots, stackEnv, bundlePath, runDir, nodeArgs: [...FLEETD_NODE_FLAGS, ...profiling] });
  const fleet: BenchFleet = { resources, daemon, client: new FleetClient(clients, resources) };
  const spec = trivialSpec(ctx.demoImage);
  await withBenchDaemon(daemon, { events, runDir }, async () => {
    await daemon.boot();
    let done = 0;
    let mark: { cpu: number; done: number; at: number } | undefined;
    while (done < tasks) {
      if (!mark && done >= 20) mark = { cpu: daemon.sample().cpuSeconds, done, at: Date.now() };
      const wave = Math.min(slots * 2, tasks - done);
      const submitted = await Promise.all(Array.from({ length: wave }, () => submit(fleet, spec)));
      const ends = await Promise.all(submitted.map((s) => followToEnd(ctx, fleet, s.taskId)));
      const failed = ends.filter((e) => e.status !== 'COMPLETED').length;
      if (failed) say(`${failed} task(s) did not complete`);
      done += wave;
    }
    await sleep(2000);
    const end = daemon.sample().cpuSeconds;
    if (mark) console.log(`fleetd CPU s/task: ${((end - mark.cpu) / (done - mark.done)).toFixed(4)} over ${done - mark.done} tasks, ${((done - mark.done) / ((Date.now() - mark.at) / 60000)).toFixed(0)} tasks/min (waves of ${slots * 2}); load ${formatLoad(loadAverage())}`);
    if (profiling.length) {
      process.kill(daemon.pid, 'SIGTERM');
      // The drain waits out the 20 s long poll; V8 writes the profile as the process exits.
      const pid = daemon.pid;
      const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && alive()) await sleep(500);
      console.log(`profile: ${fs.readdirSync(profDir).map((f) => path.join(profDir, f)).join(' ')} (source map: ${bundlePath}.map; read both with cpu-profile-summary.ts)`);
    }
  });
}

if (require.main === module) runStandalone('cpu-profile', main);
