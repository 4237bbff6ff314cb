/**
 * Scale from zero: this scaler on one workload under cold-start mitigations (none, an image
 * baked into the AMI, warm pools, an always-on floor of running instances), with the queue
 * wait each buys and what it costs. The assumptions (times, sizes, prices) are stated here and
 * printed under the table.
 */
import { DEFAULT_FLEET_PARAMS, NO_COLD_START, simulate, type ColdStartParams, type FleetParams, type SimResult } from './fleet';
import { formatDuration } from './report';
import { buildWorkload, type WorkloadSpec } from './workloads';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

/**
 * Cold-start assumptions for the table. Boot (launch → fleetd ready) is the base model's 50–90 s
 * (baked AMI 45–60 s plus fleetd's preflight).
 */
export const COLD_START: ColdStartParams = Object.freeze({
  /** A 4 GiB agent image (language toolchains + agent CLI; compressed transfer size). */
  imageBytes: 4 * GIB,
  /** 64 MiB/s effective: ECR download and single-threaded layer extraction on an xlarge. */
  pullBytesPerSecond: 64 * MIB,
  imagePrepulled: false,
  /** 2 % of boots fail preflight (or never bring fleetd up). */
  readinessFailureRate: 0.02,
  /** Detected and replaced 5 min after the boot should have finished. */
  readinessTimeoutSeconds: 300,
  /** Stopped → running → fleetd ready: no OS first boot, no cloud-init, no pull. */
  warmPool: { size: 0, startSeconds: { min: 20, max: 40 } },
});

/**
 * Prices: AWS list prices, us-east-1, Linux on-demand, as assumed on 2026-12-02 (not read from
 * the price list API): m7g.xlarge (the CDK default instance type) $0.1632/h; gp3 $0.08 per
 * GB-month for the 100 GiB root volume (the CDK default), a month being 730 h. Per-second
 * billing, the 60 s minimum ignored. Warm pools need on-demand instances (Auto Scaling does not
 * support a warm pool with spot or a mixed-instances policy), so the table runs on-demand and
 * without spot interruptions.
 */
export const PRICES = Object.freeze({
  asOf: '2026-12-02',
  region: 'us-east-1',
  instanceType: 'm7g.xlarge',
  onDemandPerHour: 0.1632,
  ebsPerGbMonth: 0.08,
  rootVolumeGb: 100,
  hoursPerMonth: 730,
});

export type Prices = typeof PRICES;

/** EBS cost of one instance's root volume per hour (running or stopped). */
export function ebsPerHour(prices: Prices = PRICES): number {
  return (prices.rootVolumeGb * prices.ebsPerGbMonth) / prices.hoursPerMonth;
}

export interface CostBreakdown {
  /** Group instance-hours plus warm-pool refills while they run. */
  readonly runningHours: number;
  /** Running hours × (on-demand + root volume). */
  readonly runningCost: number;
  /** Stopped pool hours × root volume only. */
  readonly poolEbsCost: number;
  readonly total: number;
}

export function costOf(r: Pick<SimResult, 'instanceHours' | 'coldStart'>, prices: Prices = PRICES): CostBreakdown {
  const runningHours = r.instanceHours + (r.coldStart?.poolRunningHours ?? 0);
  const runningCost = runningHours * (prices.onDemandPerHour + ebsPerHour(prices));
  const poolEbsCost = (r.coldStart?.poolStoppedHours ?? 0) * ebsPerHour(prices);
  return { runningHours, runningCost, poolEbsCost, total: runningCost + poolEbsCost };
}

export interface ColdStartVariant {
  readonly label: string;
  readonly poolSize: number;
  readonly minInstances: number;
  readonly imagePrepulled: boolean;
}

export const COLD_START_VARIANTS: readonly ColdStartVariant[] = [
  { label: 'no pool', poolSize: 0, minInstances: 0, imagePrepulled: false },
  { label: 'no pool, image baked in AMI', poolSize: 0, minInstances: 0, imagePrepulled: true },
  { label: 'warm pool 2', poolSize: 2, minInstances: 0, imagePrepulled: false },
  { label: 'warm pool 5', poolSize: 5, minInstances: 0, imagePrepulled: false },
  { label: 'warm pool 10', poolSize: 10, minInstances: 0, imagePrepulled: false },
  { label: 'always on: min 2 running', poolSize: 0, minInstances: 2, imagePrepulled: false },
  { label: 'always on: min 5 running', poolSize: 0, minInstances: 5, imagePrepulled: false },
  { label: 'always on: min 10 running', poolSize: 0, minInstances: 10, imagePrepulled: false },
  { label: 'warm pool 5 + image baked', poolSize: 5, minInstances: 0, imagePrepulled: true },
];

/** The fleet parameters of one variant: on-demand (no spot), cold start on. */
export function variantParams(v: ColdStartVariant, base: FleetParams = DEFAULT_FLEET_PARAMS, coldStart: ColdStartParams = COLD_START): FleetParams {
  return {
    ...base,
    spotPerInstanceHour: 0,
    minInstances: v.minInstances,
    coldStart: { ...coldStart, imagePrepulled: v.imagePrepulled, warmPool: { ...coldStart.warmPool, size: v.poolSize } },
  };
}

