/**
 * Leaving and re-entering the warm pool, driven by every answered IMDS check of the target
 * lifecycle state (lifecycle.ts InterruptionWatcher, every few seconds). docs/lifecycle.md "Warm pool".
 */
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { isReceiving, type FleetdStateHolder } from './fleetd-state';
import type { InstanceState } from './instance';
import type { Interruption } from './lifecycle';
import type { Logger } from './log';
import { targetPhase, type Readiness } from './readiness';

export interface WarmPoolDeps {
  readonly state: FleetdStateHolder;
  readonly readiness: Readiness;
  readonly instance: InstanceState;
  readonly autoscaling: AutoScalingClient;
  readonly log: Logger;
  /** The slots start polling (fleetd's enterService). */
  readonly enterService: () => Promise<void>;
  readonly stop: (reason: string) => Promise<void>;
  /** The termination path (instance-lifecycle.ts onInterruption). */
  readonly terminating: (interruption: Interruption) => void;
}

export class WarmPool {
  /** Leaving the warm pool (readiness again, then serving), while under way. */
  leaving?: Promise<void>;

  constructor(private readonly deps: WarmPoolDeps) {}

  /**
   * Warm and the target is service: readiness again (the prepull refreshed, the hook completed),
   * then serving. Serving and the target is `Warmed:*`: the group returns the instance to the
   * pool on scale-in (reuseOnScaleIn) through the termination hook: the termination path. Warm
   * and `Warmed:Terminated`: the same.
   */
  onTargetState(target: string | undefined): void {
    const { state, readiness, instance, log } = this.deps;
    const s = state.current;
    const phase = targetPhase(target);
    if (s.kind === 'warm' && phase === 'service' && !this.leaving) {
      log.info('leaving the warm pool: readiness, then claiming', { target_lifecycle_state: target });
      this.leaving = (async () => {
        const notReady = await readiness.prepare(state.receiveEnded);
        if (notReady) {
          await readiness.complete(target, 'ABANDON', notReady);
          await instance.reportUnhealthy(this.deps.autoscaling, `readiness: ${notReady}`);
          if (state.current.kind === 'warm') void this.deps.stop(`readiness failed leaving the warm pool: ${notReady}`);
          return;
        }
        await readiness.complete(target, 'CONTINUE');
        if (state.current.kind === 'warm') await this.deps.enterService();
      })()
        .catch((err) => log.error('leaving the warm pool failed', { error: err }))
        .finally(() => (this.leaving = undefined));
      return;
    }
    const returnedToPool = isReceiving(s) && phase === 'warmed';
    const terminatedFromPool = s.kind === 'warm' && target === 'Warmed:Terminated';
    if (returnedToPool || terminatedFromPool) this.deps.terminating({ kind: 'terminating', state: target! });
  }
}
