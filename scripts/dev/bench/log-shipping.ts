/**
 * What shipping task output to CloudWatch Logs costs fleetd (docs/logs.md): CPU seconds per MB
 * of shipped log. A part of the bench run on its own (it needs its own daemons and minutes):
 *   npx tsx scripts/dev/bench/log-shipping.ts     (needs `npm run local -- up`)
 *
 * The production bundle runs the same task twice, one daemon at a time on a throwaway fleet:
 * once with the task log group configured (`ship`), once without (`file only`). The task
 * prints LOG_BENCH_MB MB (default 16) of 100-byte lines in 1 MB bursts ~0.7 s apart, about the
 * pace one stream sustains (at most 2 calls a second of at most 10,000 events; against moto
 * each call is slower, so a little may still be dropped: the table says how much). fleetd's CPU time (utime + stime from /proc) over the task, minus the
 * `file only` run, divided by the MB shipped, is the figure. Also: the flood case (LOG_BENCH_FLOOD_MB,
 * default 100, as fast as the container can print): CPU per MB printed, MB shipped and dropped.
 * Writes bench/log-shipping.json.
 */
import '../../../daemon/src/quiet-sdk-warning';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAwsClients } from '../../../daemon/src/aws';
import { isTerminal } from '../../../daemon/src/contract';
import { FleetClient } from '../../lib/client';
import { provisionFleet, type FleetResources } from '../local/provision';
import { BenchDaemon, buildFleetdBundle } from './fleetd-process';
import { formatLoad, loadAverage } from './machine';
import { runStandalone } from './standalone';
import { stackEnv as localStackEnv } from '../harness/fleet';

const RESULTS = path.join(__dirname, '..', '..', '..', 'bench', 'log-shipping.json');

interface RunFigures {
  readonly variant: string;
  readonly printedMB: number;
  readonly cpuSeconds: number;
  readonly taskSeconds: number;
  readonly shippedMB?: number;
  readonly droppedMB?: number;
  readonly maxRssMiB: number;
}

const LINE = '='.repeat(99);
const paced = (mb: number) => `i=0; while [ $i -lt ${mb} ]; do yes "${LINE}" | head -c 1000000; sleep 0.7; i=$((i+1)); done`;
const flood = (mb: number) => `yes "${LINE}" | head -c ${mb * 1000000}`;

async function runOnce(variant: string, fleet: FleetResources, ship: boolean, script: string, printedMB: number, stackEnv: Record<string, string>, bundlePath: string, runDir: string): Promise<RunFigures> {
  const shape = ship ? fleet : ({ ...fleet, logGroup: undefined } as unknown as FleetResources);
  const d = new BenchDaemon({ name: variant.replace(/\W+/g, '-'), fleet: shape, instanceId: fleet.instanceIds[0], slots: 1, stackEnv: { ...stackEnv, FLEET_LOG_GROUP: '' }, bundlePath, runDir });
  await d.boot();
  try {
    const client = new FleetClient(createAwsClients(), fleet);
    const image = stackEnv.FLEET_LOCAL_DEMO_IMAGE;
    const { taskId } = await client.submitTask({ image, command: ['/bin/sh', '-c', script], memory_mb: 256, cpus: 1, timeout_s: 900 });
    let record = await client.getTask(taskId);
    while (!record.started_at) {
      await new Promise((r) => setTimeout(r, 100));
      record = await client.getTask(taskId);
    }
    const before = d.sample();
    let maxRss = before.rssKiB;
    while (!isTerminal(record.status)) {
      await new Promise((r) => setTimeout(r, 250));
      maxRss = Math.max(maxRss, d.sample().rssKiB);
      record = await client.getTask(taskId);
    }
    // The terminal write comes after the stream's last flush: the CPU of shipping is all in.
    const after = d.sample();
    const shipped = d.lines.find((l) => l.msg === 'task log shipped' && l.task_id === taskId) as { bytes?: number; dropped_bytes?: number } | undefined;
    return {
      variant,
      printedMB: printedMB,
      cpuSeconds: after.cpuSeconds - before.cpuSeconds,
      taskSeconds: ((record.finished_at ?? Date.now()) - record.started_at!) / 1000,
      ...(shipped ? { shippedMB: (shipped.bytes ?? 0) / 1e6, droppedMB: (shipped.dropped_bytes ?? 0) / 1e6 } : {}),
      maxRssMiB: maxRss / 1024,
    };
  } finally {
    await d.kill();
  }
}

