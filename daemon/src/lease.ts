/**
 * Every DynamoDB write fleetd makes about a task: claim, first heartbeat (RUNNING), heartbeat,
 * terminal write, release. Each is conditional on the state fleetd expects, and every write
 * after the claim is fenced on `instance_id = me AND attempt = mine`: a daemon that lost its
 * lease can never overwrite the attempt that replaced it. Each transition is written together
 * with its event row in one transaction, so the events table never misses a transition.
 *
 * Where a task is claimed: `TaskStore.claim`. Heartbeated: `TaskStore.heartbeat`. Finished:
 * `TaskStore.finish`.
 */
import { GetCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { awsErrorName, isConditionalCheckFailed } from './aws';
import {
  EventType,
  LEASED_STATUSES,
  RECORD_RETENTION_DAYS,
  TaskStatus,
  isTerminal,
  newEventId,
  parseTaskRecord,
  statusesLeadingTo,
  type TaskRecord,
  type Timings,
} from './contract';

/** The claim a daemon holds: every later write is conditioned on exactly these. */
export interface Lease {
  readonly taskId: string;
  readonly instanceId: string;
  /** The fencing token. */
  readonly attempt: number;
}

export type ClaimOutcome =
  /** We hold the task now. `takeover`: it was leased by an instance whose lease expired. */
  | { kind: 'claimed'; lease: Lease; record: TaskRecord; takeover: boolean }
  /** No record: the message points at nothing (bogus, or the record expired). */
  | { kind: 'missing' }
  /** The record is not a valid task record; `problems` says why. */
  | { kind: 'invalid-record'; problems: string[] }
  /** Already finished or cancelled: the message is stale. */
  | { kind: 'terminal'; record: TaskRecord }
  /** Another live lease (another instance, or a duplicate delivery to us). */
  | { kind: 'leased'; record: TaskRecord }
  /** We ended it instead of claiming: attempts exhausted (FAILED) or cancel with no live lease (CANCELLED). */
  | { kind: 'ended'; status: TaskStatus; reason: string }
  /** The record kept changing under us; the message stays for a later receive. */
  | { kind: 'contended' };

export type HeartbeatOutcome = { kind: 'ok'; status: TaskStatus } | { kind: 'fenced'; record?: TaskRecord };

export interface TerminalFields {
  readonly exit_code?: number;
  readonly oom_killed?: boolean;
  readonly duration_ms?: number;
  readonly result?: Record<string, unknown>;
  readonly result_error?: string;
  readonly log_tail?: string;
  readonly reason?: string;
}

export class TaskStoreError extends Error {
  override readonly name = 'TaskStoreError';
}

export interface TaskStoreOptions {
  readonly ddb: DynamoDBDocumentClient;
  readonly tasksTable: string;
  readonly eventsTable: string;
  readonly timings: Timings;
  readonly now?: () => number;
}

/** Builds `SET a = :a, ... REMOVE b ADD c :n` with every name and value aliased. */
function updateExpression(set: Record<string, unknown>, remove: string[] = [], add: Record<string, number> = {}) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets = Object.entries(set)
    .filter(([, v]) => v !== undefined)
    .map(([k, v], i) => {
      names[`#u${i}`] = k;
      values[`:u${i}`] = v;
      return `#u${i} = :u${i}`;
    });
  const removes = remove.map((k, i) => {
    names[`#r${i}`] = k;
    return `#r${i}`;
  });
  const adds = Object.entries(add).map(([k, v], i) => {
    names[`#a${i}`] = k;
    values[`:a${i}`] = v;
    return `#a${i} :a${i}`;
  });
  const expr = [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : '', adds.length ? `ADD ${adds.join(', ')}` : '']
    .filter(Boolean)
    .join(' ');
  return { expr, names, values };
}

function isTransactionConditionFailure(err: unknown): boolean {
  if (awsErrorName(err) !== 'TransactionCanceledException') return isConditionalCheckFailed(err);
  const reasons = (err as { CancellationReasons?: Array<{ Code?: string }> }).CancellationReasons;
  // moto and DynamoDB both list one reason per item; a failed condition is what we expect here.
  return !reasons || reasons.some((r) => r.Code === 'ConditionalCheckFailed');
}

export class TaskStore {
  private readonly ddb: DynamoDBDocumentClient;
  private readonly now: () => number;

  constructor(private readonly options: TaskStoreOptions) {
    this.ddb = options.ddb;
    this.now = options.now ?? Date.now;
  }

