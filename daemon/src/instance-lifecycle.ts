/**
 * How this instance ends (docs/lifecycle.md "Ending", "Idle self-termination and scale-in
 * protection"): the drain (SIGTERM, a second signal, the budget), the spot notice, the
 * termination lifecycle hook, and idle self-termination. The AWS calls are lifecycle.ts's; the
 * state changes go through fleetd-state.ts.
 */
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { FleetdConfig } from './config';
import { InstanceStatus } from './contract';
import { drainOf, isReceiving, type FleetdStateHolder } from './fleetd-state';
import type { InstanceState } from './instance';
import {
  completeLifecycleHook,
  heartbeatLifecycleHook,
  terminateIfAboveMin,
  type HookTarget,
  type Interruption,
  type SelfTermination,
} from './lifecycle';
import type { Logger } from './log';
import type { ReceiveActivity } from './receiver';
import { sleep } from './retry';
import type { TaskRun } from './task-run';

export interface DrainOptions {
  /** Release running tasks at once instead of giving them the drain budget (spot notice). */
  readonly abort?: boolean;
  readonly reason: string;
  /** @default config.drainBudgetSeconds */
  readonly budgetSeconds?: number;
}

export interface InstanceLifecycleDeps {
  readonly config: FleetdConfig;
  readonly autoscaling: AutoScalingClient;
  readonly instanceId: () => string;
  readonly instance: () => InstanceState | undefined;
  readonly state: FleetdStateHolder;
  readonly runs: ReadonlyMap<string, TaskRun>;
  readonly activity: ReceiveActivity;
  /** What a drain waits for: the receive loop (with its tasks and their tails) and the supervisions of re-adopted containers. */
  readonly loops: () => Promise<unknown>[];
  readonly log: Logger;
  readonly interrupted: (i: Interruption) => void;
  readonly idleChecked: (outcome: SelfTermination | { terminated: false; reason: string }) => void;
  /** Drain, complete the hook, close servers (Fleetd.stop). */
  readonly stop: () => Promise<void>;
}

export class InstanceLifecycle {
  private drainDone?: Promise<void>;
  private wakeDrain?: () => void;
  /** Tasks whose release failed during this drain (the hook then completes with ABANDON). */
  releaseFailures = 0;
  /** The termination hook's drain and completion, once it began. */
  hookDone?: Promise<void>;
  /** The idle check's last decision, for `fleetd status`. */
  idleState = 'not checked yet';

  constructor(private readonly d: InstanceLifecycleDeps) {}

  /**
   * Stop receiving at once; running tasks get the budget to finish, then are released
   * (INTERRUPTED, message visible again at once). `abort`: release at once; it also escalates
   * a drain already under way. Resolves once everything is drained.
   */
  drain(o: DrainOptions): Promise<void> {
    const { state, runs, log } = this.d;
    if (this.drainDone) {
      if (o.abort) this.releaseAll(o.reason);
      return this.drainDone;
    }
    state.to({ kind: 'draining', reason: o.reason, since: Date.now() });
    if (o.abort) this.releaseAll(o.reason);
    const budgetMs = (o.budgetSeconds ?? this.d.config.drainBudgetSeconds) * 1000;
    this.drainDone = (async () => {
      log.info('draining', { reason: o.reason, running: [...runs.keys()], abort: Boolean(o.abort), budget_s: budgetMs / 1000 });
      await this.d.instance()?.set(InstanceStatus.DRAINING, [...runs.keys()], o.reason);
      // The receive loop ends once its long poll returned (a message that poll brings is handed
      // back at once), its tasks are done and their background tails (message deletion,
      // container removal) finished; re-adopted containers are supervised apart.
      const allDone = Promise.all(this.d.loops());
      if (!this.releasing) {
        const wake = new AbortController();
        this.wakeDrain = () => wake.abort();
        const finished = await Promise.race([allDone.then(() => true), sleep(budgetMs, wake.signal).then(() => false)]);
        wake.abort();
        if (!finished) this.releaseAll(`${o.reason}: drain budget of ${budgetMs / 1000} s spent`);
      }
      await allDone;
      await this.d.instance()?.set(InstanceStatus.DRAINING, [], o.reason);
      log.info('drained', { reason: o.reason, released: Boolean(this.releasing), release_failures: this.releaseFailures });
    })();
    return this.drainDone;
  }

  /** Why running tasks are being released, once they are. */
  get releasing(): string | undefined {
    return drainOf(this.d.state.current)?.releasing;
  }

  /** Release every running task now, and any task claimed from now on (draining only). */
  private releaseAll(reason: string): void {
    const s = this.d.state.current;
    if (s.kind !== 'draining' || s.releasing) return;
    this.d.state.to({ ...s, releasing: reason });
    this.d.log.info('releasing running tasks', { reason, running: [...this.d.runs.keys()] });
    for (const run of this.d.runs.values()) run.release(reason);
    this.wakeDrain?.();
  }

