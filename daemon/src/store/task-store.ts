/**
 * The one writer of the tasks and events tables (docs/architecture.md, "Who writes what").
 * fleetd's transitions (claim, RUNNING, heartbeat, terminal write, release, cancel), the
 * client's submit, cancel and redrive, and the reconciler's repairs all go through this class;
 * test/unit/architecture.test.ts fails when any other file sends a write to a fleet table.
 *
 * Every write is conditional on the state its caller read or holds: after a claim, on
 * `instance_id = me AND attempt = mine` (the fencing token); otherwise on the status and attempt
 * it read. A transition and its event row are written in one TransactWriteItems, so the events
 * table never misses a transition. A lost condition is an answer (false / an outcome kind);
 * any other failure is a StoreError whose cause the retry policy judges.
 *
 * The primitives (transaction + event, fencing, redaction) are in task-writes.ts; the shapes in
 * task-types.ts. Where a task is claimed: `claim`. Heartbeated: `heartbeat`. Finished: `finish`.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  EventType,
  LEASED_STATUSES,
  TASKS_TABLE,
  TaskStatus,
  assertTransition,
  encodeEnvelope,
  isTerminal,
  parseTaskRecord,
  retentionExpiresAt,
  statusesLeadingTo,
  takeoverVerdict,
  type TaskRecord,
} from '../contract';
import { and, buildUpdate, isConditionFailure, leaseExpired, unchangedSince, StoreError, type UpdateSpec } from './dynamo';
import { eventRow } from './events';
import type { ClaimOutcome, HeartbeatOutcome, Lease, ResendOutcome, StartFacts, TerminalFields } from './task-types';
import { TaskWrites } from './task-writes';

export * from './task-types';
export { TaskWrites } from './task-writes';

export class TaskStore extends TaskWrites {
  // ---------------------------------------------------------------------------------------------
  // Submit (the client library)

  /**
   * A new QUEUED record and its SUBMITTED event, in one transaction. 'exists': a record with
   * this id is already there (an idempotency key matched); nothing was written.
   */
  async create(record: TaskRecord): Promise<'created' | 'exists'> {
    if (record.status !== TaskStatus.QUEUED) throw new StoreError(`creating task ${record.task_id}`, { cause: new Error(`a new record must be QUEUED, got ${record.status}`) });
    try {
      await this.ddb.send(new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: this.options.tasksTable, Item: record, ConditionExpression: 'attribute_not_exists(#id)', ExpressionAttributeNames: { '#id': TASKS_TABLE.partitionKey } } },
          { Put: { TableName: this.options.eventsTable, Item: eventRow(record.task_id, { type: EventType.SUBMITTED, at: record.created_at, status: TaskStatus.QUEUED }) } },
        ],
      }));
      return 'created';
    } catch (err) {
      if (isConditionFailure(err)) return 'exists';
      throw new StoreError(`writing task ${record.task_id}`, { cause: err });
    }
  }

  /**
   * Sends a task's message and records when, fenced so that two senders (the client's submit
   * and redrive, overlapping reconciler runs) never both send for the same reading. `requeue`
   * also moves INTERRUPTED back to QUEUED, with its event. `event`: append MESSAGE_RESENT after
   * the send (not for a submit's first send).
   */
  async resend(record: TaskRecord, options: { why: string; by: string; requeue?: boolean; event?: boolean }): Promise<ResendOutcome> {
    const queue = this.options.queue;
    if (!queue) throw new StoreError(`resending task ${record.task_id}`, { cause: new Error('this TaskStore was built without a queue') });
    if (isTerminal(record.status)) return 'ended';
    const at = this.now();
    const requeue = options.requeue ?? false;
    if (requeue) assertTransition(record.status, TaskStatus.QUEUED);
    const leased = LEASED_STATUSES.includes(record.status);
    const prevSent = record.message_sent_at;
    // Timeline: we read (status S, attempt n, sent at P) ─ a daemon claims (status or attempt
    // changes), or another sender records its send first (message_sent_at changes), or, for an
    // abandoned lease, its daemon heartbeats late (lease ≥ at) ─ our write fails and we send
    // nothing. Record first, then send: a crash between them leaves a send time with no
    // message, which the reconciler resends once it is stale; a failed send is undone below.
    const condition = [
      unchangedSince(record),
      prevSent === undefined ? { expr: 'attribute_not_exists(#sent)', names: { '#sent': 'message_sent_at' } } : { expr: '#sent = :prevSent', names: { '#sent': 'message_sent_at' }, values: { ':prevSent': prevSent } },
      ...(leased ? [leaseExpired(at)] : []),
    ].reduce(and);
    const update: UpdateSpec = { set: { message_sent_at: at, updated_at: at, ...(requeue ? { status: TaskStatus.QUEUED } : {}) } };
    const recorded = requeue
      ? await this.transition(record.task_id, update, condition, { type: EventType.REQUEUED, at, status: TaskStatus.QUEUED, attempt: record.attempt, instance_id: record.instance_id, detail: { by: options.by, reason: options.why } })
      : await this.update(record.task_id, update, condition, 'recording a send');
    if (!recorded) return 'raced';
    try {
      await queue.sqs.send(new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: encodeEnvelope(record.task_id, at) }));
    } catch (err) {
      // Put the previous send time back so the task looks stale again at once rather than a
      // whole window later. Fenced on our own write: a daemon that claimed meanwhile wins.
      await this.update(
        record.task_id,
        prevSent === undefined ? { remove: ['message_sent_at'] } : { set: { message_sent_at: prevSent } },
        { expr: '#sent = :ours AND #attempt = :attempt', names: { '#sent': 'message_sent_at', '#attempt': 'attempt' }, values: { ':ours': at, ':attempt': record.attempt } },
        'undoing a failed send',
      ).catch(() => false);
      throw new StoreError(`sending the message of task ${record.task_id}`, { cause: err });
    }
    if (options.event) {
      // Not a transition: the record and the message are what matter. A failed append (the SDK
      // retried transient errors already) is an outcome, not an error: throwing here would tell
      // the caller nothing was sent, and a caller that sends again duplicates the message.
      try {
        await this.ddb.send(new TransactWriteCommand({
          TransactItems: [{ Put: { TableName: this.options.eventsTable, Item: eventRow(record.task_id, this.redactEvent({ type: EventType.MESSAGE_RESENT, at, status: requeue ? TaskStatus.QUEUED : record.status, attempt: record.attempt, detail: { by: options.by, reason: options.why } })) } }],
        }));
      } catch {
        return 'sent-without-event';
      }
    }
    return 'sent';
  }

  /**
   * A status change of a record we read and do not hold a lease on (the client's cancel),
   * fenced on its status and attempt, with its event row.
   */
  async transitionSeen(record: TaskRecord, to: TaskStatus, set: Record<string, unknown>, event: { type: EventType; detail: Record<string, string> }): Promise<boolean> {
    assertTransition(record.status, to);
    const now = this.now();
    // Timeline: t0 we read (status S, attempt A) → t1 a daemon claims, releases or finishes it
    // (status or attempt changes) → our condition fails and the caller decides again on what is there now.
    return this.transition(
      record.task_id,
      { set: { ...set, status: to, updated_at: now, ...(isTerminal(to) ? { finished_at: now, expires_at: retentionExpiresAt(now) } : {}) } },
      unchangedSince(record),
      { type: event.type, at: now, status: to, attempt: record.attempt, instance_id: record.instance_id, detail: event.detail },
    );
  }

  /**
   * FAILED / CANCELLED for a task nobody holds a live lease on: attempts exhausted, or a cancel
   * whose daemon is gone. Used by fleetd's claim and by the reconciler.
   */
  async endUnleased(record: TaskRecord, to: TaskStatus, reason: string, by: string): Promise<boolean> {
    assertTransition(record.status, to);
    const now = this.now();
    const leased = LEASED_STATUSES.includes(record.status);
    // Timeline: t0 read (status S, attempt A, lease expired or none) → t1 a claim (attempt
    // changes), a late heartbeat (lease_expires_at moves past now) or the daemon's own terminal
    // write (status changes) → our condition fails and we do nothing: the daemon wins.
    return this.transition(
      record.task_id,
      { set: { status: to, reason, finished_at: now, updated_at: now, expires_at: retentionExpiresAt(now) }, remove: ['lease_expires_at'] },
      leased ? and(unchangedSince(record), leaseExpired(now)) : unchangedSince(record),
      { type: to === TaskStatus.CANCELLED ? EventType.CANCELLED : EventType.FAILED, at: now, status: to, attempt: record.attempt, instance_id: record.instance_id, detail: { by, reason } },
    );
  }

  // ---------------------------------------------------------------------------------------------
  // fleetd: claim, run, heartbeat, finish, release

  /**
   * Claim = read, decide, then one conditional write (optimistic concurrency on `attempt`).
   * Decides again once when the record changed between the read and the write.
   * `beforeWrite` sees each record the claim is about to write over, so a caller can start work
   * that only reads it (fleetd: the seal's KMS check) beside the write.
   */
  async claim(taskId: string, instanceId: string, beforeWrite?: (record: TaskRecord) => void): Promise<ClaimOutcome> {
    for (let round = 0; round < 2; round++) {
      const { record, problems } = await this.get(taskId);
      if (problems) return { kind: 'invalid-record', problems };
      if (!record) return { kind: 'missing' };
      const now = this.now();
      if (isTerminal(record.status)) return { kind: 'terminal', record };
      const leased = LEASED_STATUSES.includes(record.status);
      if (leased && (record.lease_expires_at ?? 0) >= now) return { kind: 'leased', record };

      if (record.status === TaskStatus.CANCEL_REQUESTED) {
        // Cancel asked, and no daemon holds a live lease to carry it out: finish the cancel here.
        const reason = `cancelled; the instance that held it (${record.instance_id ?? 'none'}) stopped heartbeating`;
        if (await this.endUnleased(record, TaskStatus.CANCELLED, reason, instanceId)) return { kind: 'ended', status: TaskStatus.CANCELLED, reason, record };
        continue;
      }
      const takeover = leased;
      // A takeover refunds the dead owner's attempt (its fault was the instance's) and counts
      // against the takeover cap instead (contract/takeover.ts).
      const verdict = takeover ? takeoverVerdict(record) : undefined;
      if (verdict && !verdict.ok) {
        if (await this.endUnleased(record, TaskStatus.FAILED, verdict.reason, instanceId)) return { kind: 'ended', status: TaskStatus.FAILED, reason: verdict.reason, record };
        continue;
      }
      const attemptsLeft = verdict?.ok ? verdict.attemptsLeft : record.attempts_left;
      if (attemptsLeft <= 0) {
        const reason = `attempts exhausted: ${record.attempt} attempt(s) made${record.instance_id ? `, the last on ${record.instance_id}` : ''}, none finished`;
        if (await this.endUnleased(record, TaskStatus.FAILED, reason, instanceId)) return { kind: 'ended', status: TaskStatus.FAILED, reason, record };
        continue;
      }

      const attempt = record.attempt + 1;
      const takeovers = verdict?.ok ? verdict.takeovers : record.takeovers;
      // Timeline of the claim condition:
      //  t0  we read status S and attempt A (above).
      //  t1  another daemon claims first → attempt becomes A+1 → our `attempt = :seen` fails; we lose cleanly.
      //  t1' a submitter cancels a QUEUED task → status CANCELLED → `#s = :seenStatus` fails.
      //  t1" (takeover only) the old owner heartbeats after all → lease_expires_at moves past now →
      //      `lease_expires_at < :now` fails; the owner keeps its task.
      //  t2  our write lands: we own attempt A+1 and every later write is fenced on it. For a
      //      takeover the same write refunds the dead owner's attempt (attempts_left stays as
      //      read: -1 for ours, +1 for theirs) and counts the takeover.
      beforeWrite?.(record);
      const ok = await this.transition(
        taskId,
        {
          set: {
            status: TaskStatus.CLAIMED,
            instance_id: instanceId,
            attempt,
            attempts_left: attemptsLeft - 1,
            ...(verdict?.ok ? { takeovers: verdict.takeovers } : {}),
            lease_expires_at: this.leaseUntil(now),
            claimed_at: now,
            updated_at: now,
          },
          // A previous attempt's reason (e.g. a release) must not survive into this attempt's outcome.
          remove: ['container_id', 'started_at', 'heartbeat_at', 'reason'],
        },
        takeover ? and(unchangedSince(record), leaseExpired(now)) : unchangedSince(record),
        {
          type: takeover ? EventType.TAKEN_OVER : EventType.CLAIMED,
          at: now,
          status: TaskStatus.CLAIMED,
          attempt,
          instance_id: instanceId,
          ...(verdict?.ok ? { detail: { previous_instance: record.instance_id ?? 'unknown', takeover: verdict.takeovers, attempt_refunded: record.attempt } } : {}),
        },
      );
      if (ok) {
        return {
          kind: 'claimed',
          lease: { taskId, instanceId, attempt },
          takeover,
          record: { ...record, status: TaskStatus.CLAIMED, instance_id: instanceId, attempt, attempts_left: attemptsLeft - 1, ...(takeovers !== undefined ? { takeovers } : {}) },
        };
      }
    }
    return { kind: 'contended' };
  }

  /**
   * First heartbeat: CLAIMED → RUNNING with the container id. The container is started only
   * after this write succeeds. 'cancel-requested' when a cancel arrived meanwhile.
   */
  async markRunning(lease: Lease): Promise<'ok' | 'cancel-requested' | 'fenced'> {
    const now = this.now();
    // Timeline: t0 claimed (attempt A, CLAIMED) → t1 image present, container being created
    // (fleetd sends this write beside the create, so the record names its container on a later
    // write: StartFacts) → t2 this write, fenced on A and CLAIMED; the container starts only
    // after it landed. A cancel at t1 made the status CANCEL_REQUESTED (condition fails, we
    // report it); a takeover at t1 changed the attempt (fenced).
    const ok = await this.transition(
      lease.taskId,
      { set: { status: TaskStatus.RUNNING, started_at: now, heartbeat_at: now, lease_expires_at: this.leaseUntil(now), updated_at: now } },
      this.fenced(lease, [TaskStatus.CLAIMED]),
      { type: EventType.RUNNING, at: now, status: TaskStatus.RUNNING, attempt: lease.attempt, instance_id: lease.instanceId },
    );
    if (ok) return 'ok';
    const { record } = await this.get(lease.taskId);
    if (record && record.instance_id === lease.instanceId && record.attempt === lease.attempt && record.status === TaskStatus.CANCEL_REQUESTED) return 'cancel-requested';
    return 'fenced';
  }

  /**
   * Extends the lease. Not a transition, so no event row. `facts`: what the attempt learned
   * after its RUNNING write (its container id, its dispatch timings), carried by the first beat
   * (or else by the terminal write) rather than by a write of their own: one DynamoDB call less
   * per task (issue #18).
   */
  async heartbeat(lease: Lease, facts: StartFacts = {}): Promise<HeartbeatOutcome> {
    const now = this.now();
    const update = buildUpdate(
      { set: { heartbeat_at: now, lease_expires_at: this.leaseUntil(now), updated_at: now, ...facts } },
      this.fenced(lease, [TaskStatus.CLAIMED, TaskStatus.RUNNING, TaskStatus.CANCEL_REQUESTED]),
    );
    try {
      // Timeline: t0 our last heartbeat (lease until t0+L) → t1 this one. If our lease expired
      // between and another daemon took over, attempt changed → fenced: stop, write nothing more.
      const res = await this.ddb.send(new UpdateCommand({
        TableName: this.options.tasksTable,
        Key: { [TASKS_TABLE.partitionKey]: lease.taskId },
        ...update,
        // The renewed record comes back: a cancel request is read on the heartbeat that renews.
        ReturnValues: 'ALL_NEW',
      }));
      const parsed = parseTaskRecord(res.Attributes);
      return { kind: 'ok', status: parsed.ok ? parsed.value.status : TaskStatus.RUNNING };
    } catch (err) {
      if (!isConditionFailure(err)) throw new StoreError(`heartbeat of ${lease.taskId}`, { cause: err });
      const { record } = await this.get(lease.taskId);
      return { kind: 'fenced', record };
    }
  }

  /** The one terminal write of an attempt. False: fenced out (someone else owns the task). */
  async finish(lease: Lease, to: TaskStatus, fields: TerminalFields): Promise<boolean> {
    if (!isTerminal(to)) throw new StoreError(`finishing ${lease.taskId}`, { cause: new Error(`finish() needs a terminal status, got ${to}`) });
    const now = this.now();
    const from = statusesLeadingTo(to).filter((s) => LEASED_STATUSES.includes(s));
    // Timeline: t0 container exits → t1 this write, fenced on our attempt. If our lease expired
    // and another daemon took over at t0' < t1, attempt differs: we write nothing (theirs wins).
    return this.transition(
      lease.taskId,
      { set: { status: to, ...fields, finished_at: now, updated_at: now, expires_at: retentionExpiresAt(now) }, remove: ['lease_expires_at'] },
      this.fenced(lease, from),
      {
        type: to as EventType,
        at: now,
        status: to,
        attempt: lease.attempt,
        instance_id: lease.instanceId,
        detail: {
          ...(fields.exit_code !== undefined ? { exit_code: fields.exit_code } : {}),
          ...(fields.oom_killed ? { oom_killed: true } : {}),
          ...(fields.reason ? { reason: fields.reason } : {}),
        },
      },
    );
  }

  /**
   * Gives the task back (drain, spot notice, an engine fault): INTERRUPTED, claimable again at
   * once. The attempt is refunded in the same write unless the cause may be the task's own. A
   * task whose cancel was requested ends CANCELLED instead.
   */
  async release(lease: Lease, reason: string, options: { refund?: boolean } = {}): Promise<'released' | 'cancelled' | 'fenced'> {
    const now = this.now();
    const refund = options.refund ?? true;
    // Timeline: t0 we decide to release (container stopped) → t1 this write, fenced on our
    // attempt and on CLAIMED/RUNNING. A cancel at t0' made it CANCEL_REQUESTED: handled below.
    const ok = await this.transition(
      lease.taskId,
      // The refund (ADD attempts_left 1): an interruption is not the task's fault. Not refunded
      // when the cause may be the task's own (an engine error on its container): then the
      // attempt cap ends a failure that repeats everywhere.
      { set: { status: TaskStatus.INTERRUPTED, reason, updated_at: now, message_sent_at: now }, remove: ['lease_expires_at'], ...(refund ? { add: { attempts_left: 1 } } : {}) },
      this.fenced(lease, [TaskStatus.CLAIMED, TaskStatus.RUNNING]),
      { type: EventType.INTERRUPTED, at: now, status: TaskStatus.INTERRUPTED, attempt: lease.attempt, instance_id: lease.instanceId, detail: { reason } },
    );
    if (ok) return 'released';
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
      { type: EventType.CANCEL_REQUESTED, at: now, status: TaskStatus.CANCEL_REQUESTED, attempt: lease.attempt, instance_id: lease.instanceId, detail: { by } },
    );
    if (ok) return true;
    const { record } = await this.get(lease.taskId);
    return record?.status === TaskStatus.CANCEL_REQUESTED && record.attempt === lease.attempt;
  }

}
