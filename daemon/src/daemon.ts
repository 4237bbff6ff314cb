/**
 * fleetd: the instance daemon. Boot preflight, then one receive loop per slot; each received
 * message is claimed in DynamoDB (lease.ts) and run to the end (task-run.ts) in that slot, so
 * the daemon never receives more than it can run. Lifecycle as events plus stop({ abort }).
 */
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { SetInstanceHealthCommand } from '@aws-sdk/client-auto-scaling';
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
import type { AwsClients } from './aws';
import { backoffDelayMs, sleep } from './backoff';
import type { FleetdConfig } from './config';
import { CONTAINER_LABELS, DLQ_REASON_ATTRIBUTE, InstanceStatus, SQS_MAX_TOTAL_VISIBILITY_SECONDS, TaskStatus, decodeEnvelope, type TaskRecord } from './contract';
import { startControlServer, type ControlResponse } from './control';
import { dockerAnswers } from './docker';
import { diskShortage } from './disk';
import type { ImdsClient, InstanceIdentity } from './imds';
import { InstanceState } from './instance';
import { TaskStore, type Lease } from './lease';
import type { Logger } from './log';
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
  stopped: [];
}

export class Fleetd extends EventEmitter<FleetdEvents> {
  private identity?: InstanceIdentity;
  private store?: TaskStore;
  private runner?: ContainerRunner;
  private instance?: InstanceState;
  private control?: net.Server;
  private readonly runs = new Map<string, TaskRun>();
  private receiving = false;
  private draining = false;
  private slotLoops: Promise<void>[] = [];
  private heartbeatTimer?: NodeJS.Timeout;
  private diskProblem?: string;
  private readonly log: Logger;

  constructor(private readonly deps: FleetdDeps) {
    super();
    this.log = deps.log;
  }

  get instanceId(): string | undefined {
    return this.identity?.instanceId;
  }

  /** Preflight, recovery, then the receive loops. Throws BootError after reporting it. */
  async start(): Promise<void> {
    const { config, clients, docker, imds } = this.deps;
    try {
      this.identity = await imds.identity();
    } catch (err) {
      throw new BootError(`preflight: IMDS did not answer (${(err as Error).message})`, { cause: err });
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
      await this.reportBootFailure(problem);
      throw new BootError(`preflight: ${problem}`);
    }
    this.store = new TaskStore({ ddb: clients.ddb, tasksTable: config.tasksTable, eventsTable: config.eventsTable, timings: config.timings });
    this.runner = new ContainerRunner({ docker, workDir: config.workDir, instanceId: id.instanceId, allowedRegistries: config.allowedRegistries, ecr: clients.ecr, log: this.log });
    await this.recoverContainers();
    this.control = await startControlServer(config.socketPath, { cancel: (t) => this.cancelLocal(t), status: () => this.statusResponse() });
    await this.instance.set(InstanceStatus.IDLE, []);
    this.receiving = true;
    // Instance heartbeat: every heartbeatSeconds, the instance row (fleet instances, reconciler).
    this.heartbeatTimer = setInterval(() => {
      void this.instance?.heartbeat().catch((err) => this.log.warn('instance heartbeat failed', { error: err }));
    }, config.timings.heartbeatSeconds * 1000);
    this.heartbeatTimer.unref();
    this.slotLoops = Array.from({ length: config.slots }, (_, i) => this.slotLoop(i));
    this.log.info('fleetd ready: polling for tasks', { instance_id: id.instanceId, queue: config.queueUrl });
    this.emit('ready', id);
  }

