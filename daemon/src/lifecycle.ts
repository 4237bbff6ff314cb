/**
 * The instance's own lifecycle against Auto Scaling, apart from tasks (docs/lifecycle.md
 * "Ending", "Idle self-termination and scale-in protection"); instance-lifecycle.ts drives it:
 * - InterruptionWatcher: polls IMDS for a spot `instance-action` notice and for
 *   `autoscaling/target-lifecycle-state = Terminated` (a termination lifecycle hook is waiting);
 * - the termination hook's RecordLifecycleActionHeartbeat loop and CompleteLifecycleAction;
 * - idle self-termination: read the group's MinSize / DesiredCapacity, then
 *   TerminateInstanceInAutoScalingGroup with a decrement, treating AWS's refusal as "stay";
 * - scale-in protection at boot (never cleared: only the instance decides it is idle).
 * Decisions are pure functions (unit-tested); the AWS calls sit beside them.
 */
import {
  CompleteLifecycleActionCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  RecordLifecycleActionHeartbeatCommand,
  SetInstanceProtectionCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  type AutoScalingClient,
} from '@aws-sdk/client-auto-scaling';
import { awsErrorName } from './aws';
import { sleep } from './retry';
import type { ImdsClient } from './imds';
import type { Logger } from './log';

// ----- IMDS interruption watcher.

/** What the IMDS answers mean for this instance. */
export type Interruption =
  | { kind: 'spot'; action: string; time: string }
  | { kind: 'terminating'; state: string };

/** Spot first (it gives ~2 min and wins), then a termination lifecycle hook. */
export function interruptionFrom(spot: { action: string; time: string } | undefined, lifecycleState: string | undefined): Interruption | undefined {
  if (spot) return { kind: 'spot', action: spot.action, time: spot.time };
  if (lifecycleState === 'Terminated') return { kind: 'terminating', state: lifecycleState };
  return undefined;
}

/** Watcher interval: 5 s, ±20 % jitter. */
export const IMDS_WATCH_INTERVAL_MS = 5000;
export function watchDelayMs(random: () => number = Math.random): number {
  return Math.round(IMDS_WATCH_INTERVAL_MS * (0.8 + random() * 0.4));
}

/**
 * Polls IMDS for interruptions. Interval: 5 s with ±20 % jitter (`watchDelayMs`): a spot notice
 * gives about 2 minutes, so 5 s costs little of it, and IMDS is local (no rate concern); the
 * jitter only keeps the loop from beating in step with the heartbeat loops. Each kind is
 * reported once. IMDS errors are logged (first one, then every 12th) and the loop goes on.
 */
export class InterruptionWatcher {
  private readonly abort = new AbortController();
  private readonly seen = new Set<Interruption['kind']>();
  private loop?: Promise<void>;
  /** Human-readable state of the loop, for `fleetd status`. */
  status = 'not started';
  /** The target lifecycle state of the last answer (readiness.ts reads it). */
  targetState?: string;
  /** Told every answered check's target lifecycle state (readiness.ts: the warm pool). */
  onTargetState?: (state: string | undefined) => void;

  constructor(
    private readonly imds: Pick<ImdsClient, 'spotInstanceAction' | 'targetLifecycleState'>,
    private readonly onInterruption: (i: Interruption) => void,
    private readonly log: Logger,
    private readonly delayMs: () => number = watchDelayMs,
  ) {}

  /** Starts the loop; resolves once the first check is done (an interruption found is reported by then). */
  start(): Promise<void> {
    return new Promise((resolve) => {
      this.loop ??= this.run(resolve);
    });
  }

