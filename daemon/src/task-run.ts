/**
 * One claimed task, from claim to cleanup (docs/architecture.md, "Where each step lives"):
 *   prepare (spec, payload, secrets, image) → the container's create beside the first heartbeat
 *   (RUNNING) → start once both are done →
 *   heartbeat every `heartbeatSeconds` (lease + message visibility on the same tick) while
 *   waiting → the container exits (the slot frees there: `exited`) → one fenced terminal write;
 *   deleting the message and removing the container and files go on in the background (`tail`).
 * Stops come from three places and the first reason wins: a cancel (record or control
 * socket), the task timeout, or a release (drain / spot). A fenced-out heartbeat or a lease
 * that could not be renewed stops the container and writes nothing more.
 */
import type Docker from 'dockerode';
import { abcaAtMostOnce, abcaTaskIdOf } from './abca-mirror';
import { DispatchClock, type ClaimTiming } from './dispatch-timing';
import { RETRY_POLICIES, retry, sleep } from './retry';
import { heartbeatLoop } from './task-heartbeat';
import { TERMINAL_STATUSES, TaskStatus, type TaskRecord, type TaskSpec } from './contract';
import type { Lease, StartFacts } from './store';
import type { Logger } from './log';
import { isEngineServerError, isEngineUnreachable, isSignalExit } from './engine-errors';
import type { ExitFacts, TaskFiles } from './runner';
import { OomWatch } from './oom-watch';
import { PrepareError, SealUnverifiedError, TaskInputs } from './task-inputs';
import { TaskOutcome, type TaskRunResult } from './task-outcome';
import type { TaskOutput } from './task-output';
import { TaskOutputs } from './task-outputs';
import type { StopReason, TaskRunDeps } from './task-run-types';

export type { StopReason, TaskRunDeps } from './task-run-types';
export type { TaskRunResult } from './task-outcome';

export class TaskRun {
  readonly taskId: string;
  private stopReason?: StopReason;
  private container?: Docker.Container;
  private started = false;
  private leaseExpiresAt: number;
  private heartbeatAt = Date.now();
  private readonly heartbeatAbort = new AbortController();
  private readonly log: Logger;
  private readonly inputs: TaskInputs;
  private readonly outcome: TaskOutcome;
  /** The attempt's log stream and artifacts (task-outputs.ts). */
  private readonly outputs: TaskOutputs;
  private releaseReason = '';
  private fencedOut = false;
  /** The engine stopped answering at least once while the container ran (see waitThroughEngineRestarts). */
  private engineRestarted = false;
  phase: 'preparing' | 'running' | 'stopping' | 'finishing' = 'preparing';
  /** Per-phase dispatch timings (a claimed task; not an adopted one). */
  private readonly dispatch?: DispatchClock;
  /** Which start facts (StartFacts: the container id, the dispatch timings) a write has carried. */
  private readonly factsWritten = { container: false, dispatch: false };
  /** The task's output, once opened (closed at the cleanup). */
  private output?: TaskOutput;
  /**
   * What is left after a terminal write, run in the background once `execute` resolved: the
   * message's deletion (and ABCA's record), the container's removal and the task's files.
   * Resolved at once for any other end (a release, a fence, an error: the run cleans up before
   * it resolves). Never rejects. Crash-safe: a message not yet deleted comes back and its
   * claim finds the terminal record (then deletes it); a container not yet removed is removed
   * by the next boot's recovery (recovery.ts). The receiver waits for it before a drain ends.
   */
  tail: Promise<void> = Promise.resolve();
  /**
   * Resolves when the container has exited, before the outcome is recorded (the receiver frees
   * the slot there: receiver.ts `freeSlots`), or when the run ends without one. Never rejects.
   */
  readonly exited: Promise<void>;
  private markExited!: () => void;
  /** Resolves when this attempt's container runs (started, or adopted): the heartbeat's early beat. Never rejects. */
  private readonly containerStarted: Promise<void>;
  private markContainerStarted!: () => void;
  /** Resolves once the run is over: its outcome written (or abandoned) and `onTaskEnd` called. Never rejects. */
  readonly ended: Promise<void>;
  private markEnded!: () => void;