  /** Returns the first problem that makes this instance unable to run a task, if any. */
  private async preflight(): Promise<string | undefined> {
    const { config, clients, docker } = this.deps;
    if (!(await dockerAnswers(docker, 5000))) return `the Docker engine does not answer (DOCKER_HOST=${process.env.DOCKER_HOST ?? 'default socket'})`;
    try {
      await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: config.queueUrl, AttributeNames: ['QueueArn'] }));
      await clients.ddb.send(new DescribeTableCommand({ TableName: config.tasksTable }));
    } catch (err) {
      return `AWS is not reachable or the fleet's resources are missing: ${(err as Error).name}: ${(err as Error).message}`;
    }
    const disk = diskShortage([config.workDir], config.minFreeDiskBytes, config.minFreeInodes);
    if (disk) return disk;
    return undefined;
  }

  /** Unhealthy tag, a boot_failed row with the reason, and the group told to replace us. */
  private async reportBootFailure(reason: string): Promise<void> {
    this.log.error('boot preflight failed; reporting the instance unhealthy', { reason });
    await this.instance?.set(InstanceStatus.UNHEALTHY, [], reason);
    if (this.deps.config.asgName && this.identity) {
      await this.deps.clients.autoscaling
        .send(new SetInstanceHealthCommand({ InstanceId: this.identity.instanceId, HealthStatus: 'Unhealthy', ShouldRespectGracePeriod: false }))
        .catch((err) => this.log.error('SetInstanceHealth failed', { error: err }));
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
      const { record } = taskId ? await this.store!.get(taskId) : {};
      const ours =
        record &&
        record.instance_id === this.identity!.instanceId &&
        record.attempt === attempt &&
        [TaskStatus.RUNNING, TaskStatus.CANCEL_REQUESTED].includes(record.status as 'RUNNING') &&
        (record.lease_expires_at ?? 0) > Date.now();
      if (ours) {
        this.log.info('re-adopting a container whose lease we still hold', { task_id: taskId, attempt, container_id: info.Id, state: info.State });
        const run = this.newRun({ taskId, instanceId: this.identity!.instanceId, attempt }, record, undefined);
        void run.adopt(container).then((r: TaskRunResult) => this.emit('task-ended', r), (err: Error) => this.log.error('supervising a re-adopted container failed', { task_id: taskId, error: err }));
      } else {
        this.log.warn('removing a container from an attempt we no longer own', { task_id: taskId, attempt, container_id: info.Id, record_status: record?.status });
        await container.remove({ force: true }).catch(() => undefined);
        if (taskId) this.runner!.removeFiles(taskId);
      }
    }
  }

  private newRun(lease: Lease, record: TaskRecord, receiptHandle: string | undefined): TaskRun {
    const { clients, config } = this.deps;
    const run = new TaskRun(
      {
        store: this.store!,
        runner: this.runner!,
        sqs: clients.sqs,
        s3: clients.s3,
        secrets: clients.secrets,
        config,
        log: this.log,
        onTaskEnd: (l) => {
          this.runs.delete(l.taskId);
          void this.instance?.set(this.runs.size ? InstanceStatus.BUSY : this.draining ? InstanceStatus.DRAINING : InstanceStatus.IDLE, [...this.runs.keys()]);
        },
      },
      lease,
      record,
      receiptHandle,
    );
    this.runs.set(lease.taskId, run);
    void this.instance?.set(this.draining ? InstanceStatus.DRAINING : InstanceStatus.BUSY, [...this.runs.keys()]);
    this.emit('task-started', lease.taskId, lease.attempt);
    return run;
  }

  /**
   * One slot: long poll (WaitTimeSeconds = longPollSeconds, 20 s), at most one message, run
   * it to the end, repeat. After an error: backoff with full jitter (0.5 s doubling, 30 s cap).
   * While the instance cannot take work (draining, low disk): re-check every 5 s.
   */
  private async slotLoop(slot: number): Promise<void> {
    const { clients, config } = this.deps;
    let errors = 0;
    while (this.receiving) {
      this.diskProblem = diskShortage([config.workDir], config.minFreeDiskBytes, config.minFreeInodes);
      if (this.diskProblem) {
        this.log.warn('not claiming: disk short', { slot, problem: this.diskProblem });
        await sleep(5000);
        continue;
      }
      let messages: Message[];
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
      }
      for (const message of messages) {
        if (!this.receiving) {
          // Received while a drain began: hand it straight back rather than strand it for a lease.
          await clients.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 })).catch(() => undefined);
          continue;
        }
        await this.handleMessage(message).catch((err) => this.log.error('handling a message failed; it will be received again', { slot, error: err, message_id: message.MessageId }));
      }
    }
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

  status(): Record<string, unknown> {
    return {
      instance_id: this.identity?.instanceId,
      state: this.instance?.status,
      receiving: this.receiving,
      draining: this.draining,
      slots: this.deps.config.slots,
      free_slots: Math.max(0, this.deps.config.slots - this.runs.size),
      disk_problem: this.diskProblem ?? null,
      tasks: [...this.runs.values()].map((r) => ({ task_id: r.taskId, attempt: r.lease.attempt, phase: r.phase, stopping: r.stopping ?? null, heartbeat_age_s: Math.round(r.heartbeatAgeMs / 1000) })),
    };
  }

  private statusResponse(): ControlResponse {
    return { ok: true, ...this.status() };
  }

  /**
   * Stop receiving at once; running tasks get `drainBudgetSeconds` to finish, then are released
   * (INTERRUPTED, message visible again). `abort`: release at once (spot notice).
   */
  async stop(options: { abort?: boolean; reason?: string; budgetSeconds?: number } = {}): Promise<void> {
    if (!this.receiving && this.draining) return;
    const reason = options.reason ?? (options.abort ? 'instance interrupted' : 'instance draining');
    this.receiving = false;
    this.draining = true;
    this.log.info('draining', { reason, running: [...this.runs.keys()], abort: Boolean(options.abort) });
    await this.instance?.set(InstanceStatus.DRAINING, [...this.runs.keys()]);
    const budgetMs = options.abort ? 0 : (options.budgetSeconds ?? this.deps.config.drainBudgetSeconds) * 1000;
    const allDone = () => Promise.all([...this.runs.values()].map((r) => new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (!this.runs.has(r.taskId)) {
          clearInterval(check);
          resolve();
        }
      }, 100);
    })));
    if (this.runs.size) {
      const finished = await Promise.race([allDone().then(() => true), sleep(budgetMs).then(() => false)]);
      if (!finished) {
        for (const run of this.runs.values()) run.release(`${reason}: drain budget of ${budgetMs / 1000} s spent`);
        await allDone();
      }
    }
    await Promise.all(this.slotLoops);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await new Promise<void>((resolve) => (this.control ? this.control.close(() => resolve()) : resolve()));
    await this.instance?.set(InstanceStatus.DRAINING, []);
    await this.instance?.flush();
    this.log.info('fleetd stopped');
    this.emit('stopped');
  }
}
