/**
 * The simulator's figures before the cold-start model (commit ef3790a), pinned: the SHA-256 of
 * every policy's full result (series included) and the printed table for the default run. The
 * cold-start model only adds; with its parameters at zero these must not move.
 *
 * To regenerate after an intended change of the base model: `git stash`, check out ef3790a's
 * scripts/dev/sim, print `digest(result)` for the cases below, and explain the change.
 */
import { createHash } from 'node:crypto';
import { compareAll, compareOnWorkload } from '../../scripts/dev/sim/compare';
import { COLD_START } from '../../scripts/dev/sim/coldstart';
import { DEFAULT_FLEET_PARAMS, NO_COLD_START, POLICIES, type FleetParams, type PolicyName, type SimResult } from '../../scripts/dev/sim/fleet';
import { formatTable } from '../../scripts/dev/sim/report';
import { SMALL_WORKLOAD, WORKLOADS } from '../../scripts/dev/sim/workloads';

const digest = (r: SimResult) => createHash('sha256').update(JSON.stringify(r)).digest('hex');

/** The result as the model before cold start reported it: without the cold-start counters. */
function withoutCounters(r: SimResult): SimResult {
  const { coldStart: _counters, ...rest } = r;
  return rest;
}

/** seed → workload → policy → SHA-256 of JSON.stringify(result), from the code at ef3790a. */
const GOLDEN: Readonly<Record<number, Readonly<Record<string, Readonly<Record<PolicyName, string>>>>>> = {
  42: {
    steady: {
      scaler: 'b7e9858ad7ab910185d65b0244929a15c7f665eae4ceeccd4d900b49544fe8ab',
      'target-tracking': '1f893654986059c33bfecca6951f84d204bbb423cead5e240ef0fd2cc7bff0bd',
      'push-pool': 'f08fd78e923769d191ec95cbcec1543cf114dfca24ea661a8476f63b1b0a95f7',
    },
    bursty: {
      scaler: '6721d94c2eef493bd3f443d147655756d5b9bf06437e83562725c3d6e4ea8d02',
      'target-tracking': '6aa281a91b707c93139e90fde3ae3853699b912b7a1694c9d1760fb5a38fd94a',
      'push-pool': 'cbb27e523fdcbb3ca0f4598ac4219d71fdfe75eda76e3922efdf3507d73fa868',
    },
    diurnal: {
      scaler: '377146ea091b55d3ef22d0fb24fdde81ccc147580f46860141809d0fe98caed6',
      'target-tracking': 'fcff34b4b68417a0ef34b767447264502c186704f2c32f3348fb67be3f073517',
      'push-pool': '8be93014e8421ff8a5b16af239c52cad4f8b8de0cd618233a2aa71a4d05b6394',
    },
  },
  7: {
    steady: {
      scaler: 'b75a81629f7560d4227bb1470e44a653189c31566e6b0892164958e3b3c14a79',
      'target-tracking': '1e1bd6d1250ae878e376be7c318cbcbf94274475c0d205c6b720646a81df051b',
      'push-pool': '89b0576bbb478908207c7cbd4b76e4e04c23ea242311d87b5d87afe1242194de',
    },
    bursty: {
      scaler: '5d6f6682eacddb7417c72cda541aea3ce536ad9fc9c1a6bfce3e8114baa915bc',
      'target-tracking': '631fb506cdb3641f4499996aa2c890a80c77da1467785e36e82c840f374e529d',
      'push-pool': '40028ad029566684a13026ec8c22df6f4aabb24b6aabb849cf56087769c24b27',
    },
    diurnal: {
      scaler: '67ba32cbf76b317c8e4c0e2c78a6bbfeb3f5885baaf73c0c6a2689a2343a1195',
      'target-tracking': '3fb8affacecb0cec566647bb63e58944cc5c118e2db89016faa97c807eb800ee',
      'push-pool': 'fe237383f1a48cb1d5d31bdff1692a332423293a2375201ced014fc6c9974f84',
    },
    small: {
      scaler: '830e3a4e244a92116247e097632936e920904c79dd1e37657dc4bb67760ad748',
      'target-tracking': '56de701d22bfb87113fa3b5e418cfd0dc6a63b08acac42716bdb525392425e60',
      'push-pool': 'cf426e702205121192a75e4a434e88e588d197fa47b15b03cfdd66631cfdb097',
    },
  },
};

