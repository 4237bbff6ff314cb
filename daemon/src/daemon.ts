/**
 * fleetd: the instance daemon, composed of one module per concern (README.md "Where things
 * are"; docs/lifecycle.md):
 * - fleetd-state.ts: the daemon's state (booting / serving / paused / draining / stopped), its
 *   allowed transitions, and why it is not claiming;
 * - preflight.ts: the boot checks; recovery.ts: re-adopting or removing containers found at
 *   boot, the sweep after an engine outage, the removal after a failed boot (all through
 *   containers.ts);
 * - receiver.ts: one receive loop for all slots, claim, dispatch; receive-gates.ts: disk and engine;
 * - instance-lifecycle.ts: drain, spot notice, termination hook, idle self-termination;
 * - readiness.ts + warm-pool.ts + prepull.ts: the launch (readiness) hook, the warm pool, the prepull images;
 * - fleetd-types.ts (deps, events, stop options), fleetd-status.ts (`fleetd status`);
 * - control.ts (+ contract/control.ts): `fleetd status` and `fleetd cancel`.
 * This class owns what they share (the runs, the state) and exposes start, stop({ abort }),
 * events and a typed status.
 */
import { EventEmitter } from 'node:events';
import { abcaMirrorFor, type AbcaHeartbeatMirror } from './abca-mirror';
import { InstanceStatus, type CancelResponse, type ControlError, type FleetdStatus, type TaskRecord } from './contract';
import { advertisedStatus, drainOf, FleetdStateHolder, leavingReason, type FleetdState } from './fleetd-state';
import type { InstanceIdentity } from './imds';
import { InstanceState, readInstanceBuild } from './instance';
import { sdkInstanceTags, type InstanceTags } from './instance-tags';
import { StartupTimer } from './startup-timing';
import { BUILD_COMMIT, PACKAGE_VERSION } from './version';
import { InstanceLifecycle } from './instance-lifecycle';
import { TaskStore, type Lease } from './store';
import { LeaseFiles } from './lease-guard';
import { InterruptionWatcher } from './lifecycle';
import type { Logger } from './log';
import { bootIdentity, preflight, type Booted } from './preflight';
import { Prepuller } from './prepull';
import { Readiness, targetPhase } from './readiness';
import { Pruner } from './prune';
import { ReceiveGateChecks } from './receive-gates';
import { ReceiveActivity, Receiver } from './receiver';
import { adoptOrRemoveContainers, removeAfterFailedBoot, repoOf, sweepUnsupervised } from './recovery';
import { RETRY_POLICIES, retry, type RetryAttemptInfo } from './retry';
import { SpecSealer } from './seal';
import { ContainerRunner } from './runner';
import { startRolloutWatch, type RolloutWatch } from './rollout-watch';
import { TaskRun } from './task-run';
import { fleetdStatus } from './fleetd-status';
import { WarmPool } from './warm-pool';
import type { ClaimTiming } from './dispatch-timing';

import { BootError, type FleetdDeps, type FleetdEvents, type StopOptions } from './fleetd-types';

/** How long a claimed task's busy advert waits for its container to start (newRun), ms. */
export const CLAIM_ADVERT_DELAY_MS = 1000;

export { BootError, type FleetdDeps, type FleetdEvents, type StopOptions };

export class Fleetd extends EventEmitter<FleetdEvents> {
  private identity?: InstanceIdentity;
  private store?: TaskStore;
  private runner?: ContainerRunner;
  private instance?: InstanceState;
  private readonly booted: Booted = { diskPaths: [] };
  private pruner?: Pruner;
  private watcher?: InterruptionWatcher;
  private prepull?: Prepuller;
  private readiness?: Readiness;
  private warmPool?: WarmPool;
  private abcaMirror?: AbcaHeartbeatMirror;
  private rollout?: RolloutWatch;
  private readonly state = new FleetdStateHolder();
  private sealer?: SpecSealer;
  private readonly runs = new Map<string, TaskRun>();
  /** Supervisions of containers re-adopted after a restart (not in a receiver's slot). */
  private readonly adopted: Promise<unknown>[] = [];
  /** The receive loop, its messages' tasks and their background tails (Receiver.start). */
  private receiving?: Promise<void>;
  private idleLoopDone?: Promise<void>;
  private finalizing?: Promise<void>;
  private readonly activity = new ReceiveActivity();
  private readonly gates: ReceiveGateChecks;
  private readonly lifecycle: InstanceLifecycle;
  private readonly leaseFiles: LeaseFiles;
  private readonly log: Logger;
  private readonly tags: InstanceTags;
  private readonly startup: StartupTimer;

