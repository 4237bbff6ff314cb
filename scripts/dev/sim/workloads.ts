/**
 * Workloads the simulator replays: arrival times and run durations, drawn once per seed and
 * shared by every policy so the policies are compared on exactly the same tasks.
 */
import { Prng } from './prng';

export interface Workload {
  readonly name: string;
  readonly description: string;
  /** Arrivals happen in [0, horizonS). */
  readonly horizonS: number;
  /** Arrival times (s), ascending. */
  readonly arrivals: Float64Array;
  /** Run time of each task (s) once started. */
  readonly durations: Float64Array;
}

export interface WorkloadSpec {
  readonly name: string;
  readonly description: string;
  readonly horizonS: number;
  /** Median run time (s) and log-normal sigma. Agent tasks: minutes to a couple of hours. */
  readonly medianDurationS: number;
  readonly durationSigma: number;
  /** Arrival times for this seed (unsorted is fine). */
  readonly arrivals: (rng: Prng, horizonS: number) => number[];
}

const HOUR = 3600;
const MIN_DURATION_S = 60;
const MAX_DURATION_S = 10 * HOUR;

/** Homogeneous Poisson arrivals at `perHour` over [from, to). */
function poisson(rng: Prng, perHour: number, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = from + rng.exponential(HOUR / perHour); t < to; t += rng.exponential(HOUR / perHour)) out.push(t);
  return out;
}

/** Non-homogeneous Poisson by thinning: `rate(t)` per hour, never above `peakPerHour`. */
function thinned(rng: Prng, peakPerHour: number, horizonS: number, rate: (t: number) => number): number[] {
  return poisson(rng, peakPerHour, 0, horizonS).filter((t) => rng.next() < rate(t) / peakPerHour);
}

export const WORKLOADS: Readonly<Record<string, WorkloadSpec>> = {
  steady: {
    name: 'steady',
    description: '12 h of Poisson arrivals, 250 tasks/h (~3,000 tasks), median run 12 min',
    horizonS: 12 * HOUR,
    medianDurationS: 12 * 60,
    durationSigma: 0.9,
    arrivals: (rng, horizon) => poisson(rng, 250, 0, horizon),
  },
  bursty: {
    name: 'bursty',
    description: '10,000 tasks in 12 h: four bursts of 2,400 within 3 min (1 h, 4 h, 7 h, 10 h) over a 33/h trickle, median run 12 min',
    horizonS: 12 * HOUR,
    medianDurationS: 12 * 60,
    durationSigma: 0.9,
    arrivals: (rng, horizon) => {
      const out = poisson(rng, 400 / 12, 0, horizon).slice(0, 400);
      for (const at of [1, 4, 7, 10]) for (let i = 0; i < 2400; i++) out.push(at * HOUR + rng.uniform(0, 180));
      return out;
    },
  },
  diurnal: {
    name: 'diurnal',
    description: '24 h, rate 25/h at night rising to 500/h at noon (~6,000 tasks), median run 20 min',
    horizonS: 24 * HOUR,
    medianDurationS: 20 * 60,
    durationSigma: 0.8,
    arrivals: (rng, horizon) =>
      thinned(rng, 500, horizon, (t) => 500 * (0.525 - 0.475 * Math.cos((2 * Math.PI * t) / (24 * HOUR)))),
  },
};

/**
 * Scale from zero: short bursts far enough apart that the fleet has scaled in to zero (10 min
 * idle) before most of them, as when a team fires a handful of agent tasks at a time. Not part
 * of WORKLOADS (the policy comparison); the cold-start table uses it.
 */
export const SPARSE_WORKLOAD: WorkloadSpec = {
  name: 'sparse',
  description: '7 days of bursts every 90 min on average (exponential gaps), each of 1 + lognormal(median 3, sigma 1) tasks (cap 50) within 60 s, median run 12 min',
  horizonS: 7 * 24 * HOUR,
  medianDurationS: 12 * 60,
  durationSigma: 0.9,
  arrivals: (rng, horizon) => {
    const out: number[] = [];
    for (let t = rng.exponential(1.5 * HOUR); t < horizon; t += rng.exponential(1.5 * HOUR)) {
      const size = Math.min(50, 1 + Math.floor(rng.logNormal(3, 1)));
      for (let i = 0; i < size; i++) out.push(Math.min(horizon - 1, t + rng.uniform(0, 60)));
    }
    return out;
  },
};

/** Workloads of the cold-start (scale-from-zero) table. */
export const COLD_START_WORKLOADS: readonly WorkloadSpec[] = [SPARSE_WORKLOAD, WORKLOADS.bursty, WORKLOADS.diurnal];

/** A small workload for tests: 300 tasks over 2 h with one burst. */
export const SMALL_WORKLOAD: WorkloadSpec = {
  name: 'small',
  description: '300 tasks over 2 h: a 100-task burst at 30 min over a steady 100/h',
  horizonS: 2 * HOUR,
  medianDurationS: 8 * 60,
  durationSigma: 0.8,
  arrivals: (rng, horizon) => {
    const out = poisson(rng, 100, 0, horizon).slice(0, 200);
    for (let i = 0; i < 100; i++) out.push(0.5 * HOUR + rng.uniform(0, 60));
    return out;
  },
};

export function buildWorkload(spec: WorkloadSpec, seed: number): Workload {
  const arrivalRng = new Prng(seed, `${spec.name}/arrivals`);
  const durationRng = new Prng(seed, `${spec.name}/durations`);
  const arrivals = Float64Array.from(spec.arrivals(arrivalRng, spec.horizonS)).sort();
  const durations = arrivals.map(() =>
    Math.min(MAX_DURATION_S, Math.max(MIN_DURATION_S, durationRng.logNormal(spec.medianDurationS, spec.durationSigma))),
  );
  return { name: spec.name, description: spec.description, horizonS: spec.horizonS, arrivals, durations };
}

/**
 * The offered load at each sample time: how many tasks would be running if every task started
 * the moment it arrived (the ideal instance count at one slot per instance).
 */
export function offeredLoad(w: Workload, times: readonly number[]): number[] {
  const ends = w.arrivals.map((a, i) => a + w.durations[i]).sort();
  let started = 0;
  let ended = 0;
  return times.map((t) => {
    while (started < w.arrivals.length && w.arrivals[started] <= t) started++;
    while (ended < ends.length && ends[ended] <= t) ended++;
    return started - ended;
  });
}