export interface LogShippingResult {
  readonly runs: readonly RunFigures[];
  /** fleetd CPU seconds per MB shipped: (ship − file only) over MB shipped, paced. */
  readonly cpuSecondsPerShippedMB?: number;
}

/**
 * The paced pair (file only, then shipping) and, with `floodMb`, the flood pair, one daemon at a
 * time on `fleet` (which must have a task log group and one instance no other daemon uses).
 */
export async function logShippingPhase(args: { fleet: FleetResources; stackEnv: Record<string, string>; bundlePath: string; mb: number; floodMb?: number }): Promise<LogShippingResult> {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-logbench-'));
  const plan: Array<readonly [string, boolean, string, number]> = [
    ['file only, paced', false, paced(args.mb), args.mb],
    ['ship, paced', true, paced(args.mb), args.mb],
    ...(args.floodMb ? ([['file only, flood', false, flood(args.floodMb), args.floodMb], ['ship, flood', true, flood(args.floodMb), args.floodMb]] as const) : []),
  ];
  const runs: RunFigures[] = [];
  try {
    for (const [variant, ship, script, printed] of plan) {
      console.error(`log shipping: running ${variant}`);
      runs.push(await runOnce(variant, args.fleet, ship, script, printed, args.stackEnv, args.bundlePath, runDir));
    }
  } finally {
    fs.rmSync(runDir, { recursive: true, force: true });
  }
  const [filePaced, shipPaced] = runs;
  return { runs, ...(shipPaced.shippedMB ? { cpuSecondsPerShippedMB: (shipPaced.cpuSeconds - filePaced.cpuSeconds) / shipPaced.shippedMB } : {}) };
}

export function renderLogShipping(r: LogShippingResult): string {
  const lines = [`fleetd CPU for task output (load average ${formatLoad(loadAverage())})`];
  lines.push(`  ${'variant'.padEnd(20)} ${'printed'.padStart(8)} ${'shipped'.padStart(8)} ${'dropped'.padStart(8)} ${'cpu s'.padStart(7)} ${'cpu s/MB'.padStart(9)} ${'task s'.padStart(7)} ${'max RSS'.padStart(8)}`);
  for (const x of r.runs) {
    lines.push(`  ${x.variant.padEnd(20)} ${x.printedMB.toFixed(1).padStart(8)} ${(x.shippedMB ?? 0).toFixed(1).padStart(8)} ${(x.droppedMB ?? 0).toFixed(1).padStart(8)} ${x.cpuSeconds.toFixed(2).padStart(7)} ${(x.cpuSeconds / x.printedMB).toFixed(3).padStart(9)} ${x.taskSeconds.toFixed(1).padStart(7)} ${`${x.maxRssMiB.toFixed(0)} MiB`.padStart(8)}`);
  }
  const [, , fileFlood, shipFlood] = r.runs;
  lines.push(`  shipping costs ${r.cpuSecondsPerShippedMB === undefined ? 'n/a' : r.cpuSecondsPerShippedMB.toFixed(3)} fleetd CPU seconds per MB shipped (paced: ship minus file-only, over MB shipped)${shipFlood ? `; flood: ${(shipFlood.cpuSeconds - fileFlood.cpuSeconds).toFixed(2)} s more CPU for ${(shipFlood.shippedMB ?? 0).toFixed(1)} MB shipped, ${(shipFlood.droppedMB ?? 0).toFixed(1)} MB dropped` : ''}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const stackEnv = localStackEnv();
  const mb = Number(process.env.LOG_BENCH_MB ?? 16);
  const floodMb = Number(process.env.LOG_BENCH_FLOOD_MB ?? 100);
  const fleet = await provisionFleet(createAwsClients(), `logb${Date.now().toString(36)}`, { instances: 1, minSize: 1, maxSize: 1 });
  const bundle = await buildFleetdBundle();
  console.error(`load average ${formatLoad(loadAverage())}; bundle ${bundle.cached ? 'cached' : `built in ${bundle.seconds.toFixed(1)} s`}`);
  const result = await logShippingPhase({ fleet, stackEnv, bundlePath: bundle.path, mb, floodMb });
  console.log(renderLogShipping(result));
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, `${JSON.stringify({ at: new Date().toISOString(), load: loadAverage(), ...result }, null, 2)}\n`);
}

if (require.main === module) runStandalone('log-shipping', main);