  constructor(private readonly deps: FleetdDeps) {
    super();
    this.log = deps.log;
    this.tags = deps.tags ?? sdkInstanceTags(deps.clients.ec2);
    this.startup = deps.startup ?? new StartupTimer();
    this.leaseFiles = new LeaseFiles(deps.config.workDir);
    this.gates = new ReceiveGateChecks({
      docker: deps.docker,
      minFreeDiskBytes: deps.config.minFreeDiskBytes,
      minFreeInodes: deps.config.minFreeInodes,
      log: this.log,
      prune: () => this.pruner?.pruneOnce() ?? Promise.resolve(),
      onEngineBack: () => sweepUnsupervised({ docker: deps.docker, instanceId: this.identity!.instanceId, log: this.log }, this.runs),
    });
    this.lifecycle = new InstanceLifecycle({
      config: deps.config,
      autoscaling: deps.clients.autoscaling,
      instanceId: () => this.identity!.instanceId,
      instance: () => this.instance,
      state: this.state,
      runs: this.runs,
      activity: this.activity,
      loops: () => [...(this.receiving ? [this.receiving] : []), ...this.adopted],
      log: this.log,
      interrupted: (i) => this.emit('interrupted', i),
      idleChecked: (outcome) => this.emit('idle-check', outcome),
      stop: () => this.stop(),
    });
  }

  /** Boot steps retry transient AWS errors (RETRY_POLICIES.boot), each retry logged. */
  private get bootRetry() {
    return {
      policy: RETRY_POLICIES.boot,
      onRetry: (r: RetryAttemptInfo) => this.log.warn(`${r.what} did not answer; retrying`, { error: r.error, attempt: r.attempt, retry_in_ms: r.retryInMs }),
    };
  }

  get instanceId(): string | undefined {
    return this.identity?.instanceId;
  }

  /** fleetd's own state (fleetd-state.ts). */
  get fleetdState(): FleetdState {
    return this.state.current;
  }

