/**
 * Receiving: one long poll per free slot (README.md "Where things are": receive). Each slot
 * receives at most one message, claims its task in DynamoDB (lease.ts `TaskStore.claim`) and
 * runs it to the end (task-run.ts) before it polls again, so fleetd never receives more than it
 * can run. A message is then deleted (stale), dead-lettered with its reason (malformed, no or
 * an invalid record), or left hidden until a live lease could expire (README.md "The guarantees").
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

/** What the idle check reads: nothing in flight, nothing handled, nothing received meanwhile. */
export class ReceiveActivity {
  /** Long polls waiting for SQS's answer. */
  inFlight = 0;
  /** Messages received and not yet handled to the end. */
  handling = 0;
  /** Messages received since start. */
  received = 0;
  /** The last time a task ended, a message was handled, or an idle check gave up. */
  lastBusyAt = Date.now();

  markBusy(): void {
    this.lastBusyAt = Date.now();
  }
}

export interface ReceiverDeps {
  readonly sqs: SQSClient;
  readonly config: FleetdConfig;
  readonly store: TaskStore;
  readonly instanceId: string;
  readonly state: FleetdStateHolder;
  readonly gates: ReceiveGateChecks;
  readonly activity: ReceiveActivity;
  readonly log: Logger;
  readonly newRun: (lease: Lease, record: TaskRecord, receiptHandle: string | undefined, claim?: ClaimTiming) => TaskRun;
  readonly taskEnded: (result: TaskRunResult) => void;
  readonly messageRejected: (reason: string) => void;
  /** A message could not be handled (logged; counted as a failed release while releasing). */
  readonly taskError: (msg: string, extra: Record<string, unknown>) => void;
  /** ABCA's record hears of a task this claim ended (attempts exhausted, an orphaned cancel). */
  readonly abcaMirror?: AbcaHeartbeatMirror;
}

export class Receiver {
  constructor(private readonly d: ReceiverDeps) {}

  /** One loop per slot; each resolves once receiving has ended and its task is done. */
  start(slots: number): Promise<void>[] {
    return Array.from({ length: slots }, (_, i) => this.slotLoop(i));
  }

  private get receiving(): boolean {
    return isReceiving(this.d.state.current);
  }

  /**
   * One slot. Intervals:
   * - long poll: WaitTimeSeconds = longPollSeconds (20 s), at most one message, no jitter (SQS
   *   holds the request; an empty answer is polled again at once);
   * - after a receive error: backoff with full jitter (0.5 s doubling, 30 s cap);
   * - disk short: re-check every 5 s, no jitter (a local statfs);
   * - engine not answering: re-check every 2 s, no jitter (a local socket);
   * - paused (idle check) or retiring (a rollout): parked until the state changes.
   */
  private async slotLoop(slot: number): Promise<void> {
    const { sqs, config, state, gates, activity } = this.d;
    let errors = 0;
    while (this.receiving) {
      if (isParked(state.current)) {
        await state.unpaused();
        continue;
      }
      if (gates.checkDisk(slot)) {
        await sleep(5000, state.receiveEnded);
        continue;
      }
      if (!(await gates.engineAnswers())) {
        await sleep(2000, state.receiveEnded);
        continue;
      }
      let messages: Message[];
      activity.inFlight++;
      try {
        const res = await sqs.send(new ReceiveMessageCommand({
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
        this.d.log.warn('receive failed', { slot, error: err, retry_in_ms: delay });
        await sleep(delay);
        continue;
      } finally {
        activity.inFlight--;
      }
      // No await between the end of the receive and `handling++`: the idle check never sees
      // a received message that is neither in flight nor handled.
      activity.received += messages.length;
      for (const message of messages) {
        if (!this.receiving || state.current.kind === 'retiring') {
          // Received while a drain or a retirement began: hand it straight back rather than strand it for a lease.
          await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 })).catch(() => undefined);
          continue;
        }
        activity.handling++;
        try {
          await this.handleMessage(message);
        } catch (err) {
          this.d.taskError('handling a message failed; it will be received again', { slot, error: err, message_id: message.MessageId });
        } finally {
          activity.handling--;
          activity.markBusy();
        }
      }
    }
  }

  /** Decode, claim, and dispatch on the claim's outcome. */
  private async handleMessage(message: Message): Promise<void> {
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
    const outcome = await store.claim(taskId, this.d.instanceId);
    const log = this.d.log.child({ task_id: taskId });
    switch (outcome.kind) {
      case 'claimed': {
        log.info(outcome.takeover ? 'took over a task whose lease expired' : 'claimed task', { attempt: outcome.lease.attempt, receive_count: message.Attributes?.ApproximateReceiveCount });
        const run = this.d.newRun(outcome.lease, outcome.record, message.ReceiptHandle, { startedAt: claimStartedAt, endedAt: Date.now() });
        this.d.taskEnded(await run.execute());
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
