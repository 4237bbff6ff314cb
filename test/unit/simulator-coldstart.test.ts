/**
 * The cold-start model: image pull, readiness failures, warm pools, an always-on floor, and
 * what they cost. Virtual time only: every figure is a simulated second, nothing is timed.
 */
import { COLD_START, COLD_START_VARIANTS, PRICES, costOf, ebsPerHour, formatColdStartTable, runColdStart, variantParams, withoutColdStart } from '../../scripts/dev/sim/coldstart';
import { DEFAULT_FLEET_PARAMS, NO_COLD_START, simulate, type ColdStartParams, type FleetParams, type SimResult } from '../../scripts/dev/sim/fleet';
import { SMALL_WORKLOAD, SPARSE_WORKLOAD, WORKLOADS, buildWorkload, type Workload } from '../../scripts/dev/sim/workloads';

const SEED = 7;

/** Fleet params with spot off and the given cold-start parts (the rest at zero). */
function params(cold: Partial<ColdStartParams> = {}, overrides: Partial<FleetParams> = {}): FleetParams {
  return { ...DEFAULT_FLEET_PARAMS, spotPerInstanceHour: 0, coldStart: { ...NO_COLD_START, ...cold }, ...overrides };
}

/** A hand-made workload: tasks at `arrivals` (s) running `durations` (s). */
function handMade(arrivals: number[], durations: number[], horizonS = 3600): Workload {
  return { name: 'hand-made', description: 'test', horizonS, arrivals: Float64Array.from(arrivals), durations: Float64Array.from(durations) };
}

/** The result without the cold-start counters: what the base model reports. */
function base(r: SimResult): Omit<SimResult, 'coldStart'> {
  const { coldStart: _counters, ...rest } = r;
  return rest;
}

const PULL_60S: Partial<ColdStartParams> = { imageBytes: 60 * 1024 ** 2, pullBytesPerSecond: 1024 ** 2 };
const FIXED_BOOT: Partial<FleetParams> = { bootSeconds: { min: 60, max: 60 } };

describe('cold start: image pull', () => {
  it('delays an uncached instance’s first task by the pull, and not the next task on it (cached)', () => {
    // Prepare: one task at 0 (the fleet is at zero: boot 60 s, then the 60 s pull), one at
    // 500 s on the same instance, idle since 220 s (inside the 10 min idle timeout).
    const w = handMade([0, 500], [100, 100]);
    // Act
    const r = simulate(w, 'scaler', params(PULL_60S, FIXED_BOOT), SEED);
    // Assess
    expect(r.launches).toBe(1);
    expect(r.coldStart?.pulls).toBe(1);
    expect(r.wait.max).toBe(120);
    expect(r.wait.p50).toBe(0);
  });

  it('increases queue wait for an uncached image', () => {
    // Prepare
    const w = buildWorkload(SMALL_WORKLOAD, SEED);
    // Act
    const noPull = simulate(w, 'scaler', params(), SEED);
    const pulled = simulate(w, 'scaler', params(PULL_60S), SEED);
    // Assess: the tasks that met a fresh instance waited 60 s more.
    expect(pulled.coldStart?.pulls).toBeGreaterThan(0);
    expect(pulled.coldStart?.pulls).toBeLessThanOrEqual(pulled.launches);
    expect(pulled.wait.p95).toBeGreaterThan(noPull.wait.p95 + 30);
    expect(pulled.wait.max).toBeGreaterThan(noPull.wait.max);
    expect(pulled.lost).toBe(0);
  });

  it('changes nothing for a prepulled (baked) image, however large', () => {
    // Prepare
    const w = buildWorkload(SMALL_WORKLOAD, SEED);
    // Act
    const noPull = simulate(w, 'scaler', params(), SEED);
    const baked = simulate(w, 'scaler', params({ ...PULL_60S, imageBytes: 100 * 1024 ** 3, imagePrepulled: true }), SEED);
    // Assess
    expect(baked.coldStart?.pulls).toBe(0);
    expect(base(baked)).toEqual(base(noPull));
  });

  it('finds the image on a fleet that was already up at t = 0 (the push pool pulls nothing)', () => {
    // Prepare: a pool of one; a 2-minute pull if it had to.
    const w = handMade([10], [59 * 60]);
    // Act
    const r = simulate(w, 'push-pool', params({ imageBytes: 120, pullBytesPerSecond: 1 }, { push: { ...DEFAULT_FLEET_PARAMS.push, poolSize: 1 } }), SEED);
    // Assess: had it pulled, the 59-min task would have run past the 1-hour SSM timeout.
    expect(r.coldStart?.pulls).toBe(0);
    expect(r.wait.max).toBe(0);
    expect(r.completed).toBe(1);
  });
});