  /** From the IMDS watcher (lifecycle.ts `InterruptionWatcher`). */
  onInterruption(i: Interruption): void {
    const { state } = this.d;
    state.interruption ??= i;
    this.d.interrupted(i);
    if (i.kind === 'spot') {
      this.d.log.warn('spot interruption notice: releasing running tasks now', { action: i.action, time: i.time, running: [...this.d.runs.keys()] });
      void this.drain({ abort: true, reason: `spot interruption notice (${i.action} at ${i.time})` });
      return;
    }
    state.interruption = i;
    this.onTerminating();
  }

  /**
   * The group is terminating this instance and its termination hook waits for us: drain within
   * the budget while sending RecordLifecycleActionHeartbeat (at once, then every
   * lifecycleHeartbeatSeconds, 60 s, no jitter), release what is left, then
   * CompleteLifecycleAction (CONTINUE; ABANDON when a task could not be released, which keeps
   * the instance for inspection where the group retains abandoned instances). Then stop.
   */
  private onTerminating(): void {
    if (this.hookDone) return;
    const { config, log } = this.d;
    const target: HookTarget | undefined = config.asgName
      ? { autoscaling: this.d.autoscaling, asgName: config.asgName, hookName: config.lifecycleHookName, instanceId: this.d.instanceId(), log }
      : undefined;
    log.warn('termination lifecycle hook: draining', { hook: config.lifecycleHookName, budget_s: config.drainBudgetSeconds, running: [...this.d.runs.keys()] });
    this.hookDone = (async () => {
      const beats = new AbortController();
      const heartbeats = target ? heartbeatLifecycleHook(target, config.lifecycleHeartbeatSeconds * 1000, beats.signal) : Promise.resolve(0);
      try {
        await this.drain({ reason: 'termination lifecycle hook: the group is terminating this instance' });
      } finally {
        beats.abort();
        await heartbeats;
      }
      if (target) await completeLifecycleHook(target, this.releaseFailures ? 'ABANDON' : 'CONTINUE');
      else log.warn('no asgName in the config: the lifecycle action cannot be completed; the hook times out on its own');
    })();
    void this.hookDone.then(() => this.d.stop());
  }

  /**
   * Idle self-termination. Ticks every min(5 s, idle period / 4), no jitter (cheap: in-memory
   * fields); acts once no task ran for idleBeforeTerminateSeconds plus a per-process 0–10 %
   * jitter, so instances that went idle together do not read the group's size at the same
   * moment. At MinSize (or on AWS's refusal) the instance stays and checks again after another
   * idle period. Resolves when receiving has ended.
   */
  async idleLoop(): Promise<void> {
    const { config, state, runs, activity } = this.d;
    const idleMs = config.timings.idleBeforeTerminateSeconds * 1000 * (1 + Math.random() * 0.1);
    if (!config.asgName) {
      this.idleState = 'no asgName in the config: idle self-termination is off';
      return;
    }
    const tick = Math.min(5000, idleMs / 4);
    while (isReceiving(state.current)) {
      await sleep(tick, state.receiveEnded);
      if (state.current.kind !== 'serving') continue;
      if (runs.size || activity.handling || Date.now() - activity.lastBusyAt < idleMs) continue;
      await this.idleCheck(config.asgName);
    }
  }

  /** Pause receiving, make sure nothing was received meanwhile, then ask to be terminated. */
  private async idleCheck(asgName: string): Promise<void> {
    const { config, state, runs, activity, log } = this.d;
    const receivedBefore = activity.received;
    state.to({ kind: 'paused', reason: 'idle-check' });
    this.idleState = 'checking: receiving paused';
    let selfTerminated = false;
    try {
      // The long polls in flight return within longPollSeconds; a message they bring is handled.
      const deadline = Date.now() + (config.timings.longPollSeconds + 15) * 1000;
      while (isReceiving(state.current) && (activity.inFlight || activity.handling) && Date.now() < deadline) await sleep(100);
      if (!isReceiving(state.current)) return;
      if (activity.inFlight || activity.handling || runs.size || activity.received !== receivedBefore) {
        this.idleState = 'work arrived during the idle check';
        log.info('idle check: work arrived meanwhile; staying');
        this.d.idleChecked({ terminated: false, reason: 'work arrived meanwhile' });
        return;
      }
      const outcome = await terminateIfAboveMin(this.d.autoscaling, asgName, this.d.instanceId());
      this.d.idleChecked(outcome);
      if (!outcome.terminated) {
        this.idleState = `staying: ${outcome.reason}`;
        log.info('idle: staying and polling again', { reason: outcome.reason, idle_s: config.timings.idleBeforeTerminateSeconds });
        return;
      }
      selfTerminated = true;
      this.idleState = 'self-terminating: waiting for the termination lifecycle hook or shutdown';
      log.info('idle: asked Auto Scaling to terminate this instance (desired capacity decremented)', { activity: outcome.activity });
      void this.drain({ reason: 'idle self-termination' });
    } finally {
      if (!selfTerminated) activity.markBusy();
      if (state.current.kind === 'paused') state.to({ kind: 'serving' });
    }
  }
}