  constructor(
    private readonly deps: TaskRunDeps,
    readonly lease: Lease,
    private readonly record: TaskRecord,
    receiptHandle: string | undefined,
    claim?: ClaimTiming,
  ) {
    this.taskId = lease.taskId;
    this.exited = new Promise<void>((resolve) => (this.markExited = resolve));
    this.containerStarted = new Promise<void>((resolve) => (this.markContainerStarted = resolve));
    this.ended = new Promise<void>((resolve) => (this.markEnded = resolve));
    this.dispatch = claim ? new DispatchClock(record, claim) : undefined;
    this.log = deps.log.child({ task_id: lease.taskId, attempt: lease.attempt });
    this.leaseExpiresAt = Date.now() + deps.config.timings.leaseSeconds * 1000;
    const retryLogged = <T>(what: string, fn: () => Promise<T>) => this.withRetry(what, fn);
    this.inputs = new TaskInputs({ config: deps.config, s3: deps.s3, secrets: deps.secrets, sealer: deps.sealer, redactor: deps.log.secrets, retry: retryLogged }, lease.taskId, lease.attempt, record);
    this.outputs = new TaskOutputs({ shipper: deps.shipper, s3: deps.s3, config: deps.config, redactor: deps.log.secrets, log: this.log }, lease.taskId, lease.attempt);
    const abcaTaskId = deps.abcaMirror && abcaTaskIdOf(record.spec);
    this.outcome = new TaskOutcome({ store: deps.store, sqs: deps.sqs, queueUrl: deps.config.queueUrl, log: this.log, redact: (t: string) => deps.log.secrets.redact(t), retry: retryLogged,
      // ABCA (abca-mirror.ts): its record hears the outcome; a started ABCA session never runs twice.
      onEnd: abcaTaskId ? (end) => deps.abcaMirror!.ended(abcaTaskId, end) : undefined, atMostOnce: () => this.started && abcaAtMostOnce(record) }, lease, receiptHandle);
  }

  /** The container this run started or adopted (undefined while preparing). */
  get containerId(): string | undefined {
    return this.container?.id;
  }

  get heartbeatAgeMs(): number {
    return Date.now() - this.heartbeatAt;
  }

  get stopping(): StopReason | undefined {
    return this.stopReason;
  }

  /**
   * Ask the task to stop: the first reason wins; the container gets the SIGTERM ladder. Once the
   * container exited, only a lost lease still counts: the exit is the outcome, and a cancel, a
   * release or a timeout then has nothing to stop (a release would hand back, to run again, a
   * task that finished).
   */
  requestStop(reason: StopReason, detail = ''): void {
    if (this.stopReason) return;
    if (this.phase === 'finishing' && reason !== 'lease-lost') {
      this.log.info('the container already exited: its exit is the outcome', { ignored_stop: reason, detail });
      return;
    }
    this.stopReason = reason;
    if (reason === 'release') this.releaseReason = detail;
    this.log.info('stopping task', { reason, detail });
    if (this.container && this.started) {
      const grace = reason === 'lease-lost' ? 0 : this.deps.config.timings.cancelGraceSeconds;
      void this.deps.runner.stop(this.container, grace).catch((err) => this.log.warn('stopping container failed', { error: err }));
    }
  }

  /** A cancel from the control socket (or ABCA's record): recorded first, then the ladder. */
  async cancelFromSocket(by = 'control-socket'): Promise<boolean> {
    const recorded = await this.deps.store.requestCancel(this.lease, by);
    if (recorded) this.requestStop('cancel');
    return recorded;
  }

  /** Release now (spot notice, drain budget spent): stop quickly and hand the task back. */
  release(reason: string): void {
    this.requestStop('release', reason);
  }

  async execute(): Promise<TaskRunResult> {
    return this.withHeartbeats(() => this.run());
  }