/** The same parameters with every cold-start part at zero (the reference for what it adds). */
export function withoutColdStart(base: FleetParams = DEFAULT_FLEET_PARAMS): FleetParams {
  return { ...base, minInstances: 0, coldStart: NO_COLD_START };
}

export interface ColdStartRow {
  readonly variant: ColdStartVariant;
  readonly result: SimResult;
  readonly cost: CostBreakdown;
}

export interface ColdStartTable {
  readonly workload: string;
  readonly tasks: number;
  /** Arrivals span [0, horizonS); costs are for the whole run. */
  readonly horizonS: number;
  readonly rows: readonly ColdStartRow[];
}

export function runColdStart(specs: readonly WorkloadSpec[], seed: number, variants: readonly ColdStartVariant[] = COLD_START_VARIANTS): ColdStartTable[] {
  return specs.map((spec) => {
    const workload = buildWorkload(spec, seed);
    const rows = variants.map((variant) => {
      const result = simulate(workload, 'scaler', variantParams(variant), seed);
      return { variant, result, cost: costOf(result) };
    });
    return { workload: spec.name, tasks: workload.arrivals.length, horizonS: spec.horizonS, rows };
  });
}

const COLUMNS: readonly { readonly head: string; readonly left?: boolean; readonly cell: (row: ColdStartRow, w: string) => string }[] = [
  { head: 'workload', left: true, cell: (_r, w) => w },
  { head: 'cold-start setting', left: true, cell: (r) => r.variant.label },
  { head: 'wait p50', cell: (r) => formatDuration(r.result.wait.p50) },
  { head: 'wait p95', cell: (r) => formatDuration(r.result.wait.p95) },
  { head: 'inst-hours', cell: (r) => r.cost.runningHours.toFixed(0) },
  { head: 'running $', cell: (r) => r.cost.runningCost.toFixed(2) },
  { head: 'pool EBS $', cell: (r) => r.cost.poolEbsCost.toFixed(2) },
  { head: 'cost $', cell: (r) => r.cost.total.toFixed(2) },
  { head: 'warm starts', cell: (r) => String(r.result.coldStart?.warmStarts ?? 0) },
  { head: 'pulls', cell: (r) => String(r.result.coldStart?.pulls ?? 0) },
  { head: 'boot fails', cell: (r) => String(r.result.coldStart?.readinessFailures ?? 0) },
  { head: 'lost', cell: (r) => String(r.result.lost) },
];

export function formatColdStartTable(tables: readonly ColdStartTable[]): string {
  const rows: string[][] = [COLUMNS.map((c) => c.head)];
  const groups: number[] = [];
  for (const t of tables) {
    groups.push(rows.length);
    const label = `${t.workload} (${t.tasks} tasks, ${t.horizonS / 3600} h)`;
    for (const r of t.rows) rows.push(COLUMNS.map((col) => col.cell(r, label)));
  }
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((cell, i) => (COLUMNS[i].left ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  ')];
  rows.slice(1).forEach((r, k) => {
    if (k > 0 && groups.includes(k + 1)) out.push('');
    out.push(line(r));
  });
  return out.join('\n');
}

export function formatColdStartNotes(seed: number, base: FleetParams = DEFAULT_FLEET_PARAMS, cs: ColdStartParams = COLD_START, prices: Prices = PRICES): string {
  const pullS = cs.imageBytes / cs.pullBytesPerSecond;
  const notes = [
    `this scaler only, seed ${seed}, on-demand (no spot: warm pools need on-demand); ${base.slotsPerInstance} slot per instance; max ${base.maxInstances} instances; idle self-termination after ${base.timings.idleBeforeTerminateSeconds / 60} min.`,
    `boot (launch → fleetd ready) ${base.bootSeconds.min}-${base.bootSeconds.max} s; image ${cs.imageBytes / GIB} GiB at ${cs.pullBytesPerSecond / MIB} MiB/s = ${Math.round(pullS)} s pull on an instance's first task, then cached ("image baked": 0 s, every instance); ${cs.readinessFailureRate * 100}% of boots fail readiness and are replaced ${cs.readinessTimeoutSeconds} s after their boot (billed, no task).`,
    `warm pool N: N stopped instances, initialised, image pulled (fleetd has no warm-up pull today: without a baked image that needs one); a scale-out starts one in ${cs.warmPool.startSeconds.min}-${cs.warmPool.startSeconds.max} s, and the pool refills with a new instance that boots, pulls and stops (billed while running; its boot may fail too). always on: min N = the group's MinSize, N idle instances running, image pulled.`,
    `cost = running instance-hours (group + pool refills) × ($${prices.onDemandPerHour}/h ${prices.instanceType} + $${ebsPerHour(prices).toFixed(4)}/h for its ${prices.rootVolumeGb} GB gp3 root) + stopped pool hours × $${ebsPerHour(prices).toFixed(4)}/h (EBS only: $${prices.ebsPerGbMonth}/GB-month); ${prices.region} list prices as assumed on ${prices.asOf}.`,
    'wait = arrival to container start (pull included), over tasks that started; inst-hours = running instance-hours (pool refills included); pulls = instances that pulled the image; boot fails = readiness failures (group and pool refills).',
  ];
  return notes.map((n) => `- ${n}`).join('\n');
}
