/**
 * fleetd: the instance daemon. Boot preflight, then one receive loop per slot; each received
 * message is claimed in DynamoDB (lease.ts) and run to the end (task-run.ts) in that slot, so
 * the daemon never receives more than it can run. Around the slots, the instance's lifecycle
 * (DESIGN.md "Instance lifecycle", lifecycle.ts): a drain on SIGTERM, the spot notice and the
 * termination hook watched in IMDS, idle self-termination, scale-in protection, disk checks
 * and pruning (prune.ts), per-task credentials (credentials.ts). Lifecycle as events plus
 * stop({ abort }).
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import type Docker from 'dockerode';
import { abcaMirrorFor, type AbcaHeartbeatMirror } from './abca-mirror';
import type { AwsClients } from './aws';
import { RETRY_POLICIES, backoffDelayMs, retry, sleep, type RetryAttemptInfo } from './retry';
import type { FleetdConfig } from './config';
import { CONTAINER_LABELS, CONTAINER_LABEL_MANAGED_BY_VALUE, DLQ_REASON_ATTRIBUTE, InstanceStatus, SQS_MAX_TOTAL_VISIBILITY_SECONDS, TaskStatus, decodeEnvelope, type TaskRecord } from './contract';
import { startControlServer, type ControlResponse } from './control';
import { CredentialsServer } from './credentials';
import { dockerAnswers } from './docker';
import { LeaseFiles } from './lease-guard';
import { diskShortage } from './disk';
import type { ImdsClient, InstanceIdentity } from './imds';
import { InstanceState } from './instance';
import { TaskStore, type Lease } from './store';
import {
  InterruptionWatcher,
  completeLifecycleHook,
  ensureScaleInProtection,
  heartbeatLifecycleHook,
  terminateIfAboveMin,
  type HookTarget,
  type Interruption,
  type SelfTermination,
} from './lifecycle';
import type { Logger } from './log';
import { Pruner } from './prune';
import { SpecSealer } from './seal';
import { ContainerRunner } from './runner';
import { TaskRun, type TaskRunResult } from './task-run';

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
  private control?: net.Server;
  private credentials?: CredentialsServer;
  private pruner?: Pruner;
  private watcher?: InterruptionWatcher;
  private abcaMirror?: AbcaHeartbeatMirror;
  private sealer?: SpecSealer;
  private readonly runs = new Map<string, TaskRun>();
  /** Supervisions of containers re-adopted after a restart (not inside a slot loop). */
  private readonly adopted = new Set<Promise<unknown>>();
  private receiving = false;
  private slotLoops: Promise<void>[] = [];
  private idleLoopDone?: Promise<void>;
  private heartbeatTimer?: NodeJS.Timeout;
  /** Ends the sleeps of the idle loop and of slots waiting for disk when the drain begins. */
  private readonly loopsAbort = new AbortController();
  // Drain state.
  private drainState?: { reason: string; since: number; done: Promise<void> };
  private releasing?: string;
  private releaseFailures = 0;
  private wakeDrain?: () => void;
  private hookDone?: Promise<void>;
  private finalizing?: Promise<void>;
  private interruption?: Interruption;
  // Receive bookkeeping, for the idle check ("nothing was received meanwhile").
  private pause?: { promise: Promise<void>; open: () => void };
  private receivesInFlight = 0;
  private handling = 0;
  private receivedCount = 0;
  private lastBusyAt = Date.now();
  private idleState = 'not checked yet';
  private selfTerminated = false;
  private readonly leaseFiles: LeaseFiles;
  // Docker engine: set when it stops answering; the slots claim nothing until a ping answers.
  private engineProblem?: string;
  // Disk.
  private diskPaths: string[] = [];
  private diskProblem?: string;
  private lastDiskPrune = 0;
  private readonly log: Logger;

  constructor(private readonly deps: FleetdDeps) {
    super();
    this.log = deps.log;
    this.leaseFiles = new LeaseFiles(deps.config.workDir);
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

  /**
   * Preflight, recovery, then the receive loops. Throws BootError after reporting it (tag
   * unhealthy, instance row with the reason, SetInstanceHealth Unhealthy). The instance is
   * tagged idle only after everything a task needs answered.
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
    this.log.info('fleetd booting', { instance_id: id.instanceId, region: id.region, az: id.availabilityZone, slots: config.slots, config: config.source });
    this.instance = new InstanceState({
      ec2: clients.ec2,
      ddb: clients.ddb,
      instancesTable: config.instancesTable,
      instanceId: id.instanceId,
      tagPrefix: config.tagPrefix,
      slots: config.slots,
      asgName: config.asgName,
      availabilityZone: id.availabilityZone,
      log: this.log,
    });
    const problem = await this.preflight();
    if (problem) {
      await this.instance.reportUnhealthy(clients.autoscaling, problem);
      await this.removeUnsupervisedContainers(problem);
      await this.closeServers();
      throw new BootError(`preflight: ${problem}`);
    }
    this.store = new TaskStore({ ddb: clients.ddb, tasksTable: config.tasksTable, eventsTable: config.eventsTable, timings: config.timings });
    this.runner = new ContainerRunner({ docker, workDir: config.workDir, instanceId: id.instanceId, allowedRegistries: config.allowedRegistries, ecr: clients.ecr, log: this.log });
    // The lease guard (`fleetd guard`, its own systemd timer) acts on this instance's containers only.
    this.leaseFiles.writeInstanceId(id.instanceId);
    this.abcaMirror = abcaMirrorFor(config, clients.ddb, this.log);
    this.sealer = config.sealKeyId ? new SpecSealer(clients.kms, config.sealKeyId) : undefined;
    if (!this.sealer) this.log.warn('no sealKeyId in the config: task seals are not verified; anyone who may update a task record decides what runs (docs/security.md)');
    this.pruner = new Pruner({ docker, instanceId: id.instanceId, workDir: config.workDir, afterHours: config.prune.afterHours, liveTaskIds: () => new Set(this.runs.keys()), log: this.log });
    await this.recoverContainers();
    // A termination or spot notice already pending (fleetd restarted mid-drain): never idle.
    this.watcher = new InterruptionWatcher(imds, (i) => this.onInterruption(i), this.log);
    await this.watcher.start();
    if (this.drainState) return;
    await this.instance.set(this.runs.size ? InstanceStatus.BUSY : InstanceStatus.IDLE, [...this.runs.keys()]);
    this.receiving = true;
    this.lastBusyAt = Date.now();
    // Instance heartbeat: every heartbeatSeconds, the instance row (fleet instances, reconciler).
    this.heartbeatTimer = setInterval(() => {
      void this.instance?.heartbeat().catch((err) => this.log.warn('instance heartbeat failed', { error: err }));
    }, config.timings.heartbeatSeconds * 1000);
    this.heartbeatTimer.unref();
    this.slotLoops = Array.from({ length: config.slots }, (_, i) => this.slotLoop(i));
    this.idleLoopDone = this.idleLoop();
    this.pruner.start(config.prune.intervalSeconds);
    this.log.info('fleetd ready: polling for tasks', { instance_id: id.instanceId, queue: config.queueUrl, credentials_endpoint: this.credentials?.endpoint });
    this.emit('ready', id);
  }

  /** Returns the first problem that makes this instance unable to run a task, if any. */
  private async preflight(): Promise<string | undefined> {
    const { config, clients, docker } = this.deps;
    const id = this.identity!;
    try {
      this.control = await startControlServer(config.socketPath, { cancel: (t) => this.cancelLocal(t), status: () => this.statusResponse() });
    } catch (err) {
      return `the control socket ${config.socketPath} could not be opened: ${(err as Error).message}`;
    }
    if (!(await dockerAnswers(docker, 5000))) return `the Docker engine does not answer (DOCKER_HOST=${process.env.DOCKER_HOST ?? 'default socket'})`;
    // A network blip or a throttled API at boot must not mark the instance unhealthy (the group
    // would replace it): transient errors are retried (transient.ts); a missing queue or table,
    // or a denied call, fails at once.
    try {
      await retry('preflight: AWS', async () => {
        await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: config.queueUrl, AttributeNames: ['QueueArn'] }));
        await clients.ddb.send(new DescribeTableCommand({ TableName: config.tasksTable }));
      }, this.bootRetry);
    } catch (err) {
      return `AWS is not reachable or the fleet's resources are missing: ${(err as Error).name}: ${(err as Error).message}`;
    }
    try {
      fs.mkdirSync(config.workDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      return `the work directory ${config.workDir} could not be created: ${(err as Error).message}`;
    }
    const dockerRoot = await docker.info().then((i: { DockerRootDir?: string }) => i.DockerRootDir, () => undefined);
    this.diskPaths = [config.workDir, ...(dockerRoot ? [dockerRoot] : [])];
    const disk = diskShortage(this.diskPaths, config.minFreeDiskBytes, config.minFreeInodes);
    if (disk) return disk;
    if (config.asgName) {
      const unprotected = await ensureScaleInProtection(clients.autoscaling, config.asgName, id.instanceId, this.log);
      if (unprotected) return unprotected;
    }
    if (config.taskRoleArn) {
      const creds = new CredentialsServer({
        sts: clients.sts,
        roleArn: config.taskRoleArn,
        host: config.credentialsEndpoint.host,
        port: config.credentialsEndpoint.port,
        durationSeconds: config.taskCredentialsSeconds,
        log: this.log,
      });
      try {
        await creds.start();
      } catch (err) {
        return `the credentials endpoint could not listen on ${config.credentialsEndpoint.host}:${config.credentialsEndpoint.port} (${(err as Error).message}); is ${config.credentialsEndpoint.host}/32 on lo?`;
      }
      this.credentials = creds;
      try {
        await creds.probe();
      } catch (err) {
        return `the task role ${config.taskRoleArn} cannot be assumed: ${(err as Error).name}: ${(err as Error).message}`;
      }
    }
    return undefined;
  }

  /**
   * A boot that failed cannot heartbeat the containers an earlier fleetd left on this instance:
   * their leases expire and another instance takes the tasks over while they still run (the
   * chaos suite saw exactly that overlap). So they are removed before fleetd exits; a crash-
   * looping fleetd never leaves a task running twice. Best effort: when Docker does not answer,
   * there is nothing to stop.
   */
  private async removeUnsupervisedContainers(problem: string): Promise<void> {
    const { docker } = this.deps;
    const label = [`${CONTAINER_LABELS.managedBy}=${CONTAINER_LABEL_MANAGED_BY_VALUE}`, `${CONTAINER_LABELS.instanceId}=${this.identity!.instanceId}`];
    const found = await docker.listContainers({ all: true, filters: { label } }).catch(() => []);
    for (const info of found) {
      this.log.warn('boot failed: removing a container no fleetd can supervise', { task_id: info.Labels[CONTAINER_LABELS.taskId], container_id: info.Id, problem });
      await docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined);
    }
  }

  /**
   * After a restart: containers this instance started are re-adopted when we still hold their
   * lease (the task goes on), and stopped and removed otherwise. No orphan keeps running.
   */
  private async recoverContainers(): Promise<void> {
    const found = await this.runner!.managedContainers();
    for (const info of found) {
      const taskId = info.Labels[CONTAINER_LABELS.taskId];
      const attempt = Number(info.Labels[CONTAINER_LABELS.attempt]);
      const container = this.deps.docker.getContainer(info.Id);
      // Retried through an AWS blip: a boot that gave up here would leave the container
      // unsupervised until systemd's next restart.
      const { record } = taskId ? await retry('recovering a container: reading its task', () => this.store!.get(taskId), this.bootRetry) : {};
      const ours =
        record &&
        record.instance_id === this.identity!.instanceId &&
        record.attempt === attempt &&
        [TaskStatus.RUNNING, TaskStatus.CANCEL_REQUESTED].includes(record.status as 'RUNNING') &&
        (record.lease_expires_at ?? 0) > Date.now();
      if (ours) {
        this.log.info('re-adopting a container whose lease we still hold', { task_id: taskId, attempt, container_id: info.Id, state: info.State });
        if (this.credentials) {
          const env = await container.inspect().then((i) => i.Config?.Env ?? [], () => []);
          const served = await this.credentials.adopt(taskId, attempt, env, repoOf(record)).catch((err: Error) => {
            this.log.warn('credentials of a re-adopted container could not be served again', { task_id: taskId, error: err });
            return false;
          });
          if (!served) this.log.warn('re-adopted container has no credentials endpoint of this server', { task_id: taskId });
        }
        const run = this.newRun({ taskId, instanceId: this.identity!.instanceId, attempt }, record, undefined);
        const supervised = run.adopt(container).then(
          (r: TaskRunResult) => this.emit('task-ended', r),
          (err: Error) => this.taskError('supervising a re-adopted container failed', { task_id: taskId, error: err }),
        );
        this.adopted.add(supervised);
      } else {
        this.log.warn('removing a container from an attempt we no longer own', { task_id: taskId, attempt, container_id: info.Id, record_status: record?.status });
        await container.remove({ force: true }).catch(() => undefined);
        if (taskId) this.runner!.removeFiles(taskId);
      }
    }
  }

  private newRun(lease: Lease, record: TaskRecord, receiptHandle: string | undefined): TaskRun {
    const { clients, config } = this.deps;
    const credentials = this.credentials;
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
        onEngineTrouble: (problem) => this.onEngineTrouble(problem),
        onTaskEnd: (l) => {
          this.runs.delete(l.taskId);
          credentials?.revoke(l.taskId);
          this.lastBusyAt = Date.now();
          void this.instance?.set(this.runs.size ? InstanceStatus.BUSY : this.drainState ? InstanceStatus.DRAINING : InstanceStatus.IDLE, [...this.runs.keys()], this.drainState?.reason);
        },
      },
      lease,
      record,
      receiptHandle,
    );
    this.runs.set(lease.taskId, run);
    if (typeof record.spec.image === 'string') {
      try {
        this.pruner?.imageUse.touch(record.spec.image);
      } catch (err) {
        this.log.warn('recording the image use failed', { error: err });
      }
    }
    void this.instance?.set(this.drainState ? InstanceStatus.DRAINING : InstanceStatus.BUSY, [...this.runs.keys()], this.drainState?.reason);
    this.emit('task-started', lease.taskId, lease.attempt);
    // Claimed while the drain was already releasing: hand it back as soon as it can be.
    if (this.releasing) run.release(this.releasing);
    return run;
  }

  /** A task's supervision failed; while releasing, that is a release that did not happen. */
  private taskError(msg: string, extra: Record<string, unknown>): void {
    if (this.releasing) this.releaseFailures++;
    this.log.error(msg, extra);
  }

  /**
   * One slot: long poll (WaitTimeSeconds = longPollSeconds, 20 s), at most one message, run
   * it to the end, repeat. After an error: backoff with full jitter (0.5 s doubling, 30 s cap).
   * While the disk is short: re-check every 5 s (no jitter: a local statfs). While the idle
   * check runs: parked until it is over.
   */
  private async slotLoop(slot: number): Promise<void> {
    const { clients, config } = this.deps;
    let errors = 0;
    while (this.receiving) {
      if (this.pause) {
        await this.pause.promise;
        continue;
      }
      this.diskProblem = diskShortage(this.diskPaths, config.minFreeDiskBytes, config.minFreeInodes);
      if (this.diskProblem) {
        this.onDiskShort(slot);
        await sleep(5000, this.loopsAbort.signal);
        continue;
      }
      // A claim on an instance whose engine is down could only be released again: ping first
      // (a local socket, ~1 ms). While it does not answer: re-check every 2 s (no jitter, local).
      if (!(await this.engineAnswers())) {
        await sleep(2000, this.loopsAbort.signal);
        continue;
      }
      let messages: Message[];
      this.receivesInFlight++;
      try {
        const res = await clients.sqs.send(new ReceiveMessageCommand({
          QueueUrl: config.queueUrl,
          MaxNumberOfMessages: 1,
          WaitTimeSeconds: config.timings.longPollSeconds,
          VisibilityTimeout: config.timings.leaseSeconds,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }));
        messages = res.Messages ?? [];
        errors = 0;
      } catch (err) {
        const delay = backoffDelayMs(errors++, 500, 30_000);
        this.log.warn('receive failed', { slot, error: err, retry_in_ms: delay });
        await sleep(delay);
        continue;
      } finally {
        this.receivesInFlight--;
      }
      // No await between the end of the receive and `handling++`: the idle check never sees
      // a received message that is neither in flight nor handled.
      this.receivedCount += messages.length;
      for (const message of messages) {
        if (!this.receiving) {
          // Received while a drain began: hand it straight back rather than strand it for a lease.
          await clients.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 })).catch(() => undefined);
          continue;
        }
        this.handling++;
        try {
          await this.handleMessage(message);
        } catch (err) {
          this.taskError('handling a message failed; it will be received again', { slot, error: err, message_id: message.MessageId });
        } finally {
          this.handling--;
          this.lastBusyAt = Date.now();
        }
      }
    }
  }

  /** True when the engine answers; the first answer after trouble sweeps unsupervised containers. */
  private async engineAnswers(): Promise<boolean> {
    const answers = await dockerAnswers(this.deps.docker, 2000);
    if (!answers) {
      if (!this.engineProblem) this.onEngineTrouble('the Docker engine does not answer /_ping');
      return false;
    }
    if (this.engineProblem) {
      const was = this.engineProblem;
      this.engineProblem = undefined;
      this.log.info('the Docker engine answers again: claiming resumes', { was });
      await this.sweepUnsupervised();
    }
    return true;
  }

  private onEngineTrouble(problem: string): void {
    if (!this.engineProblem) this.log.warn('not claiming: the Docker engine is not answering', { problem });
    this.engineProblem = problem;
  }

  /**
   * After an engine outage: a container of this instance that no task run supervises (its run
   * was released while the engine was down, so it could not be removed) must not keep running
   * while another attempt of its task runs elsewhere. With live-restore such a container survives
   * the engine's restart; without it the engine has already stopped it, and this only removes it.
   */
  private async sweepUnsupervised(): Promise<void> {
    const supervised = new Set([...this.runs.values()].map((r) => r.containerId).filter((id): id is string => Boolean(id)));
    const found = await this.runner!.managedContainers().catch(() => []);
    for (const info of found) {
      if (supervised.has(info.Id)) continue;
      // A run still preparing has no container id yet; its container's name carries the task.
      const taskId = info.Labels[CONTAINER_LABELS.taskId];
      if (taskId && this.runs.has(taskId) && !this.runs.get(taskId)!.containerId) continue;
      this.log.warn('removing a container no task run supervises (left by an engine outage)', { task_id: taskId, container_id: info.Id, state: info.State });
      await this.deps.docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined);
    }
  }

  /** Logged once per shortage; a prune is started at once (at most every 5 min). */
  private onDiskShort(slot: number): void {
    const now = Date.now();
    if (now - this.lastDiskPrune < 5 * 60_000) return;
    this.lastDiskPrune = now;
    this.log.warn('not claiming: disk short; pruning now', { slot, problem: this.diskProblem });
    void this.pruner?.pruneOnce().catch((err) => this.log.warn('prune failed', { error: err }));
  }

  private async handleMessage(message: Message): Promise<void> {
    const { clients, config } = this.deps;
    const decoded = decodeEnvelope(message.Body);
    if (!decoded.ok) {
      const reason = `malformed message: ${decoded.problems.join('; ')}`;
      if (decoded.taskId) await this.store!.failQueued(decoded.taskId, reason);
      await this.toDeadLetter(message, reason);
      return;
    }
    const taskId = decoded.value.task_id;
    const outcome = await this.store!.claim(taskId, this.identity!.instanceId);
    const log = this.log.child({ task_id: taskId });
    switch (outcome.kind) {
      case 'claimed': {
        log.info(outcome.takeover ? 'took over a task whose lease expired' : 'claimed task', { attempt: outcome.lease.attempt, receive_count: message.Attributes?.ApproximateReceiveCount });
        const run = this.newRun(outcome.lease, outcome.record, message.ReceiptHandle);
        const result = await run.execute();
        this.emit('task-ended', result);
        return;
      }
      case 'terminal':
      case 'ended':
        log.info('stale message for a finished task: deleting it', { status: outcome.kind === 'terminal' ? outcome.record.status : outcome.status });
        await clients.sqs.send(new DeleteMessageCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.ReceiptHandle }));
        return;
      case 'leased': {
        // Someone holds a live lease: keep the message hidden until that lease could expire, so
        // a dead owner's task comes back to us (or another instance) for a takeover.
        const left = Math.ceil(((outcome.record.lease_expires_at ?? 0) - Date.now()) / 1000) + 5;
        const visibility = Math.min(Math.max(left, 5), SQS_MAX_TOTAL_VISIBILITY_SECONDS);
        log.info('task is leased by another attempt: leaving the message hidden', { owner: outcome.record.instance_id, attempt: outcome.record.attempt, visibility_s: visibility });
        await clients.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: visibility })).catch(() => undefined);
        return;
      }
      case 'missing':
        await this.toDeadLetter(message, `no task record for ${taskId}`);
        return;
      case 'invalid-record':
        await this.toDeadLetter(message, `task record for ${taskId} is invalid: ${outcome.problems.join('; ')}`);
        return;
      case 'contended':
        log.info('task record kept changing during the claim; leaving the message for a later receive');
        return;
    }
  }

  /** Dead-letter queue first (with the reason as an attribute), then delete: nothing is lost. */
  private async toDeadLetter(message: Message, reason: string): Promise<void> {
    const { clients, config } = this.deps;
    const shortReason = reason.slice(0, 1024);
    this.log.warn('rejecting message to the dead-letter queue', { message_id: message.MessageId, reason: shortReason });
    await clients.sqs.send(new SendMessageCommand({
      QueueUrl: config.dlqUrl,
      MessageBody: message.Body && message.Body.length > 0 ? message.Body : '(empty body)',
      MessageAttributes: { [DLQ_REASON_ATTRIBUTE]: { DataType: 'String', StringValue: shortReason } },
    }));
    await clients.sqs.send(new DeleteMessageCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.ReceiptHandle }));
    this.emit('message-rejected', shortReason);
  }

  private async cancelLocal(taskId: string): Promise<ControlResponse> {
    const run = this.runs.get(taskId);
    if (!run) return { ok: true, found: false, message: `task ${taskId} is not running on this instance` };
    const recorded = await run.cancelFromSocket();
    return recorded ? { ok: true, found: true, message: `cancelling ${taskId}: SIGTERM, then SIGKILL after ${this.deps.config.timings.cancelGraceSeconds} s` } : { ok: false, error: `task ${taskId} could not be marked CANCEL_REQUESTED (it ended or moved)` };
  }

  private onInterruption(i: Interruption): void {
    this.interruption ??= i;
    this.emit('interrupted', i);
    if (i.kind === 'spot') {
      this.log.warn('spot interruption notice: releasing running tasks now', { action: i.action, time: i.time, running: [...this.runs.keys()] });
      void this.drain({ abort: true, reason: `spot interruption notice (${i.action} at ${i.time})` });
      return;
    }
    this.interruption = i;
    this.onTerminating();
  }

  /**
   * The group is terminating this instance and its termination hook waits for us: drain within
   * the budget while sending RecordLifecycleActionHeartbeat, release what is left, then
   * CompleteLifecycleAction (CONTINUE; ABANDON when a task could not be released, which keeps
   * the instance for inspection where the group retains abandoned instances). Then stop.
   */
  private onTerminating(): void {
    if (this.hookDone) return;
    const { config, clients } = this.deps;
    const target: HookTarget | undefined = config.asgName
      ? { autoscaling: clients.autoscaling, asgName: config.asgName, hookName: config.lifecycleHookName, instanceId: this.identity!.instanceId, log: this.log }
      : undefined;
    this.log.warn('termination lifecycle hook: draining', { hook: config.lifecycleHookName, budget_s: config.drainBudgetSeconds, running: [...this.runs.keys()] });
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
      else this.log.warn('no asgName in the config: the lifecycle action cannot be completed; the hook times out on its own');
    })();
    void this.hookDone.then(() => this.stop());
  }

  /**
   * Idle self-termination. Ticks every min(5 s, idle period / 4) (cheap: in-memory fields, no
   * jitter needed); acts once no task ran for idleBeforeTerminateSeconds plus a per-process
   * 0–10 % jitter, so instances that went idle together do not read the group's size at the
   * same moment. At MinSize (or on AWS's refusal) the instance stays and checks again after
   * another idle period.
   */
  private async idleLoop(): Promise<void> {
    const { config } = this.deps;
    const idleMs = config.timings.idleBeforeTerminateSeconds * 1000 * (1 + Math.random() * 0.1);
    if (!config.asgName) {
      this.idleState = 'no asgName in the config: idle self-termination is off';
      return;
    }
    const tick = Math.min(5000, idleMs / 4);
    while (this.receiving) {
      await sleep(tick, this.loopsAbort.signal);
      if (!this.receiving) return;
      if (this.runs.size || this.handling || Date.now() - this.lastBusyAt < idleMs) continue;
      await this.idleCheck(config.asgName);
    }
  }

  /** Stop polling, make sure nothing was received meanwhile, then ask to be terminated. */
  private async idleCheck(asgName: string): Promise<void> {
    const { config, clients } = this.deps;
    const receivedBefore = this.receivedCount;
    this.pauseReceiving();
    this.idleState = 'checking: receiving paused';
    try {
      // The long polls in flight return within longPollSeconds; a message they bring is handled.
      const deadline = Date.now() + (config.timings.longPollSeconds + 15) * 1000;
      while (this.receiving && (this.receivesInFlight || this.handling) && Date.now() < deadline) await sleep(100);
      if (!this.receiving) return;
      if (this.receivesInFlight || this.handling || this.runs.size || this.receivedCount !== receivedBefore) {
        this.idleState = 'work arrived during the idle check';
        this.log.info('idle check: work arrived meanwhile; staying');
        this.emit('idle-check', { terminated: false, reason: 'work arrived meanwhile' });
        return;
      }
      const outcome = await terminateIfAboveMin(clients.autoscaling, asgName, this.identity!.instanceId);
      this.emit('idle-check', outcome);
      if (!outcome.terminated) {
        this.idleState = `staying: ${outcome.reason}`;
        this.log.info('idle: staying and polling again', { reason: outcome.reason, idle_s: config.timings.idleBeforeTerminateSeconds });
        return;
      }
      this.selfTerminated = true;
      this.idleState = 'self-terminating: waiting for the termination lifecycle hook or shutdown';
      this.log.info('idle: asked Auto Scaling to terminate this instance (desired capacity decremented)', { activity: outcome.activity });
      void this.drain({ reason: 'idle self-termination' });
    } finally {
      if (!this.selfTerminated) {
        this.lastBusyAt = Date.now();
        this.resumeReceiving();
      }
    }
  }

  private pauseReceiving(): void {
    if (this.pause) return;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.pause = { promise, open };
  }

  private resumeReceiving(): void {
    const p = this.pause;
    this.pause = undefined;
    p?.open();
  }

  /** Why no message is being received right now, or null when the slots are polling. */
  private notClaimingReason(): string | null {
    if (this.drainState) return `draining: ${this.drainState.reason}`;
    if (!this.receiving) return this.finalizing ? 'stopped' : 'booting';
    if (this.diskProblem) return this.diskProblem;
    if (this.engineProblem) return this.engineProblem;
    if (this.pause) return 'idle check in progress: receiving paused';
    if (this.runs.size >= this.deps.config.slots) return 'every slot is busy';
    return null;
  }

  status(): Record<string, unknown> {
    const { config } = this.deps;
    const idleFor = this.runs.size || this.handling ? 0 : Math.round((Date.now() - this.lastBusyAt) / 1000);
    return {
      instance_id: this.identity?.instanceId,
      state: this.instance?.status ?? InstanceStatus.BOOTING,
      receiving: this.receiving,
      not_claiming: this.notClaimingReason(),
      draining: Boolean(this.drainState),
      drain: this.drainState ? { reason: this.drainState.reason, since: new Date(this.drainState.since).toISOString(), releasing: this.releasing ?? null } : null,
      interruption: this.interruption ?? null,
      slots: config.slots,
      free_slots: Math.max(0, config.slots - this.runs.size),
      idle: { idle_for_s: idleFor, terminate_after_s: config.asgName ? config.timings.idleBeforeTerminateSeconds : null, state: this.idleState },
      disk_problem: this.diskProblem ?? null,
      engine_problem: this.engineProblem ?? null,
      credentials: this.credentials ? { endpoint: this.credentials.endpoint, active_tasks: this.credentials.activeTasks } : null,
      last_prune: this.pruner?.last ? { ...this.pruner.last, at: new Date(this.pruner.last.at).toISOString() } : null,
      imds_watch: this.watcher?.status ?? null,
      tasks: [...this.runs.values()].map((r) => ({ task_id: r.taskId, attempt: r.lease.attempt, phase: r.phase, stopping: r.stopping ?? null, heartbeat_age_s: Math.round(r.heartbeatAgeMs / 1000) })),
    };
  }

  private statusResponse(): ControlResponse {
    return { ok: true, ...this.status() };
  }

  /**
   * Stop receiving at once; running tasks get the drain budget (`drainBudgetSeconds`) to
   * finish, then are released (INTERRUPTED, message visible again at once). `abort`: release
   * at once (spot notice, a second signal); it also escalates a drain already under way.
   * Resolves when everything is drained, a termination hook in progress is completed, and the
   * servers are closed; then `stopped` is emitted.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    await this.drain({ ...options, reason: options.reason ?? (options.abort ? 'instance interrupted' : 'instance draining') });
    await this.hookDone;
    await this.finalize();
  }

  private drain(o: StopOptions & { reason: string }): Promise<void> {
    if (o.abort) this.releaseAll(o.reason);
    if (this.drainState) return this.drainState.done;
    this.receiving = false;
    this.resumeReceiving();
    this.loopsAbort.abort();
    const budgetMs = (o.budgetSeconds ?? this.deps.config.drainBudgetSeconds) * 1000;
    const done = (async () => {
      this.log.info('draining', { reason: o.reason, running: [...this.runs.keys()], abort: Boolean(o.abort), budget_s: budgetMs / 1000 });
      await this.instance?.set(InstanceStatus.DRAINING, [...this.runs.keys()], o.reason);
      // Slot loops end once their task is done and their long poll returned (a message that
      // poll brings is handed back at once); re-adopted containers are supervised apart.
      const allDone = Promise.all([...this.slotLoops, ...this.adopted]);
      if (!this.releasing) {
        const wake = new AbortController();
        this.wakeDrain = () => wake.abort();
        const finished = await Promise.race([allDone.then(() => true), sleep(budgetMs, wake.signal).then(() => false)]);
        wake.abort();
        if (!finished) this.releaseAll(`${o.reason}: drain budget of ${budgetMs / 1000} s spent`);
      }
      await allDone;
      await this.instance?.set(InstanceStatus.DRAINING, [], o.reason);
      this.log.info('drained', { reason: o.reason, released: Boolean(this.releasing), release_failures: this.releaseFailures });
    })();
    this.drainState = { reason: o.reason, since: Date.now(), done };
    return done;
  }

  /** Release every running task now, and any task claimed from now on. */
  private releaseAll(reason: string): void {
    if (this.releasing) return;
    this.releasing = reason;
    this.log.info('releasing running tasks', { reason, running: [...this.runs.keys()] });
    for (const run of this.runs.values()) run.release(reason);
    this.wakeDrain?.();
  }

  private finalize(): Promise<void> {
    this.finalizing ??= (async () => {
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      await Promise.all([this.watcher?.stop(), this.pruner?.stop(), this.idleLoopDone]);
      await this.closeServers();
      await this.instance?.flush();
      this.log.info('fleetd stopped', { reason: this.drainState?.reason });
      this.emit('stopped');
    })();
    return this.finalizing;
  }

  private async closeServers(): Promise<void> {
    const control = this.control;
    await new Promise<void>((resolve) => (control ? control.close(() => resolve()) : resolve()));
    await this.credentials?.close();
  }
}

/** The spec's repo (an STS session tag), when the record carries one. */
function repoOf(record: TaskRecord): string | undefined {
  return typeof record.spec.repo === 'string' ? record.spec.repo : undefined;
}
