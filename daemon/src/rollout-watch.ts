/**
 * The rollout watcher (docs/operations.md "Rolling out a new launch template version"): reads
 * the rollout marker on the group (contract/rollout.ts) and moves fleetd between serving and
 * retiring (fleetd-state.ts). A retiring instance claims nothing new and lets its tasks run to
 * their end, however long (no drain budget: only their own timeouts); once nothing runs it asks
 * Auto Scaling to terminate it and drains (nothing left to drain), and the termination hook or
 * the shutdown stops fleetd, as after an idle self-termination.
 *
 * Intervals:
 * - the group read (DescribeAutoScalingGroups): on the instance heartbeat's cadence,
 *   every instanceHeartbeatSeconds (360 s by default) +0–10 % jitter (contract/timings.ts
 *   `instanceHeartbeatDelayMs`): 10 reads an idle hour, which with the one receive loop's 180
 *   long polls and the 10 instance-row writes keeps an idle instance at 200 AWS calls an hour.
 *   The lag this costs: an idle instance of the old version retires up to ~6.6 min after
 *   `fleet rollout start` (a busy one waits for its tasks anyway, which is what a rollout
 *   lasts), and an abort reaches a retiring instance as late. A rollout replaces instances
 *   over minutes to hours, so minutes of lag are acceptable (docs/operations.md); a hundred
 *   instances make one call every 3.6 s on an API whose rate the account shares. The jitter
 *   keeps instances booted together from reading in step. A failed read keeps the current
 *   state (logged the first time, then every 10th).
 * - the local check (is anything still running?): every 2 s while retiring, no jitter (memory
 *   only), so a retiring instance leaves within seconds of its last task's end.
 */
import {
  DescribeAutoScalingGroupsCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  type AutoScalingClient,
  type AutoScalingGroup,
} from '@aws-sdk/client-auto-scaling';
import { ROLLOUT_TAG_KEY, decideRollout, instanceHeartbeatDelayMs, decodeRolloutMarker, type RolloutDecision, type RolloutMarker } from './contract';
import type { FleetdConfig } from './config';
import type { FleetdStateHolder } from './fleetd-state';
import type { InstanceBuild } from './instance';
import { terminationRefusal } from './lifecycle';
import type { Logger } from './log';
import type { ReceiveActivity } from './receiver';
import { sleep } from './retry';

export const ROLLOUT_LOCAL_CHECK_MS = 2000;

/** The group read's delay: one instance heartbeat, +0–10 % jitter (contract/timings.ts). */
export function rolloutReadDelayMs(instanceHeartbeatSeconds: number, random: () => number = Math.random): number {
  return instanceHeartbeatDelayMs({ instanceHeartbeatSeconds }, random);
}

/** What the group says: the marker (undefined when none or malformed) and min / desired. */
export interface GroupReading {
  readonly marker?: RolloutMarker;
  readonly problem?: string;
  readonly minSize: number;
  readonly desiredCapacity: number;
  readonly memberState?: string;
}

export function readingOf(g: AutoScalingGroup, instanceId: string): GroupReading {
  const decoded = decodeRolloutMarker(g.Tags?.find((t) => t.Key === ROLLOUT_TAG_KEY)?.Value);
  return {
    ...(decoded.ok ? { marker: decoded.marker } : decoded.problem === 'no rollout tag' ? {} : { problem: decoded.problem }),
    minSize: g.MinSize ?? 0,
    desiredCapacity: g.DesiredCapacity ?? 0,
    memberState: g.Instances?.find((i) => i.InstanceId === instanceId)?.LifecycleState,
  };
}

/**
 * ShouldDecrementDesiredCapacity for a retired instance: true above MinSize (the scaler raises
 * capacity again from the queue, which it does for new-version instances; keeping the count
 * would launch a replacement even for an empty queue, which then idles 10 minutes); false at
 * MinSize, where AWS refuses a decrement (moto does not), and the group then replaces the
 * instance with one of the new version, which is what a rollout wants.
 */
export function shouldDecrement(r: Pick<GroupReading, 'minSize' | 'desiredCapacity'>): boolean {
  return r.desiredCapacity > r.minSize;
}

export interface RolloutWatchDeps {
  readonly autoscaling: AutoScalingClient;
  readonly asgName: string;
  readonly instanceId: string;
  readonly build?: InstanceBuild;
  readonly instanceHeartbeatSeconds: number;
  readonly state: FleetdStateHolder;
  readonly running: () => number;
  readonly activity: ReceiveActivity;
  readonly log: Logger;
  /** The state changed (serving ⇄ retiring): rewrite the instance row and tags. */
  readonly changed: () => void;
  /** Terminated through Auto Scaling: drain (nothing runs) and wait for the hook or shutdown. */
  readonly retired: (reason: string) => void;
}

