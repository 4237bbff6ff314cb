/**
 * The reconciler's pure part (infra/handlers/reconcile/decide.ts): each decision of
 * `decideReconcile`, the options check, and the queue-deficit plan. The actions (the store's
 * conditional writes, the races with a daemon) are exercised against moto in
 * test/integration/reconciler.test.ts.
 */
import { DEFAULT_TIMINGS, FLEET_ENV, LIMITS, TERMINAL_STATUSES, TaskStatus, type TaskRecord } from '../../daemon/src/contract';
import {
  ReconcilerOptionsError,
  decideReconcile,
  expectsVisibleMessage,
  leaseIsLive,
  messageVisibleSince,
  planReconcile,
  resolveReconcileOptions,
  type Decided,
  type ReconcileAction,
  type ReconcileOptions,
} from '../../infra/handlers/reconcile/decide';
import { reconcilerConfigFromEnv } from '../../infra/handlers/reconciler';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const MIN = 60_000;
const LEASE_MS = DEFAULT_TIMINGS.leaseSeconds * 1000;

// ---------------------------------------------------------------------------------------------
// Record factories

function aRecord(overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    task_id: 't-1',
    status: TaskStatus.QUEUED,
    spec: { image: 'agent:1' },
    created_at: NOW - 60 * MIN,
    updated_at: NOW - 60 * MIN,
    attempt: 0,
    attempts_left: DEFAULT_TIMINGS.maxAttempts,
    message_sent_at: NOW - 60 * MIN,
    ...overrides,
  };
}

const queued = (o: Partial<TaskRecord> = {}) => aRecord({ message_sent_at: NOW - 1 * MIN, updated_at: NOW - 1 * MIN, ...o });

/** A record leased by `attempt` on i-0aaa…, lease ending `leaseIn` ms from NOW (negative: expired). */
const leased = (status: TaskStatus, leaseIn: number, o: Partial<TaskRecord> = {}) =>
  aRecord({
    status,
    attempt: 1,
    attempts_left: DEFAULT_TIMINGS.maxAttempts - 1,
    instance_id: 'i-0aaaaaaaaaaaaaaaa',
    claimed_at: NOW - 30 * MIN,
    updated_at: NOW - 30 * MIN,
    lease_expires_at: NOW + leaseIn,
    ...o,
  });

const interrupted = (releasedAgo: number, o: Partial<TaskRecord> = {}) =>
  aRecord({ status: TaskStatus.INTERRUPTED, attempt: 1, instance_id: 'i-0bbbbbbbbbbbbbbbb', updated_at: NOW - releasedAgo, ...o });

// ---------------------------------------------------------------------------------------------
// decideReconcile