  /**
   * Preflight, recovery, then the receive loops (docs/lifecycle.md "Boot"). Throws BootError
   * after reporting it (tag unhealthy, instance row with the reason, SetInstanceHealth
   * Unhealthy). The instance is tagged idle only after everything a task needs answered.
   */
  async start(): Promise<void> {
    const { config, clients, docker, imds } = this.deps;
    const id = (this.identity = await bootIdentity(imds));
    this.startup.mark('imds.identity');
    this.log.info('fleetd booting', { instance_id: id.instanceId, region: id.region, az: id.availabilityZone, slots: config.slots, config: config.source, version: PACKAGE_VERSION, commit: BUILD_COMMIT });
    this.instance = new InstanceState({
      tags: this.tags,
      ddb: clients.ddb,
      instancesTable: config.instancesTable,
      instanceId: id.instanceId,
      tagPrefix: config.tagPrefix,
      slots: config.slots,
      asgName: config.asgName,
      availabilityZone: id.availabilityZone,
      build: await readInstanceBuild({ imds, tags: this.tags, instanceId: id.instanceId, log: this.log }),
      log: this.log,
    });
    this.startup.mark('instance build (imds ami-id, launch template tags)');
    const control = { cancel: (t: string) => this.cancelLocal(t), status: () => ({ ok: true as const, ...this.status() }) };
    const problem = await preflight({ config, clients, docker, instanceId: id.instanceId, log: this.log, control, retry: this.bootRetry, startup: this.startup }, this.booted);
    this.gates.diskPaths = this.booted.diskPaths;
    if (problem) {
      // A launch hook waiting on us: ABANDON at once (the preflight already retried what a retry can fix).
      const target = await imds.targetLifecycleState().catch(() => undefined);
      const readiness = new Readiness({ config, autoscaling: clients.autoscaling, instanceId: id.instanceId, prepull: new Prepuller({ runner: { ensureImage: () => Promise.resolve('present') }, images: [], refreshSeconds: 0, log: this.log }), log: this.log });
      await this.failBoot('preflight', problem, () => readiness.complete(target, 'ABANDON', problem), () => removeAfterFailedBoot({ docker, instanceId: id.instanceId, log: this.log }, problem));
    }
    this.store = new TaskStore({ ddb: clients.ddb, tasksTable: config.tasksTable, eventsTable: config.eventsTable, timings: config.timings, redact: (v) => this.log.secrets.redactValue(v) });
    this.runner = new ContainerRunner({ docker, workDir: config.workDir, instanceId: id.instanceId, allowedRegistries: config.allowedRegistries, outputDisks: config.outputDisks, ecr: () => clients.ecr, log: this.log });
    // The lease guard (`fleetd guard`, its own systemd timer) acts on this instance's containers only.
    this.leaseFiles.writeInstanceId(id.instanceId);
    this.abcaMirror = abcaMirrorFor(config, clients.ddb, this.log);
    // Getters, not clients: each SDK package loads with the first task that needs it, not at boot.
    this.sealer = config.sealKeyId ? new SpecSealer(() => clients.kms, config.sealKeyId) : undefined;
    if (!this.sealer) this.log.warn('no sealKeyId in the config: task seals are not verified; anyone who may update a task record decides what runs (docs/security.md)');
    this.prepull = new Prepuller({ runner: this.runner, images: config.prepullImages, refreshSeconds: config.prepullRefreshSeconds, log: this.log });
    this.readiness = new Readiness({ config, autoscaling: clients.autoscaling, instanceId: id.instanceId, prepull: this.prepull, log: this.log });
    this.pruner = new Pruner({ docker, instanceId: id.instanceId, workDir: config.workDir, afterHours: config.prune.afterHours, liveTaskIds: () => new Set(this.runs.keys()), log: this.log });
    await adoptOrRemoveContainers({
      docker,
      instanceId: id.instanceId,
      log: this.log,
      store: this.store,
      runner: this.runner,
      credentials: this.booted.credentials,
      retry: this.bootRetry,
      newRun: (lease, record, receipt) => this.newRun(lease, record, receipt),
      taskEnded: (r) => this.emit('task-ended', r),
      taskError: (msg, extra) => this.taskError(msg, extra),
    }, this.adopted);
    this.startup.mark('recovery (engine.listContainers)');
    // A termination or spot notice already pending (fleetd restarted mid-drain): never idle.
    this.watcher = new InterruptionWatcher(imds, (i) => this.lifecycle.onInterruption(i), this.log);
    this.warmPool = new WarmPool({
      state: this.state,
      readiness: this.readiness,
      instance: this.instance,
      autoscaling: clients.autoscaling,
      log: this.log,
      enterService: () => this.enterService(),
      stop: (reason) => this.stop({ reason }),
      terminating: (i) => this.lifecycle.onInterruption(i),
    });
    this.watcher.onTargetState = (t) => this.warmPool!.onTargetState(t);
    await this.watcher.start();
    this.startup.mark('imds.interruption notices');
    if (this.state.current.kind !== 'booting') return;
    // Readiness (readiness.ts): the prepull images, then the launch hook. A failure fails the
    // boot like the preflight (ABANDON, reported unhealthy), unless containers were re-adopted:
    // they need no prepull, and the refresh timer tries again.
    const notReady = await this.readiness!.prepare(this.state.receiveEnded);
    if (notReady && this.runs.size === 0 && this.state.current.kind === 'booting') {
      await this.failBoot('readiness', notReady, () => this.readiness!.complete(this.watcher!.targetState, 'ABANDON', notReady), () => this.watcher!.stop());
    }
    if (notReady) this.log.warn('prepull failed; serving the re-adopted tasks anyway', { problem: notReady });
    if (this.state.current.kind !== 'booting') return;
    const target = this.watcher.targetState;
    await this.readiness!.complete(target, 'CONTINUE');
    this.startup.mark('readiness (prepull, launch hook)');
    this.instance.startHeartbeat(config.timings);
    this.prepull.start();
    if (targetPhase(target) === 'warmed' && this.runs.size === 0) {
      this.state.to({ kind: 'warm', target: target! });
      await this.instance.set(InstanceStatus.WARM, [], `warm pool (${target}): prepared, not claiming until InService`);
      this.log.info('fleetd warm: prepared in the warm pool; not claiming until the instance is put in service', { instance_id: id.instanceId, target_lifecycle_state: target });
      this.emit('warm', target!);
      return;
    }
    await this.enterService();
  }