export class RolloutWatch {
  private readonly stopping = new AbortController();
  private loop?: Promise<void>;
  private readFailures = 0;
  private lastReading?: GroupReading;
  private terminating = false;
  /** The last decision, for logs and tests. */
  decision?: RolloutDecision;

  constructor(private readonly d: RolloutWatchDeps) {}

  /** Reads the group once (and applies what it says), then keeps watching. */
  async start(): Promise<void> {
    await this.check();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    let nextRead = Date.now() + rolloutReadDelayMs(this.d.instanceHeartbeatSeconds);
    while (!this.stopping.signal.aborted) {
      const s = this.d.state.current.kind;
      if (s !== 'serving' && s !== 'paused' && s !== 'retiring') return;
      await sleep(s === 'retiring' ? Math.min(ROLLOUT_LOCAL_CHECK_MS, Math.max(0, nextRead - Date.now())) : Math.max(0, nextRead - Date.now()), this.stopping.signal);
      if (this.stopping.signal.aborted) return;
      if (Date.now() >= nextRead) {
        nextRead = Date.now() + rolloutReadDelayMs(this.d.instanceHeartbeatSeconds);
        await this.check();
      } else {
        await this.leaveIfDone();
      }
    }
  }

  /** One group read, then the transition it calls for. */
  async check(): Promise<void> {
    const { autoscaling, asgName, instanceId, log } = this.d;
    try {
      const res = await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [asgName] }));
      const g = res.AutoScalingGroups?.[0];
      if (!g) throw new Error(`group ${asgName} not found`);
      this.lastReading = readingOf(g, instanceId);
      this.readFailures = 0;
    } catch (err) {
      if (this.readFailures++ % 10 === 0) log.warn('reading the rollout marker failed; keeping the current state', { error: err, failures: this.readFailures });
      return;
    }
    if (this.lastReading.problem) log.warn('the rollout marker is malformed: ignored (fix or remove it with fleet rollout abort)', { problem: this.lastReading.problem });
    this.apply(decideRollout(this.lastReading.marker, { launchTemplateId: this.d.build?.launchTemplateId, launchTemplateVersion: this.d.build?.launchTemplateVersion }));
    await this.leaveIfDone();
  }

  private apply(decision: RolloutDecision): void {
    const { state, log } = this.d;
    this.decision = decision;
    const s = state.current;
    if (decision.retire && s.kind === 'serving') {
      state.to({ kind: 'retiring', reason: decision.why, since: Date.now() });
      log.info('retiring: claiming nothing new; the running tasks finish, then this instance terminates itself', { reason: decision.why, running: this.d.running() });
      this.d.changed();
    } else if (!decision.retire && s.kind === 'retiring' && !this.terminating) {
      state.to({ kind: 'serving' });
      this.d.activity.markBusy();
      log.info('rollout aborted or done: serving again', { reason: decision.why });
      this.d.changed();
    }
  }

  /** Retiring and nothing runs, nothing is being handled: terminate through Auto Scaling. */
  private async leaveIfDone(): Promise<void> {
    const { state, activity, autoscaling, instanceId, log } = this.d;
    const s = state.current;
    if (s.kind !== 'retiring' || this.terminating || this.d.running() > 0 || activity.handling > 0 || activity.inFlight > 0) return;
    const r = this.lastReading;
    if (!r) return;
    if (r.memberState !== undefined && r.memberState !== 'InService') {
      log.info('retired, but this instance is not InService in the group: waiting', { lifecycle_state: r.memberState });
      return;
    }
    this.terminating = true;
    const decrement = shouldDecrement(r);
    try {
      const res = await autoscaling.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: instanceId, ShouldDecrementDesiredCapacity: decrement }));
      log.info('retired: asked Auto Scaling to terminate this instance', { reason: s.reason, decrement_desired_capacity: decrement, min: r.minSize, desired: r.desiredCapacity, activity: res.Activity?.Description });
    } catch (err) {
      this.terminating = false;
      this.lastReading = undefined;
      log.warn('retired, but Auto Scaling refused to terminate this instance; trying again after the next read', { reason: terminationRefusal(err) });
      return;
    }
    this.d.retired(`rollout: retired (${s.reason})`);
  }
}

/** The watcher for fleetd's config, started (the first read done); undefined without asgName. */
export async function startRolloutWatch(
  config: Pick<FleetdConfig, 'asgName' | 'timings'>,
  autoscaling: AutoScalingClient,
  d: Omit<RolloutWatchDeps, 'autoscaling' | 'asgName' | 'instanceHeartbeatSeconds'>,
): Promise<RolloutWatch | undefined> {
  if (!config.asgName) return undefined;
  const watch = new RolloutWatch({ ...d, autoscaling, asgName: config.asgName, instanceHeartbeatSeconds: config.timings.instanceHeartbeatSeconds });
  await watch.start();
  return watch;
}