describe('decideReconcile', () => {
  describe.each<[string, TaskRecord, ReconcileAction]>([
    ['QUEUED, message sent 1 min ago', queued(), 'none'],
    ['QUEUED, message sent 6 min ago (lost enqueue)', aRecord({ message_sent_at: NOW - 6 * MIN, updated_at: NOW - 6 * MIN }), 'resend'],
    ['QUEUED, no message_sent_at, written 6 min ago', aRecord({ message_sent_at: undefined, updated_at: NOW - 6 * MIN }), 'resend'],
    ['QUEUED, message sent exactly one window ago', aRecord({ message_sent_at: NOW - 5 * MIN, updated_at: NOW - 5 * MIN }), 'none'],
    ['QUEUED with no attempts left', queued({ attempts_left: 0, attempt: 3 }), 'fail'],
    ['INTERRUPTED 1 min ago (message sent 1 h ago)', interrupted(1 * MIN), 'none'],
    ['INTERRUPTED 6 min ago, never claimed (lost release)', interrupted(6 * MIN), 'requeue'],
    ['INTERRUPTED with no attempts left', interrupted(1 * MIN, { attempts_left: 0 }), 'fail'],
    ['CLAIMED, lease live', leased(TaskStatus.CLAIMED, LEASE_MS), 'none'],
    ['RUNNING, lease ends exactly now (still live)', leased(TaskStatus.RUNNING, 0), 'none'],
    ['RUNNING, lease expired 1 min ago, attempts left', leased(TaskStatus.RUNNING, -1 * MIN), 'none'],
    ['RUNNING, lease expired 6 min ago, attempts left, no takeover', leased(TaskStatus.RUNNING, -6 * MIN), 'resend'],
    // A takeover refunds the dead owner's attempt: no attempts left is no reason to fail it.
    ['RUNNING, lease expired 1 ms ago, no attempts left (the takeover refunds the dead owner\'s)', leased(TaskStatus.RUNNING, -1, { attempt: 3, attempts_left: 0 }), 'none'],
    ['RUNNING, lease expired 6 min ago, no attempts left, no takeover', leased(TaskStatus.RUNNING, -6 * MIN, { attempt: 3, attempts_left: 0 }), 'resend'],
    ['RUNNING, lease expired 1 ms ago, takeovers at the cap', leased(TaskStatus.RUNNING, -1, { attempt: 4, takeovers: LIMITS.maxTakeovers }), 'fail'],
    ['CLAIMED, lease expired, takeovers at the cap', leased(TaskStatus.CLAIMED, -1 * MIN, { attempt: 4, takeovers: LIMITS.maxTakeovers }), 'fail'],
    ['CLAIMED without any lease, takeovers at the cap', leased(TaskStatus.CLAIMED, 0, { lease_expires_at: undefined, takeovers: LIMITS.maxTakeovers }), 'fail'],
    ['CLAIMED, lease expired, one takeover short of the cap', leased(TaskStatus.CLAIMED, -1 * MIN, { attempt: 3, takeovers: LIMITS.maxTakeovers - 1 }), 'none'],
    ['CANCEL_REQUESTED, lease live', leased(TaskStatus.CANCEL_REQUESTED, LEASE_MS), 'none'],
    ['CANCEL_REQUESTED, lease expired', leased(TaskStatus.CANCEL_REQUESTED, -1 * MIN), 'cancel'],
    ['CANCEL_REQUESTED, lease expired, no attempts left', leased(TaskStatus.CANCEL_REQUESTED, -1 * MIN, { attempts_left: 0 }), 'cancel'],
    ...TERMINAL_STATUSES.map((s): [string, TaskRecord, ReconcileAction] => [`${s} (terminal), stale in every way`, leased(s, -60 * MIN, { attempts_left: 0 }), 'none']),
  ])('%s', (_name, record, expected) => {
    it(`→ ${expected}`, () => {
      // Act
      const decision = decideReconcile(record, NOW);
      // Assess
      expect(decision.action).toBe(expected);
    });
  });

  it('names the takeovers, the attempt and the last instance when it fails a task past the takeover cap', () => {
    // Prepare
    const record = leased(TaskStatus.RUNNING, -2 * MIN, { attempt: 4, attempts_left: 2, takeovers: 3, instance_id: 'i-0123456789abcdef0' });
    // Act
    const decision = decideReconcile(record, NOW, {});
    // Assess
    expect(decision).toMatchObject({ action: 'fail' });
    const reason = (decision as { reason: string }).reason;
    expect(reason).toMatch(/takeovers exhausted: taken over 3 time\(s\) \(the cap is 3\)/);
    expect(reason).toContain('attempt 4');
    expect(reason).toContain('failed by the reconciler');
    expect(reason).toContain('i-0123456789abcdef0');
    expect(reason).toContain(new Date(NOW - 2 * MIN).toISOString());
  });

  it('honours a custom resend window', () => {
    // Prepare
    const record = aRecord({ message_sent_at: NOW - 3 * MIN, updated_at: NOW - 3 * MIN });
    // Act / Assess
    expect(decideReconcile(record, NOW).action).toBe('none');
    expect(decideReconcile(record, NOW, { resendAfterMs: 2 * MIN + 1 }).action).toBe('resend');
  });
});