  async get(taskId: string): Promise<{ record?: TaskRecord; problems?: string[] }> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.options.tasksTable, Key: { task_id: taskId }, ConsistentRead: true }));
    if (!res.Item) return {};
    const parsed = parseTaskRecord(res.Item);
    return parsed.ok ? { record: parsed.value } : { problems: parsed.problems };
  }

  private leaseUntil(now: number): number {
    return now + this.options.timings.leaseSeconds * 1000;
  }

  private event(taskId: string, type: EventType, at: number, fields: { status?: TaskStatus; attempt?: number; instance_id?: string; detail?: Record<string, string | number | boolean> }) {
    return {
      Put: {
        TableName: this.options.eventsTable,
        Item: { task_id: taskId, event_id: newEventId(), type, at, ...fields, expires_at: Math.floor(at / 1000) + RECORD_RETENTION_DAYS * 86400 },
      },
    };
  }

  /**
   * One conditional update of the task plus its event row, atomically. Returns false when the
   * condition failed (someone else changed the task first).
   */
  private async transition(
    taskId: string,
    update: { set: Record<string, unknown>; remove?: string[]; add?: Record<string, number> },
    condition: { expr: string; names?: Record<string, string>; values?: Record<string, unknown> },
    event: ReturnType<TaskStore['event']>,
  ): Promise<boolean> {
    const u = updateExpression(update.set, update.remove, update.add);
    try {
      await this.ddb.send(new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: this.options.tasksTable,
              Key: { task_id: taskId },
              UpdateExpression: u.expr,
              ConditionExpression: condition.expr,
              ExpressionAttributeNames: { ...u.names, ...condition.names },
              ExpressionAttributeValues: { ...u.values, ...condition.values },
            },
          },
          event,
        ],
      }));
      return true;
    } catch (err) {
      if (isTransactionConditionFailure(err)) return false;
      throw new TaskStoreError(`writing task ${taskId} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Claim = read, decide, then one conditional write (optimistic concurrency on `attempt`).
   * Retries the decision once when the record changed between the read and the write.
   */
  async claim(taskId: string, instanceId: string): Promise<ClaimOutcome> {
    for (let round = 0; round < 2; round++) {
      const { record, problems } = await this.get(taskId);
      if (problems) return { kind: 'invalid-record', problems };
      if (!record) return { kind: 'missing' };
      const now = this.now();
      if (isTerminal(record.status)) return { kind: 'terminal', record };
      const leased = LEASED_STATUSES.includes(record.status);
      const leaseLive = leased && (record.lease_expires_at ?? 0) >= now;
      if (leaseLive) return { kind: 'leased', record };

      if (record.status === TaskStatus.CANCEL_REQUESTED) {
        // Cancel asked, and no daemon holds a live lease to carry it out: finish the cancel here.
        const reason = `cancelled; the instance that held it (${record.instance_id ?? 'none'}) stopped heartbeating`;
        if (await this.endUnleased(record, now, TaskStatus.CANCELLED, reason)) return { kind: 'ended', status: TaskStatus.CANCELLED, reason };
        continue;
      }
      if (record.attempts_left <= 0) {
        const reason = `attempts exhausted: ${record.attempt} attempt(s) made${record.instance_id ? `, the last on ${record.instance_id}` : ''}, none finished`;
        if (await this.endUnleased(record, now, TaskStatus.FAILED, reason)) return { kind: 'ended', status: TaskStatus.FAILED, reason };
        continue;
      }

      const attempt = record.attempt + 1;
      const takeover = leased;
      // Timeline of the claim condition:
      //  t0  we read status S and attempt A (above).
      //  t1  another daemon claims first → attempt becomes A+1 → our `attempt = :seen` fails; we lose cleanly.
      //  t1' a submitter cancels a QUEUED task → status CANCELLED → `#s = :seenStatus` fails.
      //  t1" (takeover only) the old owner heartbeats after all → lease_expires_at moves past now →
      //      `lease_expires_at < :now` fails; the owner keeps its task.
      //  t2  our write lands: we own attempt A+1 and every later write is fenced on it.
      const ok = await this.transition(
        taskId,
        {
          set: {
            status: TaskStatus.CLAIMED,
            instance_id: instanceId,
            attempt,
            attempts_left: record.attempts_left - 1,
            lease_expires_at: this.leaseUntil(now),
            claimed_at: now,
            updated_at: now,
          },
          // A previous attempt's reason (e.g. a release) must not survive into this attempt's outcome.
          remove: ['container_id', 'started_at', 'heartbeat_at', 'reason'],
        },
        takeover
          ? {
              expr: '#s = :seenStatus AND attempt = :seenAttempt AND lease_expires_at < :now',
              names: { '#s': 'status' },
              values: { ':seenStatus': record.status, ':seenAttempt': record.attempt, ':now': now },
            }
          : { expr: '#s = :seenStatus AND attempt = :seenAttempt', names: { '#s': 'status' }, values: { ':seenStatus': record.status, ':seenAttempt': record.attempt } },
        this.event(taskId, takeover ? EventType.TAKEN_OVER : EventType.CLAIMED, now, {
          status: TaskStatus.CLAIMED,
          attempt,
          instance_id: instanceId,
          ...(takeover ? { detail: { previous_instance: record.instance_id ?? 'unknown' } } : {}),
        }),
      );
      if (ok) {
        const lease = { taskId, instanceId, attempt };
        return { kind: 'claimed', lease, takeover, record: { ...record, status: TaskStatus.CLAIMED, instance_id: instanceId, attempt, attempts_left: record.attempts_left - 1 } };
      }
    }
    return { kind: 'contended' };
  }

  /** FAILED / CANCELLED for a task nobody holds a live lease on (never one we hold). */
  private async endUnleased(record: TaskRecord, now: number, to: TaskStatus, reason: string): Promise<boolean> {
    const leased = LEASED_STATUSES.includes(record.status);
    // Timeline: t0 read (status S, attempt A, lease expired or none) → t1 a claim or a heartbeat
    // would change attempt or push lease_expires_at past now → our condition fails, we do nothing.
    return this.transition(
      record.task_id,
      { set: { status: to, reason, finished_at: now, updated_at: now, expires_at: this.expiry(now) }, remove: ['lease_expires_at'] },
      {
        expr: `#s = :seenStatus AND attempt = :seenAttempt${leased ? ' AND lease_expires_at < :now' : ''}`,
        names: { '#s': 'status' },
        values: { ':seenStatus': record.status, ':seenAttempt': record.attempt, ...(leased ? { ':now': now } : {}) },
      },
      this.event(record.task_id, to === TaskStatus.CANCELLED ? EventType.CANCELLED : EventType.FAILED, now, { status: to, attempt: record.attempt, detail: { reason } }),
    );
  }

  private expiry(now: number): number {
    return Math.floor(now / 1000) + RECORD_RETENTION_DAYS * 86400;
  }

  /** Fenced condition: we still own this attempt and the task is in one of `statuses`. */
  private fenced(lease: Lease, statuses: readonly TaskStatus[]) {
    const values: Record<string, unknown> = { ':me': lease.instanceId, ':attempt': lease.attempt };
    statuses.forEach((s, i) => (values[`:st${i}`] = s));
    return {
      expr: `instance_id = :me AND attempt = :attempt AND #s IN (${statuses.map((_, i) => `:st${i}`).join(', ')})`,
      names: { '#s': 'status' },
      values,
    };
  }

  /**
   * First heartbeat: CLAIMED → RUNNING with the container id. The container is started only
   * after this write succeeds. Returns 'cancel-requested' when a cancel arrived meanwhile.
   */
  async markRunning(lease: Lease, containerId: string): Promise<'ok' | 'cancel-requested' | 'fenced'> {
    const now = this.now();
    // Timeline: t0 claimed (attempt A, CLAIMED) → t1 image pulled, container created →
    // t2 this write, fenced on A and CLAIMED. A cancel at t1 made the status CANCEL_REQUESTED
    // (condition fails, we report it); a takeover at t1 changed the attempt (fenced).
    const ok = await this.transition(
      lease.taskId,
      { set: { status: TaskStatus.RUNNING, container_id: containerId, started_at: now, heartbeat_at: now, lease_expires_at: this.leaseUntil(now), updated_at: now } },
      this.fenced(lease, [TaskStatus.CLAIMED]),
      this.event(lease.taskId, EventType.RUNNING, now, { status: TaskStatus.RUNNING, attempt: lease.attempt, instance_id: lease.instanceId, detail: { container_id: containerId } }),
    );
    if (ok) return 'ok';
    const { record } = await this.get(lease.taskId);
    if (record && record.instance_id === lease.instanceId && record.attempt === lease.attempt && record.status === TaskStatus.CANCEL_REQUESTED) return 'cancel-requested';
    return 'fenced';
  }

  /** Extends the lease. Not a transition, so no event row. */
  async heartbeat(lease: Lease): Promise<HeartbeatOutcome> {
    const now = this.now();
    const cond = this.fenced(lease, [TaskStatus.CLAIMED, TaskStatus.RUNNING, TaskStatus.CANCEL_REQUESTED]);
    try {
      // Timeline: t0 our last heartbeat (lease until t0+L) → t1 this one. If our lease expired
      // between and another daemon took over, attempt changed → fenced: stop, write nothing more.
      const res = await this.ddb.send(new UpdateCommand({
        TableName: this.options.tasksTable,
        Key: { task_id: lease.taskId },
        UpdateExpression: 'SET heartbeat_at = :now, lease_expires_at = :lease, updated_at = :now',
        ConditionExpression: cond.expr,
        ExpressionAttributeNames: cond.names,
        ExpressionAttributeValues: { ...cond.values, ':now': now, ':lease': this.leaseUntil(now) },
        ReturnValues: 'ALL_NEW',
      }));
      const parsed = parseTaskRecord(res.Attributes);
      return { kind: 'ok', status: parsed.ok ? parsed.value.status : TaskStatus.RUNNING };
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw new TaskStoreError(`heartbeat of ${lease.taskId} failed: ${(err as Error).message}`, { cause: err });
      const { record } = await this.get(lease.taskId);
      return { kind: 'fenced', record };
    }
  }

  /** The one terminal write of an attempt. False: fenced out (someone else owns the task). */
  async finish(lease: Lease, to: TaskStatus, fields: TerminalFields): Promise<boolean> {
    if (!isTerminal(to)) throw new TaskStoreError(`finish() needs a terminal status, got ${to}`);
    const now = this.now();
    const from = statusesLeadingTo(to).filter((s) => LEASED_STATUSES.includes(s));
    // Timeline: t0 container exits → t1 this write, fenced on our attempt. If our lease expired
    // and another daemon took over at t0' < t1, attempt differs: we write nothing (theirs wins).
    return this.transition(
      lease.taskId,
      { set: { status: to, ...fields, finished_at: now, updated_at: now, expires_at: this.expiry(now) }, remove: ['lease_expires_at'] },
      this.fenced(lease, from),
      this.event(lease.taskId, to as EventType, now, {
        status: to,
        attempt: lease.attempt,
        instance_id: lease.instanceId,
        detail: {
          ...(fields.exit_code !== undefined ? { exit_code: fields.exit_code } : {}),
          ...(fields.oom_killed ? { oom_killed: true } : {}),
          ...(fields.reason ? { reason: fields.reason } : {}),
        },
      }),
    );
  }

  /**
   * Gives the task back (drain, spot notice): INTERRUPTED, claimable again at once, and the
   * attempt it used is refunded, in the same write. A task whose cancel was requested ends CANCELLED instead.
   */
  async release(lease: Lease, reason: string, options: { refund?: boolean } = {}): Promise<'released' | 'cancelled' | 'fenced'> {
    const now = this.now();
    const refund = options.refund ?? true;
    // Timeline: t0 we decide to release (container stopped) → t1 this write, fenced on our
    // attempt and on CLAIMED/RUNNING. A cancel at t0' made it CANCEL_REQUESTED: handled below.
    const ok = await this.transition(
      lease.taskId,
      // The attempt is refunded (ADD attempts_left 1): an interruption is not the task's fault.
      // Not refunded when the cause may be the task's own (an engine error on its container):
      // then the attempt cap ends a failure that repeats everywhere.
      { set: { status: TaskStatus.INTERRUPTED, reason, updated_at: now, message_sent_at: now }, remove: ['lease_expires_at'], ...(refund ? { add: { attempts_left: 1 } } : {}) },
      this.fenced(lease, [TaskStatus.CLAIMED, TaskStatus.RUNNING]),
      this.event(lease.taskId, EventType.INTERRUPTED, now, { status: TaskStatus.INTERRUPTED, attempt: lease.attempt, instance_id: lease.instanceId, detail: { reason } }),
    );
    if (ok) {
      return 'released';
    }
    if (await this.finish(lease, TaskStatus.CANCELLED, { reason })) return 'cancelled';
    return 'fenced';
  }

  /**
   * A cancel that reached this daemon directly (control socket) before the record says so:
   * CLAIMED/RUNNING → CANCEL_REQUESTED, fenced, so the final CANCELLED is a legal transition.
   */
  async requestCancel(lease: Lease, by: string): Promise<boolean> {
    const now = this.now();
    const ok = await this.transition(
      lease.taskId,
      { set: { status: TaskStatus.CANCEL_REQUESTED, cancel_requested_at: now, updated_at: now } },
      this.fenced(lease, [TaskStatus.CLAIMED, TaskStatus.RUNNING]),
      this.event(lease.taskId, EventType.CANCEL_REQUESTED, now, { status: TaskStatus.CANCEL_REQUESTED, attempt: lease.attempt, instance_id: lease.instanceId, detail: { by } }),
    );
    if (ok) return true;
    const { record } = await this.get(lease.taskId);
    return record?.status === TaskStatus.CANCEL_REQUESTED && record.attempt === lease.attempt;
  }

  /** A malformed message named this task: fail it, but only while nobody runs it. */
  async failQueued(taskId: string, reason: string): Promise<boolean> {
    const now = this.now();
    // Timeline: only QUEUED → FAILED; a task that is claimed or running is never failed because
    // of a bad message about it.
    return this.transition(
      taskId,
      { set: { status: TaskStatus.FAILED, reason, finished_at: now, updated_at: now, expires_at: this.expiry(now) } },
      { expr: '#s = :queued', names: { '#s': 'status' }, values: { ':queued': TaskStatus.QUEUED } },
      this.event(taskId, EventType.REJECTED, now, { status: TaskStatus.FAILED, detail: { reason } }),
    );
  }
}
