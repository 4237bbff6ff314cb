/**
 * fleetd: the instance daemon, composed of one module per concern (README.md "Where things
 * are"; docs/lifecycle.md):
 * - fleetd-state.ts: the daemon's state (booting / serving / paused / draining / stopped), its
 *   allowed transitions, and why it is not claiming;
 * - preflight.ts: the boot checks; recovery.ts: re-adopting or removing containers found at
 *   boot, the sweep after an engine outage, the removal after a failed boot (all through
 *   containers.ts);
 * - receiver.ts: one receive loop per slot, claim, dispatch; receive-gates.ts: disk and engine;
 * - instance-lifecycle.ts: drain, spot notice, termination hook, idle self-termination;
 * - readiness.ts + prepull.ts: the launch (readiness) hook, the warm pool, the prepull images;
 * - control.ts (+ contract/control.ts): `fleetd status` and `fleetd cancel`.
 * This class owns what they share (the runs, the state) and exposes start, stop({ abort }),
 * events and a typed status.
 */
import { EventEmitter } from 'node:events';
import type Docker from 'dockerode';
import { abcaMirrorFor, type AbcaHeartbeatMirror } from './abca-mirror';
import type { AwsClients } from './aws';
import type { FleetdConfig } from './config';
import { InstanceStatus, type CancelResponse, type ControlError, type FleetdStatus, type TaskRecord } from './contract';
import { drainOf, FleetdStateHolder, isReceiving, leavingReason, notClaimingReason, type FleetdState } from './fleetd-state';
import type { ImdsClient, InstanceIdentity } from './imds';
import { InstanceState, readInstanceBuild } from './instance';
import { BUILD_COMMIT, PACKAGE_VERSION } from './version';
import { InstanceLifecycle } from './instance-lifecycle';
import { TaskStore, type Lease } from './store';
import { LeaseFiles } from './lease-guard';
import { InterruptionWatcher, type Interruption, type SelfTermination } from './lifecycle';
import type { Logger } from './log';
import { preflight, type Booted } from './preflight';
import { Prepuller } from './prepull';
import { Readiness, targetPhase } from './readiness';
import { Pruner } from './prune';
import { ReceiveGateChecks } from './receive-gates';
import { ReceiveActivity, Receiver } from './receiver';
import { adoptOrRemoveContainers, removeAfterFailedBoot, repoOf, sweepUnsupervised } from './recovery';
import { RETRY_POLICIES, retry, type RetryAttemptInfo } from './retry';
import { SpecSealer } from './seal';
import { ContainerRunner } from './runner';
import { RolloutWatch } from './rollout-watch';
import { TaskRun, type TaskRunResult } from './task-run';
import type { ClaimTiming } from './dispatch-timing';

export interface FleetdDeps {
  readonly config: FleetdConfig;
  readonly clients: AwsClients;
  readonly docker: Docker;
  readonly imds: ImdsClient;
  readonly log: Logger;
}

export class BootError extends Error {
  override readonly name = 'BootError';
}

export interface FleetdEvents {
  ready: [identity: InstanceIdentity];
  /** Prepared in the warm pool (target lifecycle state `Warmed:*`); claims nothing until InService. */
  warm: [targetState: string];
  'task-started': [taskId: string, attempt: number];
  'task-ended': [result: TaskRunResult];
  'message-rejected': [reason: string];
  interrupted: [interruption: Interruption];
  'idle-check': [outcome: SelfTermination | { terminated: false; reason: string }];
  /** Nothing left to do: drained, the lifecycle action completed, servers closed. */
  stopped: [];
}

