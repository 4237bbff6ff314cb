/**
 * Runs the three policies over a set of workloads for one seed. The fixed pool is given the
 * same budget as this scaler: its size is this scaler's mean fleet size over the same run.
 */
import { DEFAULT_FLEET_PARAMS, POLICIES, simulate, type FleetParams, type PolicyName, type SimResult } from './fleet';
import { buildWorkload, offeredLoad, type Workload, type WorkloadSpec } from './workloads';

export interface WorkloadComparison {
  readonly workload: Workload;
  readonly results: Readonly<Record<PolicyName, SimResult>>;
  /** Offered load (tasks that would be running with instant starts) at `times`. */
  readonly offered: { readonly times: number[]; readonly load: number[] };
}

export function compareOnWorkload(spec: WorkloadSpec, seed: number, params: FleetParams = DEFAULT_FLEET_PARAMS): WorkloadComparison {
  const workload = buildWorkload(spec, seed);
  const scaler = simulate(workload, 'scaler', params, seed);
  const poolSize = Math.max(1, Math.round(scaler.instanceHours / (scaler.endS / 3600)));
  const results: Record<PolicyName, SimResult> = {
    scaler,
    'target-tracking': simulate(workload, 'target-tracking', params, seed),
    'push-pool': simulate(workload, 'push-pool', { ...params, push: { ...params.push, poolSize: params.push.poolSize ?? poolSize } }, seed),
  };
  const end = Math.max(...POLICIES.map((p) => results[p].endS));
  const times: number[] = [];
  for (let t = 0; t <= end; t += params.sampleSeconds) times.push(t);
  return { workload, results, offered: { times, load: offeredLoad(workload, times) } };
}

export function compareAll(specs: readonly WorkloadSpec[], seed: number, params: FleetParams = DEFAULT_FLEET_PARAMS): WorkloadComparison[] {
  return specs.map((spec) => compareOnWorkload(spec, seed, params));
}