/** `npm run simulate`'s table at ef3790a (seed 42). */
const GOLDEN_TABLE = `workload  policy                  tasks  wait p50  wait p95  wait max  inst-hours  util  peak  restarts  failed  lost
--------  ----------------------  -----  --------  --------  --------  ----------  ----  ----  --------  ------  ----
steady    this scaler              3038        0s       19s       88s        1030   88%    98         6       0     0
steady    target tracking          3038        0s       68s      3.7m        1053   89%   102       138       9     0
steady    fixed pool, push (73)    3038        0s        0s        0s         952   83%    73         0     295     3

bursty    this scaler              9990      5.6m     22.3m     24.7m        3755   80%  1000        22       0     0
bursty    target tracking          9990      7.6m     24.2m     27.0m        4313   81%  1000      1856     329     0
bursty    fixed pool, push (257)   9990        0s        0s        0s        3298   12%   257         0    8627     3

diurnal   this scaler              6273        0s       29s      2.9m        3152   91%   280        30       0     0
diurnal   target tracking          6273        0s       68s      4.0m        3248   94%   282       389      20     0
diurnal   fixed pool, push (121)   6273        0s        0s        0s        3018   64%   121         0    1950    15`;

describe('simulator: the figures before the cold-start model', () => {
  it('prints the same default table (seed 42)', () => {
    expect(formatTable(compareAll(Object.values(WORKLOADS), 42))).toBe(GOLDEN_TABLE);
  });

  it.each([42, 7])('reproduces every result bit for bit (seed %d)', (seed) => {
    const specs = seed === 7 ? [...Object.values(WORKLOADS), SMALL_WORKLOAD] : Object.values(WORKLOADS);
    const got: Record<string, Record<string, string>> = {};
    for (const c of specs.map((s) => compareOnWorkload(s, seed))) {
      got[c.workload.name] = Object.fromEntries(POLICIES.map((p) => [p, digest(c.results[p])]));
    }
    expect(got).toEqual(GOLDEN[seed]);
  });
});

describe('simulator: the cold-start model at zero changes nothing', () => {
  const ZERO: Readonly<Record<string, FleetParams>> = {
    'every part off (NO_COLD_START, min 0)': { ...DEFAULT_FLEET_PARAMS, minInstances: 0, coldStart: NO_COLD_START },
    // The table's assumptions with the image baked, no readiness failure and no pool.
    'a 4 GiB image baked into the AMI, no failures, no pool': {
      ...DEFAULT_FLEET_PARAMS,
      minInstances: 0,
      coldStart: { ...COLD_START, imagePrepulled: true, readinessFailureRate: 0, warmPool: { ...COLD_START.warmPool, size: 0 } },
    },
  };

  it.each(Object.keys(ZERO))('%s: every result equals the pinned one (seeds 42 and 7)', (name) => {
    for (const seed of [42, 7]) {
      const specs = seed === 7 ? [...Object.values(WORKLOADS), SMALL_WORKLOAD] : Object.values(WORKLOADS);
      const got: Record<string, Record<string, string>> = {};
      for (const c of specs.map((s) => compareOnWorkload(s, seed, ZERO[name]))) {
        got[c.workload.name] = Object.fromEntries(POLICIES.map((p) => [p, digest(withoutCounters(c.results[p]))]));
        for (const p of POLICIES) {
          expect(c.results[p].coldStart).toEqual({ pulls: 0, readinessFailures: 0, warmPoolSize: 0, warmStarts: 0, poolRunningHours: 0, poolStoppedHours: 0 });
        }
      }
      expect(got).toEqual(GOLDEN[seed]);
    }
  });

  it('a pull, a failure rate or a pool does change the figures (the check above can fail)', () => {
    const pinned = GOLDEN[7].small.scaler;
    const run = (coldStart: FleetParams['coldStart'], minInstances = 0) =>
      digest(withoutCounters(compareOnWorkload(SMALL_WORKLOAD, 7, { ...DEFAULT_FLEET_PARAMS, minInstances, coldStart }).results.scaler));
    expect(run({ ...NO_COLD_START, imageBytes: 1, pullBytesPerSecond: 1 })).not.toBe(pinned);
    expect(run({ ...NO_COLD_START, readinessFailureRate: 0.05 })).not.toBe(pinned);
    expect(run({ ...NO_COLD_START, warmPool: { ...NO_COLD_START.warmPool, size: 1 } })).not.toBe(pinned);
    expect(run(NO_COLD_START, 1)).not.toBe(pinned);
    expect(run(NO_COLD_START)).toBe(pinned);
  });
});
