/**
 * Names a deployed fleet's parts agree on: the CDK app (infra/) creates them, the AMI bake
 * (packer/) installs or publishes them, fleetd uses them at run time.
 */

/** The systemd unit the AMI installs; the launch template's user data enables and starts it. */
export const FLEETD_SYSTEMD_UNIT = 'fleetd.service';

/**
 * Name of the Auto Scaling group's termination lifecycle hook. fleetd sends
 * RecordLifecycleActionHeartbeat for it while draining and completes it with
 * CompleteLifecycleAction (CONTINUE after a clean drain, ABANDON when a task could not be
 * released, which keeps the instance for inspection).
 */
export const TERMINATION_HOOK_NAME = 'fleetd-drain';

/**
 * Name of the group's launch lifecycle hook (autoscaling:EC2_INSTANCE_LAUNCHING, default result
 * ABANDON). fleetd completes it with CONTINUE once its preflight holds and the prepull images are
 * on the engine, or with ABANDON (and the reason in its instance row) when they cannot be made
 * to hold; with a warm pool it is completed twice, entering the pool and leaving it
 * (docs/lifecycle.md "Readiness").
 */
export const READINESS_HOOK_NAME = 'fleetd-ready';

/**
 * SSM parameter holding the id of the baked AMI (put there after `npm run bake`, see
 * infra/README.md); the CDK app resolves it at deploy time unless an AMI is given explicitly.
 */
export const DEFAULT_AMI_PARAMETER_NAME = '/agent-fleet/ami-id';
