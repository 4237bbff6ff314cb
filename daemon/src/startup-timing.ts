/**
 * Where fleetd's start-up time goes (issue #18: exec → ready ≤ 0.5 s plus the AWS round trips
 * it must make): each boot step marks when it ends, and the "fleetd ready" log line carries the
 * steps. Times are from the process's start (`performance.now()`, whose origin is the process's
 * start), so the first steps are Node's own bootstrap and the loading of fleetd's modules.
 */
import { performance } from 'node:perf_hooks';

export interface StartupSummary {
  /** Process start → the last mark, ms. */
  readonly total_ms: number;
  /** Each step's share, ms, in the order the steps first ended. */
  readonly steps_ms: Record<string, number>;
}

export class StartupTimer {
  private last = 0;
  private readonly steps = new Map<string, number>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /**
   * Node's bootstrap and the module load (everything before the first line of `fleetd run`):
   * the first mark, from `performance.nodeTiming` where Node provides it.
   */
  markProcessStart(bootstrapCompleteMs: number | null = performance.nodeTiming?.bootstrapComplete ?? null): void {
    if (bootstrapCompleteMs !== null && bootstrapCompleteMs > 0 && this.last === 0) {
      this.steps.set('node_bootstrap', bootstrapCompleteMs);
      this.last = bootstrapCompleteMs;
    }
    this.mark('module_load');
  }

  /** The time since the previous mark goes to `step` (added up when a step repeats, e.g. retried). */
  mark(step: string): void {
    const t = this.now();
    this.steps.set(step, (this.steps.get(step) ?? 0) + (t - this.last));
    this.last = t;
  }

  summary(): StartupSummary {
    return {
      total_ms: Math.round(this.last),
      steps_ms: Object.fromEntries([...this.steps].map(([k, v]) => [k, Math.round(v)])),
    };
  }
}
