/**
 * Launch readiness and the warm pool (docs/lifecycle.md "Readiness"; issue #21).
 *
 * The group's launch lifecycle hook (READINESS_HOOK_NAME, 'fleetd-ready': EC2_INSTANCE_LAUNCHING,
 * default result ABANDON) holds a new instance in `Pending:Wait` (or `Warmed:Pending:Wait` when
 * it launches into the warm pool) until fleetd completes it: CONTINUE once the preflight holds
 * and the prepull images are on the engine, ABANDON with the reason (also in the instance row
 * and tag, instance.ts reportUnhealthy) when they cannot be made to hold within
 * `readinessTimeoutSeconds`. With a warm pool the hook runs twice: entering the pool, and again
 * in `Pending:Wait` when the instance leaves it for service.
 *
 * Which hook applies: the one named in the config (`readinessHookName`; infra/ writes it), at
 * every boot and every change of the target lifecycle state between `Warmed:*` and service; or,
 * with none configured, READINESS_HOOK_NAME when IMDS's target-lifecycle-state itself reads
 * `Pending:Wait` / `Warmed:Pending:Wait`. On AWS that IMDS path holds the *target* state
 * (`InService`, `Warmed:Stopped`, `Warmed:Running`, `Terminated`), which never says a hook is
 * waiting, so a deployed fleet relies on the config. Completing a hook that is not waiting (a
 * fleetd restart on an instance already in service) is refused by Auto Scaling and logged.
 *
 * The target lifecycle state also decides the mode: `Warmed:*` → the `warm` state (prepared,
 * claims nothing); service → serving; `Terminated` / `Warmed:Terminated` → the termination path
 * (instance-lifecycle.ts).
 */
import { CompleteLifecycleActionCommand, type AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { awsErrorName } from './aws';
import type { FleetdConfig } from './config';
import { READINESS_HOOK_NAME } from './contract';
import type { Logger } from './log';
import type { Prepuller } from './prepull';

export type TargetPhase = 'service' | 'warmed' | 'terminating' | 'unknown';

/** What a target lifecycle state means for fleetd's mode. */
export function targetPhase(state: string | undefined): TargetPhase {
  if (!state) return 'unknown';
  if (state === 'Terminated' || state === 'Warmed:Terminated') return 'terminating';
  if (state.startsWith('Warmed:')) return 'warmed';
  if (state === 'InService' || state.startsWith('Pending')) return 'service';
  return 'unknown';
}

/** The launch hook to complete for this target state, if any (see the header). */
export function readinessHookFor(state: string | undefined, configured: string | undefined): string | undefined {
  if (configured) return configured;
  return state === 'Pending:Wait' || state === 'Warmed:Pending:Wait' ? READINESS_HOOK_NAME : undefined;
}

export interface ReadinessCompletion {
  readonly hook: string;
  readonly state: string | null;
  readonly result: 'CONTINUE' | 'ABANDON';
  readonly at: number;
  readonly outcome: string;
}

export interface ReadinessDeps {
  readonly config: FleetdConfig;
  readonly autoscaling: AutoScalingClient;
  readonly instanceId: string;
  readonly prepull: Prepuller;
  readonly log: Logger;
}

export class Readiness {
  /** Every completion sent (or why not), for `fleetd status` and the logs. */
  readonly completions: ReadinessCompletion[] = [];

  constructor(private readonly d: ReadinessDeps) {}

  /** The prepull images on the engine, retried until `readinessTimeoutSeconds`; the problem if not. */
  prepare(signal?: AbortSignal): Promise<string | undefined> {
    return this.d.prepull.prepare(Date.now() + this.d.config.readinessTimeoutSeconds * 1000, signal);
  }

  /**
   * CompleteLifecycleAction on the readiness hook when one applies to `state`. Never throws:
   * a failure is logged and the hook's own timeout (default result ABANDON) is the backstop.
   */
  async complete(state: string | undefined, result: 'CONTINUE' | 'ABANDON', reason?: string): Promise<void> {
    const { config, log } = this.d;
    const hook = readinessHookFor(state, config.readinessHookName);
    if (!hook) return;
    const record = (outcome: string) => this.completions.push({ hook, state: state ?? null, result, at: Date.now(), outcome });
    if (!config.asgName) {
      log.warn('no asgName in the config: the readiness hook cannot be completed; it times out on its own', { hook, result });
      record('no asgName');
      return;
    }
    try {
      await this.d.autoscaling.send(new CompleteLifecycleActionCommand({ AutoScalingGroupName: config.asgName, LifecycleHookName: hook, InstanceId: this.d.instanceId, LifecycleActionResult: result }));
      log.info('readiness hook completed', { hook, result, target_lifecycle_state: state, reason });
      record('completed');
    } catch (err) {
      // ValidationError "No active Lifecycle Action found": nothing was waiting (a fleetd
      // restart in service, or the group has no such hook). Anything else: the timeout decides.
      const name = awsErrorName(err) ?? 'Error';
      if (name === 'ValidationError') log.info('readiness hook: no lifecycle action was waiting', { hook, result, message: (err as Error).message });
      else log.error('CompleteLifecycleAction (readiness) failed; the hook times out on its own (default result ABANDON)', { hook, result, error: err });
      record(`${name}: ${(err as Error).message}`);
    }
  }
}