describe('cold start: readiness failures', () => {
  it('reduce effective capacity: failed boots are replaced, tasks wait longer', () => {
    // Prepare
    const w = buildWorkload(SMALL_WORKLOAD, SEED);
    // Act
    const healthy = simulate(w, 'scaler', params(), SEED);
    const flaky = simulate(w, 'scaler', params({ readinessFailureRate: 0.3, readinessTimeoutSeconds: 300 }), SEED);
    // Assess
    expect(healthy.coldStart?.readinessFailures).toBe(0);
    expect(flaky.coldStart?.readinessFailures).toBeGreaterThan(10);
    expect(flaky.launches).toBeGreaterThanOrEqual(healthy.launches + (flaky.coldStart?.readinessFailures ?? 0) / 2);
    expect(flaky.wait.p95).toBeGreaterThan(healthy.wait.p95 + 60);
    expect(flaky.lost).toBe(0);
    expect(flaky.completed).toBe(w.arrivals.length);
  });

  it('never become capacity: with every boot failing, no task ever starts and each instance is replaced after the bounded wait', () => {
    // Prepare: one task; boots of 60 s, each failing, detected 240 s later; give up after 1 h.
    const w = handMade([0], [100], 60);
    // Act
    const r = simulate(w, 'scaler', params({ readinessFailureRate: 1, readinessTimeoutSeconds: 240 }, { ...FIXED_BOOT, drainLimitSeconds: 3600 }), SEED);
    // Assess: a launch every 300 s (0, 300, …, 3600) over the 3,660 s run, each boot failing
    // 60 s after its launch (the last at 3660 s, the run's end).
    expect(r.completed).toBe(0);
    expect(r.lost).toBe(1);
    expect(r.launches).toBe(13);
    expect(r.coldStart?.readinessFailures).toBe(13);
    expect(r.peakInstances).toBe(1);
    expect(r.instanceHours).toBeCloseTo(3660 / 3600, 9); // billed the whole time, for nothing
  });
});

