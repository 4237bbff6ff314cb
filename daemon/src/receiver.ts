/**
 * Receiving: one receive loop for all the slots (README.md "Where things are": receive). Each
 * long poll asks for as many messages as there are free slots (SQS's cap: 10), and each message
 * received takes a free slot at once: it is claimed in DynamoDB (store `TaskStore.claim`) and
 * its task run (task-run.ts) until its container exits; the slot is free again there, while the
 * outcome is recorded (at most `slots` outcomes at once: `freeSlots`). So fleetd never runs more
 * containers than slots, nor holds more than twice as many messages. An idle instance makes one
 * long poll per 20 s whatever its slot count (docs/benchmarks.md "Idle API calls"). A message is
 * then deleted (stale), dead-lettered with its reason (malformed, no or an invalid record), or
 * left hidden until a live lease could expire (README.md "The guarantees").
 */
import { abcaTaskIdOf, type AbcaHeartbeatMirror } from './abca-mirror';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { FleetdConfig } from './config';
import { DLQ_REASON_ATTRIBUTE, SQS_MAX_TOTAL_VISIBILITY_SECONDS, decodeEnvelope, type TaskRecord } from './contract';
import { isParked, isReceiving, type FleetdStateHolder } from './fleetd-state';
import type { Lease, TaskStore } from './store';
import type { Logger } from './log';
import type { ReceiveGateChecks } from './receive-gates';
import { backoffDelayMs, sleep } from './retry';
import type { TaskRun, TaskRunResult } from './task-run';
import type { ClaimTiming } from './dispatch-timing';

/** SQS returns at most this many messages per ReceiveMessage. */
export const SQS_MAX_MESSAGES_PER_RECEIVE = 10;

/** What the idle check reads: nothing in flight, nothing handled, nothing received meanwhile. */
export class ReceiveActivity {
  /** Long polls waiting for SQS's answer (0 or 1: there is one receive loop). */
  inFlight = 0;
  /** Messages received and not yet handled to the end (each holds a slot). */
  handling = 0;
  /** Messages received since start. */
  received = 0;
  /** The last time a task ended, a message was handled, or an idle check gave up. */
  lastBusyAt = Date.now();

  markBusy(): void {
    this.lastBusyAt = Date.now();
  }
}

/** What a receive needs from the task run it starts: the run, its container's exit (the slot frees there), then its background tail. */
export type ReceivedRun = Pick<TaskRun, 'execute' | 'exited' | 'tail'>;

export interface ReceiverDeps {
  readonly sqs: SQSClient;
  readonly config: Pick<FleetdConfig, 'queueUrl' | 'dlqUrl' | 'slots' | 'timings'>;
  readonly store: Pick<TaskStore, 'claim'>;
  readonly instanceId: string;
  readonly state: FleetdStateHolder;
  readonly gates: Pick<ReceiveGateChecks, 'checkDisk' | 'engineAnswers'>;
  readonly activity: ReceiveActivity;
  readonly log: Logger;
  readonly newRun: (lease: Lease, record: TaskRecord, receiptHandle: string | undefined, claim?: ClaimTiming) => ReceivedRun;
  readonly taskEnded: (result: TaskRunResult) => void;
  readonly messageRejected: (reason: string) => void;
  /** A message could not be handled (logged; counted as a failed release while releasing). */
  readonly taskError: (msg: string, extra: Record<string, unknown>) => void;
  /** ABCA's record hears of a task this claim ended (attempts exhausted, an orphaned cancel). */
  readonly abcaMirror?: AbcaHeartbeatMirror;
  /** Begins the seal's check on the record being claimed, beside the claim's write (seal.ts). */
  readonly verifySealEarly?: (record: TaskRecord) => void;
  /** The end of a run of this task still in this fleetd (`TaskRun.ended`), or undefined when there is none. */
  readonly runEnded: (taskId: string) => Promise<void> | undefined;
}

export class Receiver {
  /** Slots holding a message: from its receive to its container's exit (or the end of its handling). */
  private holding = 0;
  /** Tasks whose container exited and whose outcome is still being recorded (TaskRun `exited` → `execute` resolved). */
  private finishing = 0;
  /** Wakes the loop waiting for a free slot. */
  private slotFreed?: () => void;
  /** Messages being handled (each holds a slot). */
  private readonly handlers = new Set<Promise<void>>();
  /** Background tails of finished tasks (message deletion, container removal; task-run.ts). */
  private readonly tails = new Set<Promise<void>>();

