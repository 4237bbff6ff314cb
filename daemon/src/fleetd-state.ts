/**
 * fleetd's own state: one discriminated type, the allowed transitions in one table, and why
 * the daemon is not claiming derived from it. The instance's advertised status (tags, instance
 * row: idle / busy / draining) is InstanceState's (instance.ts); this is the daemon's mode.
 *
 *   booting ──► warm ──► serving ◄──► paused (idle check)
 *      │         │          │  ▲         │
 *      │         │          ▼  │         │
 *      │         │       retiring (rollout)
 *      │         │          │            │
 *      └─────────┴──────────┴─► draining ◄┘ ──► stopped
 *   booting ──► stopped (the boot failed);  warm ──► stopped (stopped in the warm pool)
 *
 * - booting: preflight and recovery (docs/lifecycle.md "Boot"); nothing is received.
 * - warm: the instance is in the group's warm pool (target lifecycle state `Warmed:*`):
 *   prepared (preflight passed, prepull images pulled, readiness hook completed), the slots not
 *   started. It ends in serving when the target becomes InService, in stopped when the instance
 *   is stopped in the pool (SIGTERM: nothing to drain), in draining when it is terminated.
 * - serving: the receive loop polls the queue for the free slots.
 * - paused: the receive loop is parked; the only reason today is the idle check (docs/lifecycle.md
 *   "Idle self-termination"), which waits for the long polls in flight before asking to be
 *   terminated. It ends back in serving, or in draining when the instance terminates itself.
 * - retiring: a rollout to another launch template version is under way (contract/rollout.ts,
 *   rollout-watch.ts): the receive loop is parked like a pause and claim nothing new; running tasks
 *   go on with no deadline but their own timeouts, heartbeats included. It ends in draining
 *   once nothing runs (the instance then terminates itself), in serving when the rollout is
 *   aborted, or in draining on a signal, spot notice or termination hook (their own rules).
 * - draining: no receive; running tasks get the budget, then are released. `releasing` is set
 *   once they are being released (spot notice, a second signal, the budget spent): a task
 *   claimed from then on is released at once. draining → draining only sets `releasing`.
 * - stopped: drained, servers closed (or the boot failed). Terminal.
 *
 * Decision: a short disk and an unanswering Docker engine are not states but receive gates
 * (`ReceiveGates`, kept beside the state). The receive loop re-checks them before every receive and
 * they clear themselves; they can hold together, and together with an idle-check pause (an
 * instance idle on a short disk still terminates itself); a drain overrides them without a
 * transition. Making them states would need a pause stack and priorities between pauses.
 *
 * Decision: the warm pool is a state, not a gate. It is not re-checked per receive and does not
 * clear itself: Auto Scaling moves the instance out of the pool, the IMDS watcher sees it, and
 * the slots start then (readiness.ts). It only ever precedes serving, so it needs no pause
 * stack; and with no receive loop running there is no long poll in flight to wait for, nor a
 * message a warm instance could receive and strand.
 */
import { InstanceStatus } from './contract';
import type { Interruption } from './lifecycle';

export type PauseReason = 'idle-check';

export type FleetdState =
  | { readonly kind: 'booting' }
  | { readonly kind: 'warm'; readonly target: string }
  | { readonly kind: 'serving' }
  | { readonly kind: 'paused'; readonly reason: PauseReason }
  | { readonly kind: 'retiring'; readonly reason: string; readonly since: number }
  | { readonly kind: 'draining'; readonly reason: string; readonly since: number; readonly releasing?: string }
  | { readonly kind: 'stopped'; readonly drain?: { readonly reason: string; readonly since: number; readonly releasing?: string } };

export type FleetdStateKind = FleetdState['kind'];

/** The allowed transitions, by kind. Anything else is a bug and throws. */
export const FLEETD_TRANSITIONS: Readonly<Record<FleetdStateKind, readonly FleetdStateKind[]>> = {
  booting: ['warm', 'serving', 'draining', 'stopped'],
  warm: ['serving', 'draining', 'stopped'],
  serving: ['paused', 'retiring', 'draining'],
  paused: ['serving', 'draining'],
  retiring: ['serving', 'draining'],
  draining: ['draining', 'stopped'],
  stopped: [],
};

export class IllegalTransitionError extends Error {
  override readonly name = 'IllegalTransitionError';
  constructor(
    readonly from: FleetdStateKind,
    readonly to: FleetdStateKind,
  ) {
    super(`fleetd state: ${from} → ${to} is not an allowed transition`);
  }
}

