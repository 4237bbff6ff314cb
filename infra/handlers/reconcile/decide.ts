/**
 * The reconciler's pure part: its options, what to do with one record (`decideReconcile`), and
 * which of those decisions one run carries out (`planReconcile`: the queue-deficit budget).
 * No I/O and no clock here; run.ts reads, acts through the store and reports.
 *
 * It repairs what no daemon will ever finish by itself (README.md, "No task is lost"):
 *
 * - **resend**: a QUEUED task whose message nobody received (a lost enqueue: the client crashed
 *   between the record and the message), or an abandoned lease whose message is gone;
 * - **requeue**: an INTERRUPTED task whose release message was lost (INTERRUPTED → QUEUED plus
 *   a fresh message; a released task is otherwise claimed directly as INTERRUPTED);
 * - **fail**: a lease expired that no daemon may take over: the takeover cap is reached, or no
 *   attempts are left even with the dead owner's refunded (contract/takeover.ts); the reason
 *   names the takeovers or the attempts and the last instance;
 * - **cancel**: CANCEL_REQUESTED with no live lease (no daemon is left to run the cancel ladder).
 */
// The contract's modules one by one (not its index): the fleet CLI's start-up imports this file
// for `fleet reconcile`'s flag checks, and the index would build every schema of the contract.
import type { TaskRecord } from '../../../daemon/src/contract/record';
import { LEASED_STATUSES, TaskStatus, isTerminal } from '../../../daemon/src/contract/states';
import { takeoverVerdict } from '../../../daemon/src/contract/takeover';
import { DEFAULT_TIMINGS, INSTANCE_HEARTBEAT_JITTER, instanceStaleAfterMs, type Timings } from '../../../daemon/src/contract/timings';

// ---------------------------------------------------------------------------------------------
// Options

export interface DecideOptions {
  /**
   * How long a task's message may have been visible (sent, released, or its lease expired)
   * without any daemon acting before the reconciler assumes the message is lost and sends a
   * new one. Must exceed the lease (= message visibility): a daemon that received the message
   * and died before claiming keeps it invisible that long.
   * @default 300_000 (5 minutes), or 2.5 leases when `timings` has a longer lease
   */
  readonly resendAfterMs?: number;
}

export interface ReconcileOptions extends DecideOptions {
  /**
   * An instance whose `heartbeat_at` is older than this is reported stale.
   * @default instanceStaleAfterMs(timings): 2.5 instance heartbeats, 900_000 ms (15 min) with
   * the default 360 s heartbeat (contract/timings.ts)
   */
  readonly staleInstanceAfterMs?: number;
  /**
   * Resend at most as many messages as the queue is short of: (records that should have a
   * visible message) − (visible + delayed messages). Without it, a long backlog with every
   * instance busy would look like thousands of lost messages and be duplicated every window,
   * inflating the scaler's backlog. Duplicates are harmless to correctness (claims are
   * conditional), so when the queue cannot be read the reconciler resends all stale tasks.
   * @default true
   */
  readonly limitResendsToQueueDeficit?: boolean;
  /**
   * Tasks acted on in parallel.
   * @default 8
   */
  readonly concurrency?: number;
  /**
   * The fleet's timings (lease, heartbeat), when fleetd runs with other than the defaults; the
   * other options are checked against them.
   * @default DEFAULT_TIMINGS
   */
  readonly timings?: Timings;
}

export const RECONCILE_DEFAULTS = Object.freeze({
  resendAfterMs: 5 * 60_000,
  staleInstanceAfterMs: instanceStaleAfterMs(DEFAULT_TIMINGS),
  limitResendsToQueueDeficit: true,
  concurrency: 8,
  timings: DEFAULT_TIMINGS,
});

export type ResolvedReconcileOptions = Required<ReconcileOptions>;

/** Thrown for invalid options: says what was got, what is expected, and the fix. */
export class ReconcilerOptionsError extends Error {
  override readonly name = 'ReconcilerOptionsError';
  constructor(readonly problems: string[]) {
    super(`invalid reconciler options: ${problems.join('; ')}`);
  }
}