  /**
   * After a daemon restart: supervise a container this attempt already started (found by its
   * labels) as if it had never been left: heartbeats, the remaining timeout, the terminal write.
   */
  async adopt(container: Docker.Container): Promise<TaskRunResult> {
    return this.withHeartbeats(async () => {
      const { runner } = this.deps;
      const files = runner.taskFiles(this.taskId);
      let output: TaskOutput | undefined;
      try {
        output = this.outputs.open(files, true);
        const spec = this.inputs.spec();
        // Registered again for redaction only; the container already has them.
        await this.inputs.secretEnv(spec).catch((err) => this.log.warn('secrets could not be re-read for redaction', { error: (err as Error).message }));
        this.container = container;
        this.started = true;
        this.phase = 'running';
        this.markContainerStarted();
        this.deps.onContainerStarted?.(this.lease);
        if (this.record.lease_expires_at) this.deps.leaseFiles?.write({ task_id: this.taskId, attempt: this.lease.attempt, lease_expires_at: this.record.lease_expires_at });
        const { done: streamDone } = await runner.attach(container, output);
        const startedAt = this.record.started_at ?? Date.now();
        return await this.supervise(spec, files, output, streamDone, startedAt);
      } finally {
        output?.close();
        await this.outputs.closeLog();
        await Promise.all([this.outcome.afterWrite, runner.remove(container)]);
        runner.removeFiles(this.taskId);
      }
    });
  }

  private async withHeartbeats(body: () => Promise<TaskRunResult>): Promise<TaskRunResult> {
    const heartbeats = this.heartbeatLoop();
    try {
      return await body();
    } finally {
      this.markExited();
      this.heartbeatAbort.abort();
      await heartbeats;
      this.deps.leaseFiles?.remove(this.taskId);
      for (const v of this.inputs.secretValues) this.deps.log.secrets.remove(v);
      this.deps.onTaskEnd?.(this.lease);
      this.markEnded();
    }
  }

  /**
   * The attempt to its outcome, then the cleanup: in the background after a terminal write
   * (`tail`: the run ends at the write), awaited after any other end.
   */
  private async run(): Promise<TaskRunResult> {
    let result: TaskRunResult | undefined;
    try {
      result = await this.runToOutcome();
      return result;
    } finally {
      const terminal = result !== undefined && (TERMINAL_STATUSES as readonly string[]).includes(result.status);
      if (terminal) this.tail = this.cleanUp().catch((err: unknown) => this.log.warn('cleaning up after the task failed', { error: err }));
      else await this.cleanUp();
    }
  }

  /** The message's deletion (terminal writes) beside the container's removal, then the files. */
  private async cleanUp(): Promise<void> {
    const { runner } = this.deps;
    this.output?.close();
    await this.outputs.closeLog();
    await Promise.all([this.outcome.afterWrite, this.container ? runner.remove(this.container) : undefined]);
    runner.removeFiles(this.taskId);
  }