export function canTransition(from: FleetdStateKind, to: FleetdStateKind): boolean {
  return FLEETD_TRANSITIONS[from].includes(to);
}

/** The next state, or IllegalTransitionError. Pure: the holder below applies it. */
export function transition(from: FleetdState, to: FleetdState): FleetdState {
  if (!canTransition(from.kind, to.kind)) throw new IllegalTransitionError(from.kind, to.kind);
  return to;
}

/** Conditions re-checked before every receive (see the decision above). */
export interface ReceiveGates {
  /** `low disk on …` / `low inodes on …` from the last check, or undefined. */
  readonly disk?: string;
  /** The Docker engine does not answer, or undefined. */
  readonly engine?: string;
}

/** True while the receive loop runs (serving, or parked by a pause or a retirement). */
export function isReceiving(s: FleetdState): boolean {
  return s.kind === 'serving' || s.kind === 'paused' || s.kind === 'retiring';
}

/** The receive loop runs but is parked: no long poll starts (idle check, retiring). */
export function isParked(s: FleetdState): boolean {
  return s.kind === 'paused' || s.kind === 'retiring';
}

/** The drain under way, or the one that ended in `stopped`. */
export function drainOf(s: FleetdState): { reason: string; since: number; releasing?: string } | undefined {
  return s.kind === 'draining' ? s : s.kind === 'stopped' ? s.drain : undefined;
}

/** The reason the instance row carries while the instance is leaving: the retirement's or the drain's. */
export function leavingReason(s: FleetdState): string | undefined {
  return s.kind === 'retiring' ? s.reason : drainOf(s)?.reason;
}

/**
 * What the instance advertises (tags, instance row) for a state and its running tasks; `claimed`
 * right after a claim (busy, or draining when a drain is under way).
 */
export function advertisedStatus(s: FleetdState, running: number, claimed = false): InstanceStatus {
  if (s.kind === 'retiring') return InstanceStatus.RETIRING;
  const leaving = drainOf(s) !== undefined;
  if (claimed) return leaving ? InstanceStatus.DRAINING : InstanceStatus.BUSY;
  return running ? InstanceStatus.BUSY : leaving ? InstanceStatus.DRAINING : InstanceStatus.IDLE;
}

/** Why no message is being received right now, or null when the receive loop polls for free slots. */
export function notClaimingReason(s: FleetdState, gates: ReceiveGates, slots: { running: number; total: number }): string | null {
  switch (s.kind) {
    case 'booting':
      return 'booting';
    case 'warm':
      return `warm pool (target lifecycle state ${s.target}): prepared, not claiming until InService`;
    case 'draining':
      return `draining: ${s.reason}`;
    case 'stopped':
      return s.drain ? `stopped after draining: ${s.drain.reason}` : 'stopped';
    case 'retiring':
      return `retiring: ${s.reason}; finishing the running tasks, then terminating`;
    case 'serving':
    case 'paused':
      if (gates.disk) return gates.disk;
      if (gates.engine) return gates.engine;
      if (s.kind === 'paused') return 'idle check in progress: receiving paused';
      return slots.running >= slots.total ? 'every slot is busy' : null;
  }
}

/**
 * The one mutable holder. Transitions go through `to()`; `receiveEnded` aborts when receiving
 * ends for good (ends the sleeps of the receive loop and the idle loop); `unpaused()` resolves when a
 * pause or a retirement ends (the parked receive loop resumes, or sees that receiving ended).
 */
export class FleetdStateHolder {
  private s: FleetdState = { kind: 'booting' };
  private readonly ended = new AbortController();
  private unpause?: { promise: Promise<void>; open: () => void };
  /** The IMDS interruption seen first, if any (kept for status). */
  interruption?: Interruption;

  get current(): FleetdState {
    return this.s;
  }

  get receiveEnded(): AbortSignal {
    return this.ended.signal;
  }

  to(next: FleetdState): FleetdState {
    const prev = this.s;
    this.s = transition(prev, next);
    if (isParked(prev) && !isParked(next)) {
      const p = this.unpause;
      this.unpause = undefined;
      p?.open();
    }
    // Receiving ends for good only here (warm → serving is still to come).
    if (next.kind === 'draining' || next.kind === 'stopped') this.ended.abort();
    return this.s;
  }

  /** Resolves when the current pause or retirement ends (at once when not parked). */
  unpaused(): Promise<void> {
    if (!isParked(this.s)) return Promise.resolve();
    if (!this.unpause) {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      this.unpause = { promise, open };
    }
    return this.unpause.promise;
  }
}