  constructor(private readonly d: ReceiverDeps) {}

  /**
   * Starts the receive loop. Resolves once receiving has ended, every message in hand has been
   * handled to the end, and every background tail has finished (a drain waits for this).
   */
  async start(): Promise<void> {
    await this.receiveLoop();
    while (this.handlers.size > 0 || this.tails.size > 0) await Promise.all([...this.handlers, ...this.tails]);
  }

  /**
   * Slots not holding a message. A slot frees when its container exits: recording the outcome
   * (the log's last lines, the artifacts, the terminal write) goes on beside the next task, as
   * the message's deletion and the container's removal do after it. At most `slots` outcomes are
   * recorded at once, so writes that stall stop the receiving rather than pile tasks up.
   */
  get freeSlots(): number {
    const { slots } = this.d.config;
    return Math.max(0, Math.min(slots - this.holding, 2 * slots - this.holding - this.finishing));
  }

  private get receiving(): boolean {
    return isReceiving(this.d.state.current);
  }

  /**
   * The one receive loop. Intervals:
   * - long poll: WaitTimeSeconds = longPollSeconds (20 s), MaxNumberOfMessages = free slots (at
   *   most 10), no jitter (SQS holds the request; an empty answer is polled again at once);
   * - every slot busy: no poll; the loop waits until a slot frees (or receiving ends);
   * - after a receive error: backoff with full jitter (0.5 s doubling, 30 s cap);
   * - disk short: re-check every 5 s, no jitter (a local statfs);
   * - engine not answering: re-check every 2 s, no jitter (a local socket);
   * - paused (idle check) or retiring (a rollout): parked until the state changes.
   */
  private async receiveLoop(): Promise<void> {
    const { sqs, config, state, gates, activity } = this.d;
    let errors = 0;
    while (this.receiving) {
      if (isParked(state.current)) {
        await state.unpaused();
        continue;
      }
      if (gates.checkDisk()) {
        await sleep(5000, state.receiveEnded);
        continue;
      }
      if (!(await gates.engineAnswers())) {
        await sleep(2000, state.receiveEnded);
        continue;
      }
      if (this.freeSlots <= 0) {
        await this.untilSlotFreed(state.receiveEnded);
        continue;
      }
      // Free slots only grow while the poll is out (only this loop takes them), so every
      // message it brings has a slot.
      const asked = Math.min(this.freeSlots, SQS_MAX_MESSAGES_PER_RECEIVE);
      let messages: Message[];
      activity.inFlight++;
      try {
        const res = await sqs.send(new ReceiveMessageCommand({
          QueueUrl: config.queueUrl,
          MaxNumberOfMessages: asked,
          WaitTimeSeconds: config.timings.longPollSeconds,
          VisibilityTimeout: config.timings.leaseSeconds,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }));
        messages = res.Messages ?? [];
        errors = 0;
      } catch (err) {
        const delay = backoffDelayMs(errors++, 500, 30_000);
        this.d.log.warn('receive failed', { error: err, retry_in_ms: delay });
        await sleep(delay, state.receiveEnded);
        continue;
      } finally {
        activity.inFlight--;
      }
      // No await between the end of the receive and the last message's `handling++`
      // (dispatch): the idle check never sees a received message that is neither in flight
      // nor handled.
      activity.received += messages.length;
      const handBack: Message[] = [];
      for (const message of messages) {
        // Received while a drain or a retirement began (or, defensively, more than the free
        // slots): hand it straight back rather than strand it for a lease.
        if (!this.receiving || state.current.kind === 'retiring' || this.freeSlots <= 0) handBack.push(message);
        else this.dispatch(message);
      }
      await Promise.all(handBack.map((m) => this.handBack(m)));
    }
  }