describe('cold start: warm pool', () => {
  const pool = (size: number): Partial<ColdStartParams> => ({ ...COLD_START, warmPool: { ...COLD_START.warmPool, size } });

  it('lowers p95 queue wait from zero on the sparse bursts (pool of 50 vs none)', () => {
    // Prepare
    const w = buildWorkload(SPARSE_WORKLOAD, SEED);
    // Act
    const none = simulate(w, 'scaler', params(pool(0)), SEED);
    const warm = simulate(w, 'scaler', params(pool(50)), SEED);
    // Assess: cold = boot 50-90 s + 64 s pull; warm = a 20-40 s start (+ the 10 s scaler tick).
    expect(none.wait.p95).toBeGreaterThan(120);
    expect(warm.wait.p95).toBeLessThanOrEqual(50);
    expect(warm.coldStart?.warmStarts).toBeGreaterThan(0);
    expect(warm.coldStart?.pulls).toBe(0);
  });

  it('lowers p95 queue wait on the bursty workload when it covers a burst’s first wave (pool of 1000 vs none)', () => {
    // Prepare
    const w = buildWorkload(WORKLOADS.bursty, SEED);
    // Act
    const none = simulate(w, 'scaler', params(pool(0)), SEED);
    const warm = simulate(w, 'scaler', params(pool(1000)), SEED);
    // Assess
    expect(warm.wait.p95).toBeLessThan(none.wait.p95 - 60);
    expect(warm.lost).toBe(0);
  });

  it('costs only EBS while its instances stay stopped', () => {
    // Prepare: min 1 running instance takes every task (one at a time), so the pool is never
    // touched; a pool of 3 sits stopped for the whole run.
    const w = handMade([0, 1000, 2000], [100, 100, 100]);
    const floor = { minInstances: 1 };
    // Act
    const noPool = simulate(w, 'scaler', params(pool(0), floor), SEED);
    const withPool = simulate(w, 'scaler', params(pool(3), floor), SEED);
    // Assess
    const hours = withPool.endS / 3600;
    expect(withPool.coldStart?.warmStarts).toBe(0);
    expect(withPool.coldStart?.poolRunningHours).toBe(0);
    expect(withPool.coldStart?.poolStoppedHours).toBeCloseTo(3 * hours, 9);
    expect(withPool.instanceHours).toBe(noPool.instanceHours);
    const extra = costOf(withPool).total - costOf(noPool).total;
    expect(extra).toBeCloseTo(3 * hours * ebsPerHour(), 9);
    expect(extra).toBeLessThan(3 * hours * PRICES.onDemandPerHour); // not billed as running
  });

  it('prices a stopped instance at its volume: 100 GB gp3 for a 730 h month is $8', () => {
    const c = costOf({ instanceHours: 0, coldStart: { pulls: 0, readinessFailures: 0, warmPoolSize: 1, warmStarts: 0, poolRunningHours: 0, poolStoppedHours: 730 } });
    expect(c.poolEbsCost).toBeCloseTo(8, 9);
    expect(c.runningCost).toBe(0);
    expect(costOf({ instanceHours: 1 }).total).toBeCloseTo(0.1632 + 8 / 730, 9);
  });

  it('bills a refill while it boots and pulls, then stops it', () => {
    // Prepare: one task at t = 0 takes the one pooled instance; the refill boots (60 s) and
    // pulls (60 s), then stops.
    const w = handMade([0], [100]);
    // Act
    const r = simulate(w, 'scaler', params({ ...PULL_60S, warmPool: { size: 1, startSeconds: { min: 30, max: 30 } } }, FIXED_BOOT), SEED);
    // Assess
    expect(r.coldStart?.warmStarts).toBe(1);
    expect(r.coldStart?.pulls).toBe(0);
    expect(r.wait.max).toBe(30);
    expect(r.coldStart?.poolRunningHours).toBeCloseTo(120 / 3600, 9);
    // Stopped: one instance from 0 until taken at 0, then the refill from 120 s to the end.
    expect(r.coldStart?.poolStoppedHours).toBeCloseTo((r.endS - 120) / 3600, 9);
  });
});

describe('cold start: always-on floor (min capacity)', () => {
  it('keeps min instances running and starts a task arriving at an idle fleet at once', () => {
    // Prepare
    const w = handMade([0, 5000], [100, 100], 6000);
    // Act
    const r = simulate(w, 'scaler', params(PULL_60S, { minInstances: 2 }), SEED);
    const zero = simulate(w, 'scaler', params(PULL_60S), SEED);
    // Assess
    expect(r.wait.max).toBe(0);
    expect(r.launches).toBe(2);
    expect(Math.min(...r.series.instances)).toBe(2);
    expect(r.instanceHours).toBeCloseTo((2 * r.endS) / 3600, 9);
    expect(zero.wait.max).toBeGreaterThan(60);
  });
});

describe('cold-start table', () => {
  it('is deterministic for a seed and loses no task', () => {
    const a = runColdStart([SMALL_WORKLOAD], SEED);
    const b = runColdStart([SMALL_WORKLOAD], SEED);
    expect(formatColdStartTable(b)).toBe(formatColdStartTable(a));
    for (const row of a[0].rows) expect(row.result.lost).toBe(0);
    expect(a[0].rows.map((r) => r.variant.label)).toEqual(COLD_START_VARIANTS.map((v) => v.label));
  });

  it('runs each variant on-demand with the stated assumptions', () => {
    const p = variantParams({ label: 'x', poolSize: 5, minInstances: 2, imagePrepulled: true });
    expect(p.spotPerInstanceHour).toBe(0);
    expect(p.minInstances).toBe(2);
    expect(p.coldStart).toEqual({ ...COLD_START, imagePrepulled: true, warmPool: { ...COLD_START.warmPool, size: 5 } });
    expect(withoutColdStart().coldStart).toBe(NO_COLD_START);
  });
});