  private async runToOutcome(): Promise<TaskRunResult> {
    const { runner, config, store } = this.deps;
    let files: TaskFiles | undefined;
    let spec: TaskSpec;
    let env: string[];
    try {
      spec = this.inputs.spec();
      // Before anything is pulled, read or run: a record rewritten after submit never runs.
      await this.inputs.checkSeal();
      const payload = await this.inputs.payloadJson(spec);
      env = [...this.inputs.baseEnv(payload, spec), ...(await this.inputs.secretEnv(spec)), ...(this.deps.extraEnv ? await this.deps.extraEnv(this.lease) : [])];
      const image = await this.timed('image_pull_ms', () => runner.ensureImage(spec.image));
      this.dispatch?.pulled(image === 'pulled');
      files = await runner.prepareFiles(this.taskId, payload, spec.disk_mb);
    } catch (err) {
      return await this.failedBeforeStart(err);
    }
    if (this.stopReason) return await this.endWithoutStart();

    // The first heartbeat (RUNNING) must land before the container starts. It goes out beside
    // the container's creation and attach: neither needs the other (the record learns the
    // container's id with the next write, StartFacts), so the start waits for the slower of
    // the two rather than for both in a row. Whatever the write says, `this.container` is set
    // when a create succeeded, so the cleanup removes a container that never starts.
    const sentAt = Date.now();
    const taskFiles = files;
    const [running, created] = await Promise.allSettled([
      store.markRunning(this.lease),
      (async () => {
        const container = (this.container = await this.timed('container_create_ms', () => runner.create({ taskId: this.taskId, attempt: this.lease.attempt, spec, env, files: taskFiles, graceSeconds: config.timings.cancelGraceSeconds })));
        const output = (this.output = this.outputs.open(taskFiles));
        return { container, output, ...(await runner.attach(container, output)) };
      })(),
    ]);
    if (running.status === 'rejected') throw running.reason;
    if (running.value === 'fenced') return this.outcome.fenced('first heartbeat fenced out');
    if (running.value === 'cancel-requested' || this.stopReason) {
      this.stopReason ??= 'cancel';
      return await this.endWithoutStart();
    }
    // Before the start: the lease guard kills a running container that has no local lease.
    this.recordLease(sentAt);
    if (created.status === 'rejected') return await this.failedBeforeStart(created.reason);
    const { container, output, done: streamDone } = created.value;
    const startedAt = Date.now();
    try {
      await this.timed('container_start_ms', () => container.start());
    } catch (err) {
      if (isEngineUnreachable(err)) return await this.engineInterrupted(`the Docker engine did not answer when starting the container: ${(err as Error).message}`, true);
      // A 5xx is the engine's own trouble (seen right after a dockerd restart: "failed to update
      // store for object type *libnetwork.endpoint"): another attempt, which counts, so a
      // failure that repeats everywhere still ends at the attempt cap.
      if (isEngineServerError(err)) return await this.engineInterrupted(`the Docker engine failed to start the container (this attempt counts): ${(err as Error).message}`, false, false);
      // A 4xx: the engine refused this container (e.g. the command's executable does not exist
      // in the image): the task's own fault, and every attempt would fail the same way.
      const reason = this.deps.log.secrets.redact(`the container could not start: ${(err as Error).message}`);
      this.log.warn('task failed at container start', { reason });
      return await this.outcome.finish(TaskStatus.FAILED, { reason, ...this.unwrittenStartFacts() });
    }
    this.started = true;
    this.phase = 'running';
    this.markContainerStarted();
    this.deps.onContainerStarted?.(this.lease);
    this.log.info('container started', { container_id: container.id, image: spec.image, dispatch: this.dispatch?.timings });
    // A stop requested between markRunning and start applies now.
    if (this.stopReason) runner.stop(container, config.timings.cancelGraceSeconds).catch(() => undefined);
    return await this.supervise(spec, taskFiles, output, streamDone, startedAt);
  }