/** Fills the defaults (derived from the timings) and checks every option; all problems at once. */
export function resolveReconcileOptions(options: ReconcileOptions = {}): ResolvedReconcileOptions {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<ReconcileOptions>;
  const timings = given.timings ?? DEFAULT_TIMINGS;
  const leaseMs = timings.leaseSeconds * 1000;
  const defaults = {
    ...RECONCILE_DEFAULTS,
    resendAfterMs: Math.max(RECONCILE_DEFAULTS.resendAfterMs, 2.5 * leaseMs),
    staleInstanceAfterMs: instanceStaleAfterMs(timings),
  };
  const o: ResolvedReconcileOptions = { ...defaults, ...given, timings };
  const problems: string[] = [];
  if (!Number.isFinite(o.resendAfterMs) || o.resendAfterMs <= leaseMs) {
    problems.push(
      `resendAfterMs: got ${o.resendAfterMs}, expected more than the lease (${leaseMs} ms), or a message a daemon holds invisibly would be duplicated; raise it (default ${defaults.resendAfterMs})`,
    );
  }
  // The longest gap between two row writes of a live fleetd: the interval plus its jitter.
  const longestGapMs = timings.instanceHeartbeatSeconds * 1000 * (1 + INSTANCE_HEARTBEAT_JITTER);
  if (!Number.isFinite(o.staleInstanceAfterMs) || o.staleInstanceAfterMs < 2 * longestGapMs) {
    problems.push(
      `staleInstanceAfterMs: got ${o.staleInstanceAfterMs}, expected at least two instance heartbeats with their jitter (${2 * longestGapMs} ms) so one late heartbeat is not reported; raise it`,
    );
  }
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > 64) {
    problems.push(`concurrency: got ${o.concurrency}, expected an integer 1..64`);
  }
  if (problems.length > 0) throw new ReconcilerOptionsError(problems);
  return o;
}

// ---------------------------------------------------------------------------------------------
// One record

export type ReconcileDecision =
  | { readonly action: 'none'; readonly why: string }
  | { readonly action: 'resend'; readonly why: string; readonly visibleSince: number }
  | { readonly action: 'requeue'; readonly why: string; readonly visibleSince: number }
  | { readonly action: 'fail'; readonly reason: string }
  | { readonly action: 'cancel'; readonly reason: string };

export type ReconcileAction = ReconcileDecision['action'];

const iso = (ms: number | undefined): string => (ms === undefined ? 'never' : new Date(ms).toISOString());

/**
 * A lease is live while `lease_expires_at >= now`; a missing lease is dead. The claim uses the
 * same rule (README.md, "No task runs twice concurrently").
 */
export function leaseIsLive(record: Pick<TaskRecord, 'lease_expires_at'>, now: number): boolean {
  return record.lease_expires_at !== undefined && record.lease_expires_at >= now;
}

/**
 * Since when the task's message has been (or should have been) visible to the daemons: the
 * later of its last send and the moment its status last changed (a release makes the message
 * visible at once) or, for a leased task, its lease expiry (visibility = lease).
 */
export function messageVisibleSince(record: TaskRecord): number {
  const sent = Math.max(record.message_sent_at ?? 0, record.updated_at);
  return LEASED_STATUSES.includes(record.status) ? Math.max(sent, record.lease_expires_at ?? 0) : sent;
}

/**
 * Whether a receivable SQS message should exist for this task right now (what the deficit
 * guard counts): claimable tasks, and abandoned leases a daemon could still take over.
 */
export function expectsVisibleMessage(record: TaskRecord, now: number): boolean {
  if (record.status === TaskStatus.QUEUED || record.status === TaskStatus.INTERRUPTED) return record.attempts_left > 0;
  if ((record.status !== TaskStatus.CLAIMED && record.status !== TaskStatus.RUNNING) || leaseIsLive(record, now)) return false;
  const verdict = takeoverVerdict(record);
  return verdict.ok && verdict.attemptsLeft > 0;
}

function lastHolder(record: TaskRecord): string {
  return `attempt ${record.attempt} on ${record.instance_id ?? 'no instance'}`;
}

