/**
 * The fleet simulator: deterministic for a seed, this scaler loses nothing, and the models of
 * the other two policies behave as their notes say.
 */
import { compareOnWorkload } from '../../scripts/dev/sim/compare';
import { DEFAULT_FLEET_PARAMS, POLICIES, percentile, simulate, type FleetParams } from '../../scripts/dev/sim/fleet';
import { Prng } from '../../scripts/dev/sim/prng';
import { formatTable } from '../../scripts/dev/sim/report';
import { renderSvg } from '../../scripts/dev/sim/svg';
import { SMALL_WORKLOAD, buildWorkload } from '../../scripts/dev/sim/workloads';

const SEED = 7;

function withParams(overrides: Partial<FleetParams>): FleetParams {
  return { ...DEFAULT_FLEET_PARAMS, ...overrides };
}

describe('simulator', () => {
  it('is deterministic for a seed', () => {
    // Act
    const a = compareOnWorkload(SMALL_WORKLOAD, SEED);
    const b = compareOnWorkload(SMALL_WORKLOAD, SEED);
    // Assess
    expect(b.results).toEqual(a.results);
    expect(formatTable([b])).toBe(formatTable([a]));
    expect(renderSvg([b], 'x')).toBe(renderSvg([a], 'x'));
  });

  it('changes with the seed', () => {
    expect(buildWorkload(SMALL_WORKLOAD, SEED + 1).arrivals).not.toEqual(buildWorkload(SMALL_WORKLOAD, SEED).arrivals);
  });

  it('this scaler loses no task and fails none, even under heavy spot interruptions', () => {
    // Prepare: one interruption per 5 instance-hours.
    const workload = buildWorkload(SMALL_WORKLOAD, SEED);
    // Act
    const r = simulate(workload, 'scaler', withParams({ spotPerInstanceHour: 0.2 }), SEED);
    // Assess
    expect(r.lost).toBe(0);
    expect(r.failed).toBe(0);
    expect(r.completed).toBe(workload.arrivals.length);
    expect(r.spotInterruptions).toBeGreaterThan(0);
    expect(r.restarts).toBeGreaterThan(0);
  });

  it('accounts for every task exactly once under every policy', () => {
    const c = compareOnWorkload(SMALL_WORKLOAD, SEED);
    for (const p of POLICIES) {
      const r = c.results[p];
      expect(r.completed + r.failed + r.lost).toBe(r.tasks);
      expect(r.utilisation).toBeGreaterThan(0);
      expect(r.utilisation).toBeLessThanOrEqual(1);
    }
  });

  it('this scaler starts from zero instances and ends at zero', () => {
    const r = simulate(buildWorkload(SMALL_WORKLOAD, SEED), 'scaler', DEFAULT_FLEET_PARAMS, SEED);
    expect(r.series.instances[0]).toBe(0);
    expect(r.series.instances[r.series.instances.length - 1]).toBe(0);
  });

  it('target tracking cannot scale from zero: with min 0 nothing ever runs', () => {
    // Prepare
    const params = withParams({ targetTracking: { ...DEFAULT_FLEET_PARAMS.targetTracking, min: 0 }, drainLimitSeconds: 3600 });
    // Act
    const r = simulate(buildWorkload(SMALL_WORKLOAD, SEED), 'target-tracking', params, SEED);
    // Assess
    expect(r.completed).toBe(0);
    expect(r.lost).toBe(r.tasks);
  });

  it('push dispatch fails tasks that find no idle instance', () => {
    // Prepare: a pool of one, no spot.
    const params = withParams({ spotPerInstanceHour: 0, push: { ...DEFAULT_FLEET_PARAMS.push, poolSize: 1 } });
    // Act
    const r = simulate(buildWorkload(SMALL_WORKLOAD, SEED), 'push-pool', params, SEED);
    // Assess
    expect(r.failedBy['no idle instance']).toBeGreaterThan(r.tasks / 2);
    expect(r.peakInstances).toBe(1);
  });

  it('never runs more instances than the maximum', () => {
    const r = simulate(buildWorkload(SMALL_WORKLOAD, SEED), 'scaler', withParams({ maxInstances: 20 }), SEED);
    expect(r.peakInstances).toBeLessThanOrEqual(20);
    expect(r.lost).toBe(0);
  });
});

describe('percentile and Prng', () => {
  it.each([
    [50, 5],
    [95, 10],
    [100, 10],
    [0, 1],
  ])('p%d of 1..10 is %d (nearest rank)', (p, expected) => {
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], p)).toBe(expected);
  });

  it('replays the same stream for the same seed and label, another for another label', () => {
    const draw = (label: string) => {
      const r = new Prng(1, label);
      return Array.from({ length: 5 }, () => r.next());
    };
    expect(draw('a')).toEqual(draw('a'));
    expect(draw('a')).not.toEqual(draw('b'));
    expect(draw('a').every((x) => x >= 0 && x < 1)).toBe(true);
  });
});