  /** Waits for the container under heartbeats and the timeout, then the one terminal write. */
  private async supervise(spec: TaskSpec, files: TaskFiles, output: TaskOutput, streamDone: Promise<void>, startedAt: number): Promise<TaskRunResult> {
    const { runner } = this.deps;
    const timeoutLeft = Math.max(0, startedAt + spec.timeout_s * 1000 - Date.now());
    const timeout = setTimeout(() => this.requestStop('timeout'), timeoutLeft);
    const oom = new OomWatch(this.container!.id).start();
    let exit;
    let engineLost: string | undefined;
    try {
      const facts = await this.waitThroughEngineRestarts();
      // The slot frees here (receiver.ts); the outcome is recorded beside the next task.
      this.phase = 'finishing';
      this.markExited();
      oom.stop();
      if (facts === 'engine-lost') {
        engineLost = `the Docker engine stopped answering while the container ran and was not back within ${this.deps.config.timings.leaseSeconds} s`;
        exit = { exitCode: -1, oomKilled: false, vanished: false };
      } else {
        exit = { exitCode: facts.exitCode, vanished: facts.vanished, oomKilled: oom.verdict(facts.oomKilled, facts.exitCode, spec.memory_mb * 1024 * 1024, this.stopReason !== undefined) };
      }
    } finally {
      clearTimeout(timeout);
      oom.stop();
    }
    await Promise.race([streamDone, sleep(2000)]);
    output.close();
    // Before the terminal write: the stream gets what it still holds (bounded by a deadline).
    await this.outputs.closeLog();
    const duration_ms = Date.now() - startedAt;
    this.log.info('container exited', { exit_code: exit.exitCode, oom_killed: exit.oomKilled, duration_ms, stop_reason: this.stopReason });

    if (this.fencedOut || this.stopReason === 'lease-lost') return this.outcome.fenced('lease lost while running');
    if (this.stopReason === 'release') return await this.outcome.release(this.releaseReason);
    // Stopped by something other than the agent and other than fleetd (dockerd shutting down or
    // restarting, an operator's `docker stop`): not the task's outcome, so it gets another attempt.
    if (engineLost) return await this.engineInterrupted(engineLost, true);
    if (exit.vanished && !this.stopReason) return await this.engineInterrupted('the container was removed from outside fleetd before it exited; use `fleet cancel` to stop a task for good');
    if (!this.stopReason && exit.exitCode !== 0 && !exit.oomKilled && (this.engineRestarted || isSignalExit(exit.exitCode))) {
      const outside = this.engineRestarted ? `the Docker engine restarted while the container ran (exit code ${exit.exitCode})` : await runner.stoppedFromOutside(this.container!, startedAt);
      if (outside) return await this.engineInterrupted(`${outside}; use \`fleet cancel\` to stop a task for good`);
    }
    const outFiles = await runner.outputFiles(this.container!, files);
    const common = { exit_code: exit.exitCode, oom_killed: exit.oomKilled, duration_ms, log_tail: output.tail(), ...runner.readResult(outFiles, (s) => this.deps.log.secrets.redact(s)), ...(await this.outputs.artifacts(outFiles)), ...this.unwrittenStartFacts() };
    if (this.stopReason === 'cancel') return await this.outcome.finish(TaskStatus.CANCELLED, { ...common, reason: 'cancelled by request' });
    if (this.stopReason === 'timeout') return await this.outcome.finish(TaskStatus.TIMED_OUT, { ...common, reason: `timed out after ${spec.timeout_s} s` });
    if (exit.exitCode === 0 && !exit.oomKilled) return await this.outcome.finish(TaskStatus.COMPLETED, common);
    const reason = exit.oomKilled ? `killed: out of memory (limit ${spec.memory_mb} MiB)` : ((await runner.diskLimitHit(this.container!, files, spec.disk_mb, exit.exitCode)) ?? `exit code ${exit.exitCode}`);
    return await this.outcome.finish(TaskStatus.FAILED, { ...common, reason });
  }

  /**
   * The container's exit, waiting out an engine restart: when the engine stops answering, ping
   * it every second (heartbeats go on meanwhile) for up to one lease, then wait again. A
   * container that survived (live-restore) is supervised on; one the engine stopped answers at
   * once with its exit code.
   */
  private async waitThroughEngineRestarts(): Promise<ExitFacts | 'engine-lost'> {
    const { runner, config } = this.deps;
    for (;;) {
      try {
        return await runner.wait(this.container!);
      } catch (err) {
        if (!isEngineUnreachable(err)) throw err;
        this.engineRestarted = true;
        this.log.warn('the Docker engine stopped answering while the container ran; waiting for it', { error: err });
        this.deps.onEngineTrouble?.(`the Docker engine stopped answering: ${(err as Error).message}`);
        if (!(await runner.waitForEngine(config.timings.leaseSeconds * 1000, this.heartbeatAbort.signal))) return 'engine-lost';
        this.log.info('the Docker engine answers again; looking at the container');
      }
    }
  }

  /**
   * The lease just renewed in DynamoDB ends `leaseSeconds` after the write was sent, at the
   * earliest: kept here (the heartbeat loop's own deadline) and in the local lease file.
   */
  private recordLease(sentAt: number): void {
    this.leaseExpiresAt = sentAt + this.deps.config.timings.leaseSeconds * 1000;
    try {
      this.deps.leaseFiles?.write({ task_id: this.taskId, attempt: this.lease.attempt, lease_expires_at: this.leaseExpiresAt });
    } catch (err) {
      // Not fatal here: the guard then finds no lease (or a stale one) and stops the container,
      // which is the safe side of the trade.
      this.log.warn('writing the local lease file failed', { error: err });
    }
  }

  /** An infrastructure fault, not the task's: hand the task back for another attempt. */
  private async engineInterrupted(why: string, engineDown = false, refund = true): Promise<TaskRunResult> {
    this.log.warn('the task was interrupted by its instance, not by itself: releasing it for another attempt', { why, attempt_refunded: refund });
    if (engineDown) this.deps.onEngineTrouble?.(why);
    this.releaseReason = this.deps.log.secrets.redact(why);
    this.stopReason = 'release';
    return this.outcome.release(this.releaseReason, refund);
  }