  /** A failed boot: the launch hook ABANDONed, the instance reported unhealthy, then BootError. */
  private async failBoot(phase: 'preflight' | 'readiness', problem: string, abandonHook: () => Promise<void>, cleanUp: () => Promise<void>): Promise<never> {
    await abandonHook();
    await this.instance!.reportUnhealthy(this.deps.clients.autoscaling, phase === 'preflight' ? problem : `${phase}: ${problem}`);
    await cleanUp();
    await this.closeServers();
    if (this.state.current.kind === 'booting') this.state.to({ kind: 'stopped' });
    throw new BootError(`${phase}: ${problem}`);
  }

  /** The slots start polling: from booting, or when the instance leaves the warm pool. */
  private async enterService(): Promise<void> {
    const { config, clients } = this.deps;
    const id = this.identity!;
    await this.instance!.set(this.runs.size ? InstanceStatus.BUSY : InstanceStatus.IDLE, [...this.runs.keys()]);
    this.startup.mark('tags idle (ec2 helper) + instance row');
    const s = this.state.current.kind;
    if (s !== 'booting' && s !== 'warm') return;
    this.state.to({ kind: 'serving' });
    this.activity.markBusy();
    this.rollout = await startRolloutWatch(config, clients.autoscaling, { instanceId: id.instanceId, build: this.instance!.build, state: this.state, running: () => this.runs.size, activity: this.activity, log: this.log, changed: () => this.advertise(), retired: (reason) => void this.lifecycle.drain({ reason }) });
    this.startup.mark('autoscaling.DescribeAutoScalingGroups (rollout marker)');
    const receiver = new Receiver({
      sqs: clients.sqs,
      config,
      store: this.store!,
      instanceId: id.instanceId,
      state: this.state,
      gates: this.gates,
      activity: this.activity,
      log: this.log,
      newRun: (lease, record, receipt, claim) => this.newRun(lease, record, receipt, claim),
      runEnded: (taskId) => this.runs.get(taskId)?.ended,
      verifySealEarly: this.sealer ? (record) => this.sealer!.verifyEarly(record) : undefined,
      taskEnded: (r) => this.emit('task-ended', r),
      messageRejected: (reason) => this.emit('message-rejected', reason),
      taskError: (msg, extra) => this.taskError(msg, extra),
      abcaMirror: this.abcaMirror,
    });
    this.receiving = receiver.start();
    this.idleLoopDone = this.lifecycle.idleLoop();
    this.pruner!.start(config.prune.intervalSeconds);
    this.startup.mark('receive loops');
    const startup = this.startup.summary();
    this.log.info('fleetd ready: polling for tasks', { instance_id: id.instanceId, queue: config.queueUrl, credentials_endpoint: this.booted.credentials?.endpoint, startup_ms: startup.total_ms, startup_steps_ms: startup.steps_ms });
    this.emit('ready', id);
  }

  private newRun(lease: Lease, record: TaskRecord, receiptHandle: string | undefined, claim?: ClaimTiming): TaskRun {
    const { clients, config } = this.deps;
    const credentials = this.booted.credentials;
    // Busy is advertised (tags, instance row) once the container runs, or CLAIM_ADVERT_DELAY_MS
    // after the claim if it does not run by then (a long pull), not at the claim itself: those
    // writes' own work then stays off the dispatch's critical path (docs/benchmarks.md).
    let advertised = false;
    const advertise = () => {
      clearTimeout(advertTimer);
      if (!advertised) this.advertiseClaimed();
      advertised = true;
    };
    const advertTimer = setTimeout(advertise, CLAIM_ADVERT_DELAY_MS);
    advertTimer.unref();
    const run = new TaskRun(
      {
        store: this.store!,
        runner: this.runner!,
        sqs: clients.sqs,
        s3: clients.s3,
        secrets: clients.secrets,
        config,
        log: this.log,
        abcaMirror: this.abcaMirror,
        extraEnv: credentials
          ? async (l) => [...(await retry('task credentials', () => credentials.issue(l.taskId, l.attempt, repoOf(record)), { policy: RETRY_POLICIES.taskStep })), `AWS_REGION=${clients.region}`, `AWS_DEFAULT_REGION=${clients.region}`]
          : undefined,
        leaseFiles: this.leaseFiles,
        sealer: this.sealer,
        onEngineTrouble: (problem) => this.gates.engineTrouble(problem),
        onContainerStarted: advertise,
        onTaskEnd: (l) => {
          clearTimeout(advertTimer);
          this.runs.delete(l.taskId);
          credentials?.revoke(l.taskId);
          this.activity.markBusy();
          this.advertise();
        },
      },
      lease,
      record,
      receiptHandle,
      claim,
    );
    this.runs.set(lease.taskId, run);
    if (typeof record.spec.image === 'string') {
      try {
        this.pruner?.imageUse.touch(record.spec.image);
      } catch (err) {
        this.log.warn('recording the image use failed', { error: err });
      }
    }
    this.emit('task-started', lease.taskId, lease.attempt);
    // Claimed while the drain was already releasing: hand it back as soon as it can be.
    const releasing = this.lifecycle.releasing;
    if (releasing) run.release(releasing);
    return run;
  }

