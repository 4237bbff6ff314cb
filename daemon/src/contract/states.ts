/**
 * Task states and the allowed-transition table. This table is the single source every writer
 * (fleetd, the client library, the reconciler) consults; each DynamoDB write is additionally
 * conditional on the expected current state, so the table and the conditions agree.
 */
export const TaskStatus = {
  QUEUED: 'QUEUED',
  CLAIMED: 'CLAIMED',
  RUNNING: 'RUNNING',
  CANCEL_REQUESTED: 'CANCEL_REQUESTED',
  INTERRUPTED: 'INTERRUPTED',
  COMPLETED: 'COMPLETED',
  FAILED: 'FAILED',
  TIMED_OUT: 'TIMED_OUT',
  CANCELLED: 'CANCELLED',
} as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];

export const ALL_STATUSES: readonly TaskStatus[] = Object.values(TaskStatus);

export const TERMINAL_STATUSES: readonly TaskStatus[] = [
  TaskStatus.COMPLETED,
  TaskStatus.FAILED,
  TaskStatus.TIMED_OUT,
  TaskStatus.CANCELLED,
];

/** States in which an instance holds a lease on the task (lease_expires_at is meaningful). */
export const LEASED_STATUSES: readonly TaskStatus[] = [
  TaskStatus.CLAIMED,
  TaskStatus.RUNNING,
  TaskStatus.CANCEL_REQUESTED,
];

/** States from which a daemon may claim the task without a takeover. */
export const CLAIMABLE_STATUSES: readonly TaskStatus[] = [TaskStatus.QUEUED, TaskStatus.INTERRUPTED];

/**
 * from → allowed next states.
 * - CLAIMED → CLAIMED and RUNNING → CLAIMED are takeovers of an expired lease (attempt + 1, the dead owner's attempt refunded, `takeovers` + 1; contract/takeover.ts).
 * - CANCEL_REQUESTED may still end COMPLETED / FAILED / TIMED_OUT: the container's own outcome
 *   wins when it ended before the cancel ladder reached it.
 * - INTERRUPTED is a released task: claimable again, or sent back to QUEUED by the reconciler.
 * - Only tasks nobody holds a lease on (QUEUED, INTERRUPTED) are cancelled at once; CLAIMED and
 *   RUNNING go through CANCEL_REQUESTED (docs/architecture.md, task states).
 */
export const TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  QUEUED: ['CLAIMED', 'CANCELLED', 'FAILED'],
  CLAIMED: ['RUNNING', 'CLAIMED', 'CANCEL_REQUESTED', 'INTERRUPTED', 'FAILED'],
  RUNNING: ['COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCEL_REQUESTED', 'INTERRUPTED', 'CLAIMED'],
  CANCEL_REQUESTED: ['CANCELLED', 'COMPLETED', 'FAILED', 'TIMED_OUT'],
  INTERRUPTED: ['QUEUED', 'CLAIMED', 'CANCELLED', 'FAILED'],
  COMPLETED: [],
  FAILED: [],
  TIMED_OUT: [],
  CANCELLED: [],
};

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** Exits of `from`; none for a value that is not a status (never a property of Object.prototype). */
function exitsOf(from: TaskStatus): readonly TaskStatus[] {
  return Object.hasOwn(TRANSITIONS, from) ? TRANSITIONS[from] : [];
}

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return exitsOf(from).includes(to);
}

/** The states from which `to` may be reached: what a conditional write on `status` must allow. */
export function statusesLeadingTo(to: TaskStatus): TaskStatus[] {
  return ALL_STATUSES.filter((from) => canTransition(from, to));
}

export class InvalidTransitionError extends Error {
  override readonly name = 'InvalidTransitionError';
  constructor(
    readonly from: TaskStatus,
    readonly to: TaskStatus,
  ) {
    const none = Object.hasOwn(TRANSITIONS, from) ? 'nothing (terminal)' : 'nothing (not a task status)';
    super(`task cannot go from ${from} to ${to}; allowed from ${from}: ${exitsOf(from).join(', ') || none}`);
  }
}

export function assertTransition(from: TaskStatus, to: TaskStatus): void {
  if (!canTransition(from, to)) throw new InvalidTransitionError(from, to);
}

/** Event types appended to the events table: every transition plus a few non-state facts. */
export const EventType = {
  SUBMITTED: 'SUBMITTED',
  CLAIMED: 'CLAIMED',
  TAKEN_OVER: 'TAKEN_OVER',
  RUNNING: 'RUNNING',
  CANCEL_REQUESTED: 'CANCEL_REQUESTED',
  INTERRUPTED: 'INTERRUPTED',
  REQUEUED: 'REQUEUED',
  COMPLETED: 'COMPLETED',
  FAILED: 'FAILED',
  TIMED_OUT: 'TIMED_OUT',
  CANCELLED: 'CANCELLED',
  FENCED_OUT: 'FENCED_OUT',
  MESSAGE_RESENT: 'MESSAGE_RESENT',
  REJECTED: 'REJECTED',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];