  private async run(firstCheckDone: () => void): Promise<void> {
    let errors = 0;
    while (!this.abort.signal.aborted) {
      try {
        const [spot, state] = await Promise.all([this.imds.spotInstanceAction(), this.imds.targetLifecycleState()]);
        errors = 0;
        this.targetState = state;
        this.status = `watching: lifecycle state ${state ?? 'unknown'}${spot ? `, spot notice ${spot.action} at ${spot.time}` : ''}`;
        const found = interruptionFrom(spot, state);
        // A spot notice comes first; the hook (Terminated) usually follows it: report both.
        for (const i of [found, found?.kind === 'spot' ? interruptionFrom(undefined, state) : undefined]) {
          if (i && !this.seen.has(i.kind)) {
            this.seen.add(i.kind);
            this.onInterruption(i);
          }
        }
        this.onTargetState?.(state);
      } catch (err) {
        if (errors++ % 12 === 0) this.log.warn('IMDS watch failed; retrying', { error: err, failures: errors });
        this.status = `IMDS not answering (${errors} failures)`;
      }
      firstCheckDone();
      await sleep(this.delayMs(), this.abort.signal);
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }
}

// ----- Termination lifecycle hook.

export interface HookTarget {
  readonly autoscaling: AutoScalingClient;
  readonly asgName: string;
  readonly hookName: string;
  readonly instanceId: string;
  readonly log: Logger;
}

/**
 * RecordLifecycleActionHeartbeat at once, then every `intervalMs` until `signal` aborts.
 * Interval: `lifecycleHeartbeatSeconds` (60 s), no jitter (one instance, one hook). A failed
 * heartbeat is logged and retried on the next tick: the hook's own timeout is the backstop.
 * Returns how many heartbeats were accepted.
 */
export async function heartbeatLifecycleHook(t: HookTarget, intervalMs: number, signal: AbortSignal): Promise<number> {
  let sent = 0;
  while (!signal.aborted) {
    try {
      await t.autoscaling.send(new RecordLifecycleActionHeartbeatCommand({ AutoScalingGroupName: t.asgName, LifecycleHookName: t.hookName, InstanceId: t.instanceId }));
      sent++;
      t.log.info('lifecycle hook heartbeat sent', { hook: t.hookName, count: sent });
    } catch (err) {
      t.log.warn('lifecycle hook heartbeat failed', { hook: t.hookName, error: err });
    }
    await sleep(intervalMs, signal);
  }
  return sent;
}

/** CONTINUE after a drain that finished or released everything; ABANDON when a release failed. */
export async function completeLifecycleHook(t: HookTarget, result: 'CONTINUE' | 'ABANDON'): Promise<boolean> {
  try {
    await t.autoscaling.send(new CompleteLifecycleActionCommand({ AutoScalingGroupName: t.asgName, LifecycleHookName: t.hookName, InstanceId: t.instanceId, LifecycleActionResult: result }));
    t.log.info('lifecycle action completed', { hook: t.hookName, result });
    return true;
  } catch (err) {
    t.log.error('CompleteLifecycleAction failed; the hook times out on its own', { hook: t.hookName, result, error: err });
    return false;
  }
}

// ----- Idle self-termination.

export interface GroupFacts {
  readonly minSize: number;
  readonly desiredCapacity: number;
  /** This instance's lifecycle state in the group; undefined when it is not a member. */
  readonly memberState?: string;
}

export type IdleDecision = { terminate: true } | { terminate: false; reason: string };

/** AWS refuses a decrement below MinSize (moto does not): we decide before asking. */
export function decideIdleTermination(g: GroupFacts): IdleDecision {
  if (g.memberState === undefined) return { terminate: false, reason: 'this instance is not in the group' };
  if (g.memberState !== 'InService') return { terminate: false, reason: `this instance is ${g.memberState}, not InService` };
  if (g.desiredCapacity <= g.minSize) return { terminate: false, reason: `the group is at MinSize (desired ${g.desiredCapacity}, min ${g.minSize})` };
  return { terminate: true };
}

/** Why AWS refused TerminateInstanceInAutoScalingGroup, in words; every error means "stay". */
export function terminationRefusal(err: unknown): string {
  const name = awsErrorName(err) ?? 'Error';
  const message = err instanceof Error ? err.message : String(err);
  if (/ScalingActivityInProgress/.test(name)) return 'a scaling activity is in progress';
  if (name === 'ValidationError' && /min(imum)? ?size/i.test(message)) return `the group would go below MinSize (${message})`;
  return `${name}: ${message}`;
}

export type SelfTermination = { terminated: true; activity?: string } | { terminated: false; reason: string };

/** Reads min/desired, decides, and asks Auto Scaling to terminate us with a decrement. */
export async function terminateIfAboveMin(autoscaling: AutoScalingClient, asgName: string, instanceId: string): Promise<SelfTermination> {
  let facts: GroupFacts;
  try {
    const res = await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [asgName] }));
    const g = res.AutoScalingGroups?.[0];
    if (!g) return { terminated: false, reason: `group ${asgName} not found` };
    facts = { minSize: g.MinSize ?? 0, desiredCapacity: g.DesiredCapacity ?? 0, memberState: g.Instances?.find((i) => i.InstanceId === instanceId)?.LifecycleState };
  } catch (err) {
    return { terminated: false, reason: `reading the group failed: ${terminationRefusal(err)}` };
  }
  const decision = decideIdleTermination(facts);
  if (!decision.terminate) return { terminated: false, reason: decision.reason };
  try {
    const res = await autoscaling.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: instanceId, ShouldDecrementDesiredCapacity: true }));
    return { terminated: true, activity: res.Activity?.Description };
  } catch (err) {
    return { terminated: false, reason: `Auto Scaling refused: ${terminationRefusal(err)}` };
  }
}

// ----- Scale-in protection.

/**
 * Protects the instance from scale-in at boot (the group also protects new instances). Returns
 * undefined when protected, else why not: the caller fails the boot, because an unprotected
 * instance could be picked by a scale-in while it runs a task.
 */
export async function ensureScaleInProtection(autoscaling: AutoScalingClient, asgName: string, instanceId: string, log: Logger): Promise<string | undefined> {
  try {
    await autoscaling.send(new SetInstanceProtectionCommand({ AutoScalingGroupName: asgName, InstanceIds: [instanceId], ProtectedFromScaleIn: true }));
    return undefined;
  } catch (err) {
    // Without the permission (or with a transient error) the group's own setting may have done it.
    const res = await autoscaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] })).catch(() => undefined);
    const me = res?.AutoScalingInstances?.[0];
    if (me?.ProtectedFromScaleIn) {
      log.warn('SetInstanceProtection failed, but the instance is already protected from scale-in', { error: err });
      return undefined;
    }
    return `scale-in protection could not be set (${awsErrorName(err) ?? 'Error'}: ${(err as Error).message}) and the instance is not protected`;
  }
}