  /** Preparing or creating the container failed: the engine's fault gets another attempt, the task's own ends it. */
  private async failedBeforeStart(err: unknown): Promise<TaskRunResult> {
    if (this.stopReason) return await this.endWithoutStart();
    if (err instanceof SealUnverifiedError) return await this.engineInterrupted(err.message, false, true);
    if (isEngineUnreachable(err)) return await this.engineInterrupted(`the Docker engine did not answer while preparing the task: ${(err as Error).message}`, true);
    if (isEngineServerError(err)) return await this.engineInterrupted(`the Docker engine failed while preparing the task (this attempt counts): ${(err as Error).message}`, false, false);
    const reason = err instanceof PrepareError || /Image(Policy|Pull)Error/.test((err as Error).name) ? (err as Error).message : `preparing the task failed: ${(err as Error).message}`;
    this.log.warn('task failed before start', { reason });
    return await this.outcome.finish(TaskStatus.FAILED, { reason: this.deps.log.secrets.redact(reason) });
  }

  private async endWithoutStart(): Promise<TaskRunResult> {
    if (this.stopReason === 'release') return this.outcome.release(this.releaseReason);
    if (this.stopReason === 'lease-lost') return this.outcome.fenced('lease lost before start');
    // The timeout clock starts with the container, so this is only a defensive branch; CLAIMED
    // cannot become TIMED_OUT (see the transition table), so it ends FAILED with the reason.
    if (this.stopReason === 'timeout') return this.outcome.finish(TaskStatus.FAILED, { reason: 'timed out before the container started' });
    return this.outcome.finish(TaskStatus.CANCELLED, { reason: 'cancelled before the container started' });
  }

  /** The start facts no write has carried yet: the container's id, and the dispatch timings once started. */
  private unwrittenStartFacts(): StartFacts {
    return {
      ...(this.container && !this.factsWritten.container ? { container_id: this.container.id } : {}),
      ...(this.started && this.dispatch && !this.factsWritten.dispatch ? { dispatch: this.dispatch.timings } : {}),
    };
  }

  private timed<T>(phase: 'image_pull_ms' | 'container_create_ms' | 'container_start_ms', fn: () => Promise<T>): Promise<T> {
    return this.dispatch ? this.dispatch.time(phase, fn) : fn();
  }

  /** A task write under the one retry policy, each retry logged. */
  private withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retry(what, fn, {
      policy: this.deps.writeRetry ?? RETRY_POLICIES.taskStep,
      onRetry: (r) => this.log.warn(`${what} failed; retrying`, { error: r.error, attempt: r.attempt, retry_in_ms: r.retryInMs }),
    });
  }

  /** The beat (task-heartbeat.ts): renew, read a cancel, mirror into ABCA, extend the message. */
  private heartbeatLoop(): Promise<void> {
    return heartbeatLoop({
      timings: this.deps.config.timings, signal: this.heartbeatAbort.signal, lease: this.lease, record: this.record, log: this.log, abcaMirror: this.deps.abcaMirror,
      beat: async (l) => {
        const facts = this.unwrittenStartFacts();
        const beat = await this.deps.store.heartbeat(l, facts);
        if (beat.kind === 'ok') {
          if (facts.container_id) this.factsWritten.container = true;
          if (facts.dispatch) this.factsWritten.dispatch = true;
        }
        return beat;
      },
      leaseExpiresAt: () => this.leaseExpiresAt,
      renewed: (sentAt) => ((this.heartbeatAt = Date.now()), this.recordLease(sentAt)),
      leaseLost: (fenced) => {
        if (fenced) this.fencedOut = true;
        this.requestStop('lease-lost');
        if (this.container) void this.deps.runner.kill(this.container);
      },
      cancel: (by) => (by === 'record' ? this.requestStop('cancel') : !this.stopReason && void this.cancelFromSocket(by).catch((err) => this.log.warn('cancelling for ABCA failed; the next heartbeat tries again', { error: err }))),
      extendVisibility: (seconds) => this.outcome.extendVisibility(seconds),
      earlyBeat: this.containerStarted,
    });
  }
}
