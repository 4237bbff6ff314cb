/**
 * `npm run simulate [-- --seed N] [--out DIR] [--workloads steady,bursty,diurnal] [--no-cold-start]`
 *
 * Replays the workloads through a deterministic discrete-event model of the fleet under three
 * policies (this scaler; AWS target tracking; the replaced fixed pool with push dispatch),
 * prints the comparison table and writes `<out>/simulation.svg` and `<out>/results.json`.
 * Then the scale-from-zero table: this scaler with image pull, readiness failures, warm pools
 * and an always-on floor (docs/scaling.md), written to `<out>/cold-start.json` too.
 * Exits non-zero when this scaler loses a task: that is the property the design promises.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { COLD_START, PRICES, formatColdStartNotes, formatColdStartTable, runColdStart } from './sim/coldstart';
import { compareAll } from './sim/compare';
import { DEFAULT_FLEET_PARAMS, POLICIES } from './sim/fleet';
import { formatNotes, formatTable } from './sim/report';
import { renderSvg } from './sim/svg';
import { COLD_START_WORKLOADS, WORKLOADS, type WorkloadSpec } from './sim/workloads';

class SimulateUsageError extends Error {
  override readonly name = 'SimulateUsageError';
}

function options(argv: string[]): { seed: number; out: string; specs: WorkloadSpec[]; coldStart: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      seed: { type: 'string', default: '42' },
      out: { type: 'string', default: join('.fleet', 'sim') },
      workloads: { type: 'string', default: Object.keys(WORKLOADS).join(',') },
      'no-cold-start': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log('usage: npm run simulate -- [--seed N] [--out DIR] [--workloads steady,bursty,diurnal] [--no-cold-start]');
    process.exit(0);
  }
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed)) throw new SimulateUsageError(`--seed: got ${JSON.stringify(values.seed)}, expected an integer`);
  const specs = values.workloads.split(',').map((name) => {
    const spec = WORKLOADS[name.trim()];
    if (!spec) throw new SimulateUsageError(`--workloads: unknown workload ${JSON.stringify(name)}; choose from ${Object.keys(WORKLOADS).join(', ')}`);
    return spec;
  });
  return { seed, out: resolve(values.out), specs, coldStart: !values['no-cold-start'] };
}

function main(): number {
  const started = performance.now();
  const { seed, out, specs, coldStart } = options(process.argv.slice(2));
  const params = DEFAULT_FLEET_PARAMS;
  const comparisons = compareAll(specs, seed, params);
  const elapsed = (performance.now() - started) / 1000;

  console.log(formatTable(comparisons));
  console.log('');
  console.log(formatNotes(comparisons, params, seed));

  mkdirSync(out, { recursive: true });
  const svgPath = join(out, 'simulation.svg');
  const jsonPath = join(out, 'results.json');
  writeFileSync(svgPath, renderSvg(comparisons, `seed ${seed} · npm run simulate -- --seed ${seed} · simulated in ${elapsed.toFixed(1)} s`));
  writeFileSync(
    jsonPath,
    `${JSON.stringify(
      {
        seed,
        params,
        workloads: comparisons.map((c) => ({
          name: c.workload.name,
          description: c.workload.description,
          results: Object.fromEntries(POLICIES.map((p) => [p, { ...c.results[p], series: undefined }])),
        })),
      },
      null,
      2,
    )}\n`,
  );
  console.log('');
  console.log(`chart: ${svgPath}`);
  console.log(`results: ${jsonPath}`);
  console.log(
    `simulated ${comparisons.reduce((s, c) => s + c.workload.arrivals.length, 0)} tasks × ${POLICIES.length} policies in ${elapsed.toFixed(1)} s (${process.uptime().toFixed(1)} s including startup)`,
  );

  const lost = comparisons.filter((c) => c.results.scaler.lost > 0).map((c) => `${c.workload.name} (${c.results.scaler.lost})`);
  if (coldStart) {
    const csStarted = performance.now();
    const tables = runColdStart(COLD_START_WORKLOADS, seed);
    const csElapsed = (performance.now() - csStarted) / 1000;
    console.log('');
    console.log('Scale from zero: this scaler with cold start (image pull, readiness failures) under warm pools and an always-on floor');
    console.log('');
    console.log(formatColdStartTable(tables));
    console.log('');
    console.log(formatColdStartNotes(seed));
    const csPath = join(out, 'cold-start.json');
    writeFileSync(
      csPath,
      `${JSON.stringify(
        {
          seed,
          coldStart: COLD_START,
          prices: PRICES,
          workloads: tables.map((t) => ({
            name: t.workload,
            tasks: t.tasks,
            rows: t.rows.map((r) => ({ ...r.variant, cost: r.cost, result: { ...r.result, series: undefined } })),
          })),
        },
        null,
        2,
      )}\n`,
    );
    console.log('');
    console.log(`cold start: ${csPath}`);
    console.log(`simulated ${tables.reduce((s, t) => s + t.tasks * t.rows.length, 0)} task runs (${tables.length} workloads × ${tables[0]?.rows.length ?? 0} settings) in ${csElapsed.toFixed(1)} s`);
    for (const t of tables) for (const r of t.rows) if (r.result.lost > 0) lost.push(`${t.workload} / ${r.variant.label} (${r.result.lost})`);
  }

  if (lost.length > 0) {
    console.error(`FAIL: this scaler lost tasks on ${lost.join(', ')}`);
    return 1;
  }
  return 0;
}

try {
  process.exitCode = main();
} catch (err) {
  console.error(err instanceof SimulateUsageError ? err.message : err);
  process.exitCode = 2;
}