/** What the reconciler should do with one record at `now`. Pure: no I/O, no clock. */
export function decideReconcile(record: TaskRecord, now: number, opts: DecideOptions = {}): ReconcileDecision {
  const resendAfterMs = opts.resendAfterMs ?? RECONCILE_DEFAULTS.resendAfterMs;
  const { status } = record;
  if (isTerminal(status)) return { action: 'none', why: `${status} is terminal` };

  const visibleSince = messageVisibleSince(record);
  const silentMs = now - visibleSince;
  const stale = silentMs > resendAfterMs;

  if (status === TaskStatus.CANCEL_REQUESTED) {
    // t0 cancel requested (daemon holds lease until L) ─ daemon runs the ladder, writes CANCELLED.
    // t0 cancel requested ─ daemon dies ─ L passes ─ nobody will ever write CANCELLED → we do.
    // Cancel wins over the attempt cap: the submitter asked for the task to stop.
    if (leaseIsLive(record, now)) return { action: 'none', why: `cancel in progress: lease live until ${iso(record.lease_expires_at)}` };
    return {
      action: 'cancel',
      reason: `cancel requested at ${iso(record.cancel_requested_at)}; no daemon holds the lease (${lastHolder(record)}, lease expired ${iso(record.lease_expires_at)}), cancelled by the reconciler`,
    };
  }

  if (status === TaskStatus.CLAIMED || status === TaskStatus.RUNNING) {
    // claim (attempt n, lease L) ─ heartbeats push L ahead ─ … nothing for us while L ≥ now.
    if (leaseIsLive(record, now)) return { action: 'none', why: `lease live until ${iso(record.lease_expires_at)}` };
    // … daemon dies ─ L passes ─ message visible again ─ another daemon takes over (attempt n+1,
    // the dead owner's attempt refunded), unless the takeover cap is reached or no attempts are
    // left even so: then no claim may succeed and the task would sit forever.
    const verdict = takeoverVerdict(record);
    if (!verdict.ok) return { action: 'fail', reason: `${verdict.reason} (its lease expired at ${iso(record.lease_expires_at)}); failed by the reconciler` };
    if (verdict.attemptsLeft <= 0) {
      return {
        action: 'fail',
        reason: `lease of attempt ${record.attempt} on ${record.instance_id ?? 'an unknown instance'} expired at ${iso(record.lease_expires_at)} and no attempts are left (${record.attempt} attempts made); failed by the reconciler`,
      };
    }
    // … L passes ─ resendAfter more passes and still no takeover: the message is gone (deleted,
    // dead-lettered, expired); send a new one so a daemon can take the lease over.
    if (stale) return { action: 'resend', visibleSince, why: `lease expired ${iso(record.lease_expires_at)} and no daemon took it over for ${Math.round(silentMs / 1000)} s` };
    return { action: 'none', why: `lease expired ${iso(record.lease_expires_at)}; waiting for a takeover` };
  }

  // QUEUED / INTERRUPTED: claimable.
  if (record.attempts_left <= 0) {
    // A claim past the cap would only fail it; do so now rather than wait for a message that
    // may never come.
    return {
      action: 'fail',
      reason: `${status} with no attempts left (${record.attempt} attempts made, last ${lastHolder(record)}); failed by the reconciler`,
    };
  }
  if (status === TaskStatus.QUEUED) {
    // put record ─ (client crashes) ─ no SendMessage: nothing will ever receive it.
    // put record ─ send at S ─ message waits while every slot is busy: looks the same from here,
    // hence the queue-deficit budget (planReconcile) before acting on this decision.
    if (stale) return { action: 'resend', visibleSince, why: `QUEUED and no daemon received its message for ${Math.round(silentMs / 1000)} s` };
    return { action: 'none', why: `QUEUED; message sent ${iso(record.message_sent_at)}` };
  }
  // INTERRUPTED: released at R with the message made visible at R; a daemon claims the
  // INTERRUPTED record directly, so nothing to do. Only when the release message was lost
  // (visibility change failed and the message was dead-lettered or deleted) and nobody claimed
  // it within the window: back to QUEUED with a fresh message.
  if (stale) return { action: 'requeue', visibleSince, why: `INTERRUPTED and not claimed for ${Math.round(silentMs / 1000)} s since its release` };
  return { action: 'none', why: `INTERRUPTED at ${iso(record.updated_at)}; a daemon will claim it from the released message` };
}

// ---------------------------------------------------------------------------------------------
// One run

export interface Decided {
  readonly record: TaskRecord;
  readonly decision: ReconcileDecision;
}

export interface ReconcilePlan {
  /** What to carry out: every fail and cancel, and the resends / requeues within the budget. */
  readonly work: readonly Decided[];
  /** Stale tasks whose resend the queue-deficit budget held back this run. */
  readonly resendDeferred: number;
}

/**
 * Which decisions one run carries out. `queued`: the messages the queue holds (visible +
 * delayed), or undefined when it was not read (the guard is off, or the read failed): then
 * every stale task is resent. Otherwise at most (records that should have a visible message)
 * − `queued` resends, the longest-silent first.
 */
export function planReconcile(decided: readonly Decided[], now: number, queued: number | undefined): ReconcilePlan {
  const resends = decided
    .filter((d) => d.decision.action === 'resend' || d.decision.action === 'requeue')
    .sort((a, b) => visibleSinceOf(a.decision) - visibleSinceOf(b.decision));
  const expected = decided.filter((d) => expectsVisibleMessage(d.record, now)).length;
  const budget = queued === undefined ? resends.length : Math.min(resends.length, Math.max(0, expected - queued));
  const allowed = new Set(resends.slice(0, budget));
  return {
    work: decided.filter((d) => d.decision.action === 'fail' || d.decision.action === 'cancel' || allowed.has(d)),
    resendDeferred: resends.length - budget,
  };
}

function visibleSinceOf(d: ReconcileDecision): number {
  return 'visibleSince' in d ? d.visibleSince : 0;
}