describe('resolveReconcileOptions', () => {
  it.each<[string, ReconcileOptions, string]>([
    ['a resend window within the lease', { resendAfterMs: LEASE_MS }, 'resendAfterMs'],
    ['a stale-instance threshold under two heartbeats', { staleInstanceAfterMs: 1000 }, 'staleInstanceAfterMs'],
    ['zero concurrency', { concurrency: 0 }, 'concurrency'],
  ])('rejects %s with a typed error naming the field', (_name, options, field) => {
    // Act
    const attempt = () => resolveReconcileOptions(options);
    // Assess
    expect(attempt).toThrow(ReconcilerOptionsError);
    expect(attempt).toThrow(new RegExp(`${field}: got`));
  });

  it('reports every problem at once', () => {
    // Act
    const attempt = () => resolveReconcileOptions({ resendAfterMs: 1, staleInstanceAfterMs: 1, concurrency: 65 });
    // Assess
    expect(attempt).toThrow(expect.objectContaining({ problems: [expect.stringMatching(/^resendAfterMs/), expect.stringMatching(/^staleInstanceAfterMs/), expect.stringMatching(/^concurrency/)] }));
  });

  it('fills defaults, ignoring options given as undefined', () => {
    // Act
    const resolved = resolveReconcileOptions({ resendAfterMs: undefined });
    // Assess
    expect(resolved).toMatchObject({ resendAfterMs: 5 * MIN, staleInstanceAfterMs: 15 * MIN, concurrency: 8, limitResendsToQueueDeficit: true, timings: DEFAULT_TIMINGS });
  });

  it("checks against the fleet's own timings", () => {
    // Prepare: a fleet with a 10-minute lease, and one whose instances write their row every 10 minutes.
    const timings = { ...DEFAULT_TIMINGS, leaseSeconds: 600 };
    const slowRows = { ...DEFAULT_TIMINGS, instanceHeartbeatSeconds: 600 };
    // Act / Assess: stale after 2.5 instance heartbeats (never under a lease)
    expect(resolveReconcileOptions({ timings })).toMatchObject({ staleInstanceAfterMs: 15 * MIN, resendAfterMs: 25 * MIN });
    expect(resolveReconcileOptions({ timings: slowRows })).toMatchObject({ staleInstanceAfterMs: 25 * MIN });
    expect(resolveReconcileOptions({ timings: { ...DEFAULT_TIMINGS, instanceHeartbeatSeconds: 10 } })).toMatchObject({ staleInstanceAfterMs: LEASE_MS });
    expect(() => resolveReconcileOptions({ timings: slowRows, staleInstanceAfterMs: 20 * MIN })).toThrow(/staleInstanceAfterMs: got 1200000, expected at least two instance heartbeats/);
    expect(() => resolveReconcileOptions({ timings, resendAfterMs: 5 * MIN })).toThrow(/resendAfterMs: got 300000, expected more than the lease \(600000 ms\)/);
  });
});