export interface StopOptions {
  /** Release running tasks at once instead of giving them the drain budget (spot notice). */
  readonly abort?: boolean;
  readonly reason?: string;
  /** @default config.drainBudgetSeconds */
  readonly budgetSeconds?: number;
}

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
  /** Leaving the warm pool (readiness again, then serving), while under way. */
  private leavingPool?: Promise<void>;
  private abcaMirror?: AbcaHeartbeatMirror;
  private rollout?: RolloutWatch;
  private readonly state = new FleetdStateHolder();
  private sealer?: SpecSealer;
  private readonly runs = new Map<string, TaskRun>();
  /** Supervisions of containers re-adopted after a restart (not inside a slot loop). */
  private readonly adopted: Promise<unknown>[] = [];
  private slotLoops: Promise<void>[] = [];
  private idleLoopDone?: Promise<void>;
  private heartbeatTimer?: NodeJS.Timeout;
  private finalizing?: Promise<void>;
  private readonly activity = new ReceiveActivity();
  private readonly gates: ReceiveGateChecks;
  private readonly lifecycle: InstanceLifecycle;
  private readonly leaseFiles: LeaseFiles;
  private readonly log: Logger;

  constructor(private readonly deps: FleetdDeps) {
    super();
    this.log = deps.log;
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
      loops: () => [...this.slotLoops, ...this.adopted],
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
    // IMDS can be slow to answer on a busy host (seen with several daemons booting at once):
    // RETRY_POLICIES.imds (5 tries, 0.5–4 s) before the boot counts as failed. Any IMDS error
    // is worth another try here: without an identity there is nothing else to do.
    try {
      this.identity = await retry('IMDS identity', () => imds.identity(), { policy: RETRY_POLICIES.imds, retryable: () => true });
    } catch (err) {
      throw new BootError(`preflight: IMDS did not answer after ${RETRY_POLICIES.imds.maxAttempts} tries (${(err as Error).message})`, { cause: err });
    }
    const id = this.identity;
    this.log.info('fleetd booting', { instance_id: id.instanceId, region: id.region, az: id.availabilityZone, slots: config.slots, config: config.source, version: PACKAGE_VERSION, commit: BUILD_COMMIT });
    this.instance = new InstanceState({
      ec2: clients.ec2,
      ddb: clients.ddb,
      instancesTable: config.instancesTable,
      instanceId: id.instanceId,
      tagPrefix: config.tagPrefix,
      slots: config.slots,
      asgName: config.asgName,
      availabilityZone: id.availabilityZone,
      build: await readInstanceBuild({ imds, ec2: clients.ec2, instanceId: id.instanceId, log: this.log }),
      log: this.log,
    });
    const control = { cancel: (t: string) => this.cancelLocal(t), status: () => ({ ok: true as const, ...this.status() }) };
    const problem = await preflight({ config, clients, docker, instanceId: id.instanceId, log: this.log, control, retry: this.bootRetry }, this.booted);
    this.gates.diskPaths = this.booted.diskPaths;
    if (problem) {
      // A launch hook waiting on us: ABANDON at once (the preflight already retried what a retry can fix).
      const target = await imds.targetLifecycleState().catch(() => undefined);
      await new Readiness({ config, autoscaling: clients.autoscaling, instanceId: id.instanceId, prepull: new Prepuller({ runner: { ensureImage: () => Promise.resolve('present') }, images: [], refreshSeconds: 0, log: this.log }), log: this.log }).complete(target, 'ABANDON', problem);
      await this.instance.reportUnhealthy(clients.autoscaling, problem);
      await removeAfterFailedBoot({ docker, instanceId: id.instanceId, log: this.log }, problem);
      await this.closeServers();
      if (this.state.current.kind === 'booting') this.state.to({ kind: 'stopped' });
      throw new BootError(`preflight: ${problem}`);
    }
    this.store = new TaskStore({ ddb: clients.ddb, tasksTable: config.tasksTable, eventsTable: config.eventsTable, timings: config.timings, redact: (v) => this.log.secrets.redactValue(v) });
    this.runner = new ContainerRunner({ docker, workDir: config.workDir, instanceId: id.instanceId, allowedRegistries: config.allowedRegistries, ecr: clients.ecr, log: this.log });
    // The lease guard (`fleetd guard`, its own systemd timer) acts on this instance's containers only.
    this.leaseFiles.writeInstanceId(id.instanceId);
    this.abcaMirror = abcaMirrorFor(config, clients.ddb, this.log);
    this.sealer = config.sealKeyId ? new SpecSealer(clients.kms, config.sealKeyId) : undefined;
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
    // A termination or spot notice already pending (fleetd restarted mid-drain): never idle.
    this.watcher = new InterruptionWatcher(imds, (i) => this.lifecycle.onInterruption(i), this.log);
    this.watcher.onTargetState = (t) => this.onTargetState(t);
    await this.watcher.start();
    if (this.state.current.kind !== 'booting') return;
    // Readiness (readiness.ts): the prepull images, then the launch hook. A failure fails the
    // boot like the preflight (ABANDON, reported unhealthy), unless containers were re-adopted:
    // they need no prepull, and the refresh timer tries again.
    const notReady = await this.readiness!.prepare(this.state.receiveEnded);
    if (notReady && this.runs.size === 0 && this.state.current.kind === 'booting') {
      await this.readiness!.complete(this.watcher.targetState, 'ABANDON', notReady);
      await this.instance.reportUnhealthy(clients.autoscaling, `readiness: ${notReady}`);
      await this.watcher.stop();
      await this.closeServers();
      this.state.to({ kind: 'stopped' });
      throw new BootError(`readiness: ${notReady}`);
    }
    if (notReady) this.log.warn('prepull failed; serving the re-adopted tasks anyway', { problem: notReady });
    if (this.state.current.kind !== 'booting') return;
    const target = this.watcher.targetState;
    await this.readiness!.complete(target, 'CONTINUE');
    // Instance heartbeat: every heartbeatSeconds, no jitter, the instance row (fleet instances, reconciler).
    this.heartbeatTimer = setInterval(() => {
      void this.instance?.heartbeat().catch((err) => this.log.warn('instance heartbeat failed', { error: err }));
    }, config.timings.heartbeatSeconds * 1000);
    this.heartbeatTimer.unref();
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

  /** The slots start polling: from booting, or when the instance leaves the warm pool. */
  private async enterService(): Promise<void> {
    const { config, clients } = this.deps;
    const id = this.identity!;
    await this.instance!.set(this.runs.size ? InstanceStatus.BUSY : InstanceStatus.IDLE, [...this.runs.keys()]);
    const s = this.state.current.kind;
    if (s !== 'booting' && s !== 'warm') return;
    this.state.to({ kind: 'serving' });
    this.activity.markBusy();
    // The rollout marker is read before the slots start: an old instance never claims (rollout-watch.ts).
    if (config.asgName) {
      const retired = (reason: string) => void this.lifecycle.drain({ reason });
      this.rollout = new RolloutWatch({ autoscaling: clients.autoscaling, asgName: config.asgName, instanceId: id.instanceId, build: this.instance!.build, heartbeatSeconds: config.timings.heartbeatSeconds, state: this.state, running: () => this.runs.size, activity: this.activity, log: this.log, changed: () => this.advertise(), retired });
      await this.rollout.start();
    }
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
      taskEnded: (r) => this.emit('task-ended', r),
      messageRejected: (reason) => this.emit('message-rejected', reason),
      taskError: (msg, extra) => this.taskError(msg, extra),
      abcaMirror: this.abcaMirror,
    });
    this.slotLoops = receiver.start(config.slots);
    this.idleLoopDone = this.lifecycle.idleLoop();
    this.pruner!.start(config.prune.intervalSeconds);
    this.log.info('fleetd ready: polling for tasks', { instance_id: id.instanceId, queue: config.queueUrl, credentials_endpoint: this.booted.credentials?.endpoint });
    this.emit('ready', id);
  }

  /**
   * Every answered IMDS check (lifecycle.ts). Warm and the target is service: readiness again
   * (the prepull refreshed, the hook completed), then serving. Serving and the target is
   * `Warmed:*`: the group returns the instance to the pool on scale-in (reuseOnScaleIn) through
   * the termination hook: the termination path. Warm and `Warmed:Terminated`: the same.
   */
  private onTargetState(target: string | undefined): void {
    const s = this.state.current;
    const phase = targetPhase(target);
    if (s.kind === 'warm' && phase === 'service' && !this.leavingPool) {
      this.log.info('leaving the warm pool: readiness, then claiming', { target_lifecycle_state: target });
      this.leavingPool = (async () => {
        const notReady = await this.readiness!.prepare(this.state.receiveEnded);
        if (notReady) {
          await this.readiness!.complete(target, 'ABANDON', notReady);
          await this.instance!.reportUnhealthy(this.deps.clients.autoscaling, `readiness: ${notReady}`);
          if (this.state.current.kind === 'warm') void this.stop({ reason: `readiness failed leaving the warm pool: ${notReady}` });
          return;
        }
        await this.readiness!.complete(target, 'CONTINUE');
        if (this.state.current.kind === 'warm') await this.enterService();
      })()
        .catch((err) => this.log.error('leaving the warm pool failed', { error: err }))
        .finally(() => (this.leavingPool = undefined));
      return;
    }
    const returnedToPool = isReceiving(s) && phase === 'warmed';
    const terminatedFromPool = s.kind === 'warm' && target === 'Warmed:Terminated';
    if (returnedToPool || terminatedFromPool) this.lifecycle.onInterruption({ kind: 'terminating', state: target! });
  }

  private newRun(lease: Lease, record: TaskRecord, receiptHandle: string | undefined, claim?: ClaimTiming): TaskRun {
    const { clients, config } = this.deps;
    const credentials = this.booted.credentials;
    const drainReason = () => leavingReason(this.state.current);
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
        onTaskEnd: (l) => {
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
    void this.instance?.set(this.state.current.kind === 'retiring' ? InstanceStatus.RETIRING : drainReason() !== undefined ? InstanceStatus.DRAINING : InstanceStatus.BUSY, [...this.runs.keys()], drainReason());
    this.emit('task-started', lease.taskId, lease.attempt);
    // Claimed while the drain was already releasing: hand it back as soon as it can be.
    const releasing = this.lifecycle.releasing;
    if (releasing) run.release(releasing);
    return run;
  }

  /** The instance row and tags after a task ended or the state changed (retiring ⇄ serving). */
  private advertise(): void {
    const s = this.state.current;
    const status = s.kind === 'retiring' ? InstanceStatus.RETIRING : this.runs.size ? InstanceStatus.BUSY : drainOf(s) ? InstanceStatus.DRAINING : InstanceStatus.IDLE;
    void this.instance?.set(status, [...this.runs.keys()], leavingReason(s));
  }

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

  /** What `fleetd status` shows (contract/control.ts `StatusResponseSchema`). */
  status(): FleetdStatus {
    const { config } = this.deps;
    const s = this.state.current;
    const drain = drainOf(s);
    const idleFor = this.runs.size || this.activity.handling ? 0 : Math.round((Date.now() - this.activity.lastBusyAt) / 1000);
    const credentials = this.booted.credentials;
    const lastPrune = this.pruner?.last;
    return {
      instance_id: this.identity?.instanceId ?? null,
      state: this.instance?.status ?? InstanceStatus.BOOTING,
      fleetd_state: s.kind,
      receiving: isReceiving(s),
      not_claiming: notClaimingReason(s, this.gates, { running: this.runs.size, total: config.slots }),
      draining: Boolean(drain),
      drain: drain ? { reason: drain.reason, since: new Date(drain.since).toISOString(), releasing: drain.releasing ?? null } : null,
      interruption: this.state.interruption ?? null,
      slots: config.slots,
      free_slots: Math.max(0, config.slots - this.runs.size),
      idle: { idle_for_s: idleFor, terminate_after_s: config.asgName ? config.timings.idleBeforeTerminateSeconds : null, state: this.lifecycle.idleState },
      disk_problem: this.gates.disk ?? null,
      engine_problem: this.gates.engine ?? null,
      credentials: credentials ? { endpoint: credentials.endpoint, active_tasks: credentials.activeTasks } : null,
      last_prune: lastPrune ? { ...lastPrune, at: new Date(lastPrune.at).toISOString() } : null,
      imds_watch: this.watcher?.status ?? null,
      tasks: [...this.runs.values()].map((r) => ({ task_id: r.taskId, attempt: r.lease.attempt, phase: r.phase, stopping: r.stopping ?? null, heartbeat_age_s: Math.round(r.heartbeatAgeMs / 1000) })),
    };
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
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      await Promise.all([this.watcher?.stop(), this.rollout?.stop(), this.pruner?.stop(), this.prepull?.stop(), this.idleLoopDone, this.leavingPool]);
      await this.closeServers();
      await this.instance?.flush();
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
