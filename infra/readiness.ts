/**
 * The launch readiness hook and the warm pool (docs/lifecycle.md "Readiness", issue #21).
 *
 * - `fleetd-ready` (READINESS_HOOK_NAME): EC2_INSTANCE_LAUNCHING, heartbeat timeout 15 min,
 *   default result ABANDON. A new instance waits in Pending:Wait (Warmed:Pending:Wait when it
 *   launches into the warm pool) until fleetd completes it: CONTINUE after its preflight and
 *   prepull, ABANDON with the reason when they fail (fleetd gives up after
 *   `readinessTimeoutSeconds`, 600 s, before the hook's own timeout). An instance whose fleetd
 *   never answers is abandoned by the timeout, so it never counts as capacity.
 * - A warm pool (`warmPool` prop) gets `reuseOnScaleIn: true` unless the prop says otherwise:
 *   an instance that scales in (fleetd's own idle self-termination) goes back to the pool
 *   through the termination hook (fleetd drains, completes `fleetd-drain`) instead of being
 *   terminated. The readiness hook runs again when a pooled instance is put in service.
 */
import { Duration } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import { READINESS_HOOK_NAME } from '../daemon/src/contract';

/** The readiness hook's heartbeat timeout: above fleetd's readinessTimeoutSeconds (600 s). */
export const READINESS_HOOK_TIMEOUT = Duration.minutes(15);

export function addReadinessHook(group: autoscaling.AutoScalingGroup): autoscaling.LifecycleHook {
  return group.addLifecycleHook('ReadinessHook', {
    lifecycleHookName: READINESS_HOOK_NAME,
    lifecycleTransition: autoscaling.LifecycleTransition.INSTANCE_LAUNCHING,
    heartbeatTimeout: READINESS_HOOK_TIMEOUT,
    defaultResult: autoscaling.DefaultResult.ABANDON,
  });
}

/** The `warmPool` prop with the fleet's defaults (reuseOnScaleIn on). */
export function warmPoolOptions(o: autoscaling.WarmPoolOptions): autoscaling.WarmPoolOptions {
  return { reuseOnScaleIn: true, ...o };
}