describe('leaseIsLive, messageVisibleSince, expectsVisibleMessage', () => {
  it.each<[string, number | undefined, boolean]>([
    ['ends in a minute', NOW + MIN, true],
    ['ends exactly now', NOW, true],
    ['ended 1 ms ago', NOW - 1, false],
    ['was never set', undefined, false],
  ])('a lease that %s is live: %s', (_name, leaseExpiresAt, live) => {
    // Act / Assess
    expect(leaseIsLive({ lease_expires_at: leaseExpiresAt }, NOW)).toBe(live);
  });

  it('takes the later of the send and the last change, and for a lease its expiry', () => {
    // Prepare
    const sentLater = aRecord({ message_sent_at: NOW - 2 * MIN, updated_at: NOW - 9 * MIN });
    const releasedLater = interrupted(1 * MIN, { message_sent_at: NOW - 9 * MIN });
    const leaseLater = leased(TaskStatus.RUNNING, -1 * MIN, { message_sent_at: NOW - 9 * MIN });
    // Act / Assess
    expect(messageVisibleSince(sentLater)).toBe(NOW - 2 * MIN);
    expect(messageVisibleSince(releasedLater)).toBe(NOW - 1 * MIN);
    expect(messageVisibleSince(leaseLater)).toBe(NOW - 1 * MIN);
  });

  it.each<[string, boolean, TaskRecord]>([
    ['QUEUED', true, queued()],
    ['INTERRUPTED', true, interrupted(MIN)],
    ['QUEUED with no attempts left', false, queued({ attempts_left: 0 })],
    ['RUNNING with a live lease', false, leased(TaskStatus.RUNNING, MIN)],
    ['RUNNING with an expired lease', true, leased(TaskStatus.RUNNING, -MIN)],
    ['RUNNING with an expired lease and no attempts left (a takeover refunds)', true, leased(TaskStatus.RUNNING, -MIN, { attempts_left: 0 })],
    ['RUNNING with an expired lease, takeovers at the cap', false, leased(TaskStatus.RUNNING, -MIN, { takeovers: LIMITS.maxTakeovers })],
    ['CANCEL_REQUESTED with an expired lease', false, leased(TaskStatus.CANCEL_REQUESTED, -MIN)],
  ])('%s expects a visible message: %s', (_name, expected, record) => {
    // Act / Assess
    expect(expectsVisibleMessage(record, NOW)).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------
// planReconcile

/** A record and the decision decideReconcile makes for it at NOW. */
const decided = (record: TaskRecord): Decided => ({ record, decision: decideReconcile(record, NOW) });

/** A QUEUED record whose message was sent `silentFor` ms ago (stale beyond 5 minutes). */
const silent = (taskId: string, silentFor: number): TaskRecord => aRecord({ task_id: taskId, message_sent_at: NOW - silentFor, updated_at: NOW - silentFor });

const ids = (work: readonly Decided[]) => work.map((d) => d.record.task_id);

describe('planReconcile', () => {
  it('resends only as many as the queue is short of, the longest-silent first', () => {
    // Prepare: three stale QUEUED records, while the queue still holds two messages.
    const all = [decided(silent('t-new', 6 * MIN)), decided(silent('t-old', 30 * MIN)), decided(silent('t-mid', 10 * MIN))];
    // Act
    const plan = planReconcile(all, NOW, 2);
    // Assess
    expect(ids(plan.work)).toEqual(['t-old']);
    expect(plan.resendDeferred).toBe(2);
  });

  it('counts every record that should have a message, not only the stale ones', () => {
    // Prepare: one stale record, two fresh ones whose messages are the two in the queue.
    const all = [decided(silent('t-lost', 9 * MIN)), decided(queued({ task_id: 't-a' })), decided(queued({ task_id: 't-b' }))];
    // Act
    const plan = planReconcile(all, NOW, 2);
    // Assess
    expect(ids(plan.work)).toEqual(['t-lost']);
    expect(plan.resendDeferred).toBe(0);
  });

  it('resends every stale task when the queue depth is unknown', () => {
    // Prepare
    const all = [decided(silent('t-a', 9 * MIN)), decided(silent('t-b', 8 * MIN))];
    // Act
    const plan = planReconcile(all, NOW, undefined);
    // Assess
    expect(ids(plan.work).sort()).toEqual(['t-a', 't-b']);
    expect(plan.resendDeferred).toBe(0);
  });

  it('never holds back a fail or a cancel, and drops what needs nothing', () => {
    // Prepare: a queue that looks full, a task past its cap, an orphaned cancel, a fresh task.
    const all = [
      decided(leased(TaskStatus.RUNNING, -MIN, { task_id: 't-dead', takeovers: LIMITS.maxTakeovers })),
      decided(leased(TaskStatus.CANCEL_REQUESTED, -MIN, { task_id: 't-orphan' })),
      decided(silent('t-stale', 9 * MIN)),
      decided(queued({ task_id: 't-fresh' })),
    ];
    // Act
    const plan = planReconcile(all, NOW, 100);
    // Assess
    expect(ids(plan.work)).toEqual(['t-dead', 't-orphan']);
    expect(plan.resendDeferred).toBe(1);
  });

  it('budgets requeues together with resends', () => {
    // Prepare: a lost release (older) and a lost enqueue, room for one message.
    const all = [decided(silent('t-enqueue', 7 * MIN)), decided(interrupted(20 * MIN, { task_id: 't-release' }))];
    // Act
    const plan = planReconcile(all, NOW, 1);
    // Assess
    expect(plan.work.map((d) => `${d.record.task_id}:${d.decision.action}`)).toEqual(['t-release:requeue']);
    expect(plan.resendDeferred).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// The Lambda's configuration (infra/handlers/reconciler.ts)

describe('reconcilerConfigFromEnv', () => {
  const names = { FLEET_NAME: 'f', FLEET_TASKS_TABLE: 't', FLEET_EVENTS_TABLE: 'e', FLEET_INSTANCES_TABLE: 'i', FLEET_QUEUE_URL: 'https://sqs.example/q' };

  it('names every missing variable at once and who sets them', () => {
    expect(() => reconcilerConfigFromEnv({ FLEET_NAME: 'f' })).toThrow('reconciler configuration: FLEET_TASKS_TABLE, FLEET_EVENTS_TABLE, FLEET_INSTANCES_TABLE, FLEET_QUEUE_URL not set; the AgentFleet construct sets them on the Lambda');
  });

  it("takes ABCA's TaskTable when the fleet is ABCA's compute, and nothing when the variable is unset or blank", () => {
    expect(reconcilerConfigFromEnv({ ...names, [FLEET_ENV.abcaTaskTable]: ' abca-TaskTable-1 ' }).abcaTaskTable).toBe('abca-TaskTable-1');
    expect(reconcilerConfigFromEnv(names)).not.toHaveProperty('abcaTaskTable');
    expect(reconcilerConfigFromEnv({ ...names, [FLEET_ENV.abcaTaskTable]: '  ' })).not.toHaveProperty('abcaTaskTable');
  });
});