  /** Makes a message visible again at once (best effort: else it reappears after its visibility). */
  private async handBack(message: Message): Promise<void> {
    const { sqs, config } = this.d;
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 })).catch(() => undefined);
  }

  /** The message takes a free slot now (synchronously) and is handled in the background. */
  private dispatch(message: Message): void {
    const { activity } = this.d;
    let stage: 'holding' | 'finishing' | 'done' = 'holding';
    const containerExited = () => {
      if (stage !== 'holding') return;
      stage = 'finishing';
      this.holding--;
      this.finishing++;
      this.slotFreed?.();
    };
    this.holding++;
    activity.handling++;
    const handled = this.handleMessage(message, containerExited)
      .catch((err: unknown) => this.d.taskError('handling a message failed; it will be received again', { error: err, message_id: message.MessageId }))
      .finally(() => {
        if (stage === 'holding') this.holding--;
        else this.finishing--;
        stage = 'done';
        activity.handling--;
        activity.markBusy();
        this.handlers.delete(handled);
        this.slotFreed?.();
      });
    this.handlers.add(handled);
  }

  /** Resolves when a slot frees or the signal aborts. */
  private untilSlotFreed(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.slotFreed = undefined;
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.slotFreed = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** A finished task's tail (task-run.ts `tail`) runs on; the drain waits for it. */
  private track(tail: Promise<void>): void {
    const tracked: Promise<void> = tail
      .catch((err: unknown) => this.d.log.warn('cleaning up after a task failed', { error: err }))
      .finally(() => this.tails.delete(tracked));
    this.tails.add(tracked);
  }

  /** Decode, claim, and dispatch on the claim's outcome. `containerExited` frees the slot early. */
  private async handleMessage(message: Message, containerExited: () => void): Promise<void> {
    const { sqs, config, store } = this.d;
    const decoded = decodeEnvelope(message.Body);
    if (!decoded.ok) {
      // A malformed message never changes a record, even one it names: anyone who can send to
      // the queue could otherwise fail another submitter's task. It only goes to the DLQ.
      const reason = `malformed message: ${decoded.problems.join('; ')}`;
      await this.toDeadLetter(message, reason);
      return;
    }
    const taskId = decoded.value.task_id;
    const claimStartedAt = Date.now();
    const outcome = await store.claim(taskId, this.d.instanceId, this.d.verifySealEarly);
    const log = this.d.log.child({ task_id: taskId });
    switch (outcome.kind) {
      case 'claimed': {
        log.info(outcome.takeover ? 'took over a task whose lease expired' : 'claimed task', { attempt: outcome.lease.attempt, receive_count: message.Attributes?.ApproximateReceiveCount });
        // A run of this task still here can only be one that handed it back or lost its lease
        // (a live one would have made the claim answer `leased`), still writing or cleaning up
        // after its container exited and freed the slot. Its files, lease file and credentials
        // are keyed by task id: our attempt starts once it ended (within its write retries).
        await this.d.runEnded(taskId);
        const run = this.d.newRun(outcome.lease, outcome.record, message.ReceiptHandle, { startedAt: claimStartedAt, endedAt: Date.now() });
        void run.exited.then(containerExited);
        const result = await run.execute();
        // The run ended (its slot freed at its container's exit); deleting the message and
        // removing the container go on behind it.
        this.track(run.tail);
        this.d.taskEnded(result);
        return;
      }
      case 'terminal':
      case 'ended':
        if (outcome.kind === 'ended' && abcaTaskIdOf(outcome.record.spec)) await this.d.abcaMirror?.ended(abcaTaskIdOf(outcome.record.spec)!, { status: outcome.status, reason: outcome.reason });
        log.info('stale message for a finished task: deleting it', { status: outcome.kind === 'terminal' ? outcome.record.status : outcome.status });
        await sqs.send(new DeleteMessageCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.ReceiptHandle }));
        return;
      case 'leased': {
        // Someone holds a live lease: keep the message hidden until that lease could expire, so
        // a dead owner's task comes back to us (or another instance) for a takeover.
        const left = Math.ceil(((outcome.record.lease_expires_at ?? 0) - Date.now()) / 1000) + 5;
        const visibility = Math.min(Math.max(left, 5), SQS_MAX_TOTAL_VISIBILITY_SECONDS);
        log.info('task is leased by another attempt: leaving the message hidden', { owner: outcome.record.instance_id, attempt: outcome.record.attempt, visibility_s: visibility });
        await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: visibility })).catch(() => undefined);
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
    const { sqs, config } = this.d;
    const shortReason = reason.slice(0, 1024);
    this.d.log.warn('rejecting message to the dead-letter queue', { message_id: message.MessageId, reason: shortReason });
    await sqs.send(new SendMessageCommand({
      QueueUrl: config.dlqUrl,
      MessageBody: message.Body && message.Body.length > 0 ? message.Body : '(empty body)',
      MessageAttributes: { [DLQ_REASON_ATTRIBUTE]: { DataType: 'String', StringValue: shortReason } },
    }));
    await sqs.send(new DeleteMessageCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.ReceiptHandle }));
    this.d.messageRejected(shortReason);
  }
}