  /** The instance row and tags once a claimed task's container runs. */
  private readonly advertiseClaimed = () => void this.instance?.set(advertisedStatus(this.state.current, this.runs.size, true), [...this.runs.keys()], leavingReason(this.state.current));

  /** The instance row and tags after a task ended or the state changed (retiring ⇄ serving). */
  private readonly advertise = () => void this.instance?.set(advertisedStatus(this.state.current, this.runs.size), [...this.runs.keys()], leavingReason(this.state.current));

  /** A task's supervision failed; while releasing, that is a release that did not happen. */
  private taskError(msg: string, extra: Record<string, unknown>): void {
    if (this.lifecycle.releasing) this.lifecycle.releaseFailures++;
    this.log.error(msg, extra);
  }

  private async cancelLocal(taskId: string): Promise<CancelResponse | ControlError> {
    const run = this.runs.get(taskId);
    if (!run) return { ok: true, found: false, message: `task ${taskId} is not running on this instance` };
    const recorded = await run.cancelFromSocket();
    return recorded
      ? { ok: true, found: true, message: `cancelling ${taskId}: SIGTERM, then SIGKILL after ${this.deps.config.timings.cancelGraceSeconds} s` }
      : { ok: false, error: `task ${taskId} could not be marked CANCEL_REQUESTED (it ended or moved)` };
  }

  /** What `fleetd status` shows (contract/control.ts `StatusResponseSchema`); built in fleetd-status.ts. */
  status(): FleetdStatus {
    return fleetdStatus({
      config: this.deps.config,
      state: this.state,
      identity: this.identity,
      instance: this.instance,
      runs: this.runs,
      activity: this.activity,
      gates: this.gates,
      credentials: this.booted.credentials,
      pruner: this.pruner,
      watcher: this.watcher,
      idleState: this.lifecycle.idleState,
    });
  }

  /**
   * Stop receiving at once; running tasks get the drain budget (`drainBudgetSeconds`) to
   * finish, then are released (INTERRUPTED, message visible again at once). `abort`: release
   * at once (spot notice, a second signal); it also escalates a drain already under way.
   * Resolves when everything is drained, a termination hook in progress is completed, and the
   * servers are closed; then `stopped` is emitted.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    const s = this.state.current;
    // Warm: nothing runs and nothing was claimed; the instance is being stopped in the pool (or
    // fleetd restarted). The row stays `warm`, so the next boot is no crash of this one.
    if (s.kind === 'warm') {
      this.state.to({ kind: 'stopped' });
      await this.instance?.set(InstanceStatus.WARM, [], `warm pool (${s.target}): fleetd stopped (${options.reason ?? 'stop'})`);
      await this.finalize();
      return;
    }
    // The boot failed (already reported): only close what is left.
    if (s.kind === 'stopped' && !drainOf(s)) return this.finalize();
    await this.lifecycle.drain({ ...options, reason: options.reason ?? (options.abort ? 'instance interrupted' : 'instance draining') });
    await this.lifecycle.hookDone;
    await this.finalize();
  }

  private finalize(): Promise<void> {
    this.finalizing ??= (async () => {
      const s = this.state.current;
      if (s.kind === 'draining') this.state.to({ kind: 'stopped', drain: { reason: s.reason, since: s.since, releasing: s.releasing } });
      this.instance?.stopHeartbeat();
      await Promise.all([this.watcher?.stop(), this.rollout?.stop(), this.pruner?.stop(), this.prepull?.stop(), this.idleLoopDone, this.warmPool?.leaving]);
      await this.closeServers();
      await this.instance?.flush();
      this.tags.close();
      this.log.info('fleetd stopped', { reason: drainOf(this.state.current)?.reason });
      this.emit('stopped');
    })();
    return this.finalizing;
  }

  private async closeServers(): Promise<void> {
    const control = this.booted.control;
    await new Promise<void>((resolve) => (control ? control.close(() => resolve()) : resolve()));
    await this.booted.credentials?.close();
  }
}
