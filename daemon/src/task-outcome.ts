/**
 * How an attempt ends, as writes: the one fenced terminal write (bounded retries; a refused
 * write ends FAILED in a minimal second write; an unreachable one releases), the release, and
 * the task's SQS message (deleted after the terminal write, made visible again after a
 * release, kept hidden while the lease is renewed). docs/architecture.md, "One retry policy".
 *
 * After a terminal write, the message's deletion (and ABCA's record) are begun, not awaited:
 * `afterWrite`, which the run's background tail waits for (task-run.ts), so the run ends at the
 * write (its slot freed already when its container exited). A crash before the deletion is
 * safe: the message comes back after its visibility timeout, its claim finds the terminal
 * record, and the message is deleted then.
 */
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { FleetEnd } from './abca-mirror';
import { TaskStatus } from './contract';
import type { Logger } from './log';
import { isTransient } from './retry';
import { StoreError, type Lease, type TaskStore, type TerminalFields } from './store';

export interface TaskRunResult {
  readonly taskId: string;
  /**
   * `ABANDONED`: neither the terminal write nor a release could be written (AWS unreachable for
   * every try); the slot is freed and the lease left to expire, so another instance takes the
   * task over.
   */
  readonly status: TaskStatus | 'RELEASED' | 'FENCED_OUT' | 'ABANDONED';
}

export interface TaskOutcomeOptions {
  readonly store: TaskStore;
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly log: Logger;
  readonly redact: (text: string) => string;
  readonly retry: <T>(what: string, fn: () => Promise<T>) => Promise<T>;
  /** Told how the attempt ended, after the write (the ABCA mirror: abca-mirror.ts `ended`). Must not throw. */
  readonly onEnd?: (end: FleetEnd) => Promise<unknown>;
  /** True when this task must not run again (a started at-most-once task): a release refunds no attempt. */
  readonly atMostOnce?: () => boolean;
}

export class TaskOutcome {
  /** The steps that follow a terminal write (ABCA's record, deleting the message), begun by `finish`; never rejects. */
  afterWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly o: TaskOutcomeOptions,
    private readonly lease: Lease,
    /** The message's receipt handle while we hold it (none for a re-adopted container). */
    private receiptHandle: string | undefined,
  ) {}

  private get taskId(): string {
    return this.lease.taskId;
  }

  /** Keeps the message hidden as long as the lease (on each heartbeat). */
  async extendVisibility(seconds: number): Promise<void> {
    if (!this.receiptHandle) return;
    await this.o.sqs
      .send(new ChangeMessageVisibilityCommand({ QueueUrl: this.o.queueUrl, ReceiptHandle: this.receiptHandle, VisibilityTimeout: seconds }))
      .catch((err) => this.o.log.warn('extending message visibility failed (the lease still holds the task)', { error: err }));
  }

  /** Another attempt owns the task: write nothing more. */
  fenced(why: string): TaskRunResult {
    this.o.log.warn('fenced out: another attempt owns this task; writing nothing more', { why });
    return { taskId: this.taskId, status: 'FENCED_OUT' };
  }

  /** Gives the task back for another attempt: INTERRUPTED, its message visible again at once. */
  async release(reason: string, refund = true): Promise<TaskRunResult> {
    const final = this.o.atMostOnce?.() ?? false;
    refund &&= !final;
    let outcome: Awaited<ReturnType<TaskStore['release']>>;
    try {
      outcome = await this.o.retry('release', () => this.o.store.release(this.lease, reason || 'released by instance', { refund }));
    } catch (err) {
      return this.abandon('the release could not be written', err);
    }
    this.o.log.info('task released', { outcome });
    if (outcome === 'released' && this.receiptHandle) {
      // Visible again at once: another instance may take it now.
      await this.o.sqs
        .send(new ChangeMessageVisibilityCommand({ QueueUrl: this.o.queueUrl, ReceiptHandle: this.receiptHandle, VisibilityTimeout: 0 }))
        .catch((err) => this.o.log.warn('making the message visible failed; it reappears after its visibility timeout', { error: err }));
    }
    if (outcome === 'cancelled') await this.deleteMessage();
    if (outcome !== 'fenced') await this.o.onEnd?.(outcome === 'released' ? { status: 'RELEASED', reason, final } : { status: TaskStatus.CANCELLED, reason });
    return { taskId: this.taskId, status: outcome === 'released' ? 'RELEASED' : outcome === 'cancelled' ? TaskStatus.CANCELLED : 'FENCED_OUT' };
  }

  /**
   * The one terminal write, retried on transient errors a bounded number of times
   * (RETRY_POLICIES.taskStep). When DynamoDB refuses the write itself (a ValidationException:
   * a result nested past its 32 levels, an item over 400 KB), the attempt ends FAILED in a
   * second, minimal write whose reason says what was refused. When AWS cannot be reached for
   * every try, that is the instance's fault: the task is released for another attempt, or,
   * failing that too, abandoned to its lease. Either way the slot is freed.
   */
  async finish(status: TaskStatus, fields: TerminalFields): Promise<TaskRunResult> {
    let ok: boolean;
    try {
      ok = await this.o.retry('terminal write', () => this.o.store.finish(this.lease, status, fields));
    } catch (err) {
      if (isTransient(err)) {
        this.o.log.error('the terminal write could not reach DynamoDB; releasing the task instead', { status, error: err });
        return this.release(`the terminal write (${status}) could not be made from this instance: ${(err as Error).message}`, true);
      }
      const refused = err instanceof StoreError ? `${err.awsName}: ${(err.cause as Error)?.message}` : (err as Error).message;
      const reason = this.o.redact(`DynamoDB refused the terminal write (${status}): ${refused}; the result and log tail were dropped`);
      this.o.log.error('the terminal write was refused; ending the task FAILED without its result', { status, reason });
      const minimal: TerminalFields = { exit_code: fields.exit_code, oom_killed: fields.oom_killed, duration_ms: fields.duration_ms, reason };
      try {
        ok = await this.o.retry('minimal terminal write', () => this.o.store.finish(this.lease, TaskStatus.FAILED, minimal));
      } catch (again) {
        return this.abandon('even the minimal terminal write failed', again);
      }
      status = TaskStatus.FAILED;
      fields = minimal;
    }
    if (!ok) return this.fenced(`terminal write (${status}) fenced out`);
    this.o.log.info('task finished', { status, exit_code: fields.exit_code, reason: fields.reason });
    const end = { status, reason: fields.reason, exitCode: fields.exit_code };
    this.afterWrite = Promise.all([this.o.onEnd?.(end), this.deleteMessage()]).then(
      () => undefined,
      (err: unknown) => this.o.log.warn('a step after the terminal write failed', { error: err }),
    );
    return { taskId: this.taskId, status };
  }

  /** Nothing more can be written: free the slot and let the lease expire into a takeover. */
  abandon(why: string, err: unknown): TaskRunResult {
    this.o.log.error(`${why}: leaving the task to its lease (another instance takes it over when it expires)`, { error: err });
    return { taskId: this.taskId, status: 'ABANDONED' };
  }

  async deleteMessage(): Promise<void> {
    if (!this.receiptHandle) return;
    const handle = this.receiptHandle;
    this.receiptHandle = undefined;
    await this.o.sqs
      .send(new DeleteMessageCommand({ QueueUrl: this.o.queueUrl, ReceiptHandle: handle }))
      .catch((err) => this.o.log.warn('deleting the message failed; a later receive finds the task finished and deletes it', { error: err }));
  }
}
