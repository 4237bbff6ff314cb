/**
 * fleetd's own state machine (daemon/src/fleetd-state.ts): every allowed transition, every
 * refused one, and the "not claiming" reason derived from the state and the receive gates.
 */
import {
  FLEETD_TRANSITIONS,
  FleetdStateHolder,
  IllegalTransitionError,
  advertisedStatus,
  canTransition,
  drainOf,
  isParked,
  isReceiving,
  leavingReason,
  notClaimingReason,
  transition,
  type FleetdState,
  type FleetdStateKind,
} from '../../daemon/src/fleetd-state';
import { InstanceStatus } from '../../daemon/src/contract';

const EXAMPLES: Record<FleetdStateKind, FleetdState> = {
  booting: { kind: 'booting' },
  warm: { kind: 'warm', target: 'Warmed:Pending:Wait' },
  serving: { kind: 'serving' },
  paused: { kind: 'paused', reason: 'idle-check' },
  retiring: { kind: 'retiring', reason: 'rollout to launch template version 2 (this instance runs 1)', since: 1_000 },
  draining: { kind: 'draining', reason: 'SIGTERM received', since: 1_000 },
  stopped: { kind: 'stopped', drain: { reason: 'SIGTERM received', since: 1_000 } },
};
const KINDS = Object.keys(EXAMPLES) as FleetdStateKind[];

/** Written by hand from the diagram in fleetd-state.ts, not derived from the table. */
const ALLOWED: Array<[FleetdStateKind, FleetdStateKind]> = [
  ['booting', 'warm'],
  ['booting', 'serving'],
  ['warm', 'serving'],
  ['warm', 'draining'],
  ['warm', 'stopped'],
  ['booting', 'draining'],
  ['booting', 'stopped'],
  ['serving', 'paused'],
  ['serving', 'draining'],
  ['serving', 'retiring'],
  ['retiring', 'serving'],
  ['retiring', 'draining'],
  ['paused', 'serving'],
  ['paused', 'draining'],
  ['draining', 'draining'],
  ['draining', 'stopped'],
];
const isAllowed = (from: FleetdStateKind, to: FleetdStateKind) => ALLOWED.some(([f, t]) => f === from && t === to);
const REFUSED = KINDS.flatMap((from) => KINDS.filter((to) => !isAllowed(from, to)).map((to) => [from, to] as [FleetdStateKind, FleetdStateKind]));

describe('fleetd state: transitions', () => {
  it('the table lists exactly the allowed transitions', () => {
    // Act
    const table = KINDS.flatMap((from) => FLEETD_TRANSITIONS[from].map((to) => `${from}→${to}`)).sort();

    // Assess
    expect(table).toEqual(ALLOWED.map(([f, t]) => `${f}→${t}`).sort());
  });

  describe.each(ALLOWED)('allowed: %s → %s', (from, to) => {
    it('is applied', () => {
      // Act
      const next = transition(EXAMPLES[from], EXAMPLES[to]);

      // Assess
      expect(canTransition(from, to)).toBe(true);
      expect(next).toEqual(EXAMPLES[to]);
    });
  });

  describe.each(REFUSED)('refused: %s → %s', (from, to) => {
    it('throws IllegalTransitionError', () => {
      // Act
      const act = () => transition(EXAMPLES[from], EXAMPLES[to]);

      // Assess
      expect(canTransition(from, to)).toBe(false);
      expect(act).toThrow(IllegalTransitionError);
      expect(act).toThrow(`${from} → ${to} is not an allowed transition`);
    });
  });

  it('stopped is terminal', () => {
    // Assess
    expect(FLEETD_TRANSITIONS.stopped).toEqual([]);
  });
});

describe('fleetd state: derived facts', () => {
  it.each([
    ['booting', false],
    ['serving', true],
    ['paused', true],
    ['retiring', true],
    ['draining', false],
    ['stopped', false],
  ] as const)('%s: receiving is %s', (kind, receiving) => {
    // Assess
    expect(isReceiving(EXAMPLES[kind])).toBe(receiving);
  });

  it.each([
    ['serving', false],
    ['paused', true],
    ['retiring', true],
    ['draining', false],
  ] as const)('%s: the slots are parked: %s', (kind, parked) => {
    // Assess
    expect(isParked(EXAMPLES[kind])).toBe(parked);
  });

  it.each<[FleetdStateKind, number, boolean, InstanceStatus]>([
    ['serving', 0, false, InstanceStatus.IDLE],
    ['serving', 1, false, InstanceStatus.BUSY],
    ['serving', 1, true, InstanceStatus.BUSY],
    ['retiring', 1, false, InstanceStatus.RETIRING],
    ['retiring', 0, false, InstanceStatus.RETIRING],
    ['retiring', 1, true, InstanceStatus.RETIRING],
    ['draining', 1, false, InstanceStatus.BUSY],
    ['draining', 0, false, InstanceStatus.DRAINING],
    ['draining', 1, true, InstanceStatus.DRAINING],
  ])('advertised: %s with %i running (claimed %s) is %s', (kind, running, claimed, expected) => {
    // Assess
    expect(advertisedStatus(EXAMPLES[kind], running, claimed)).toBe(expected);
  });

  it('leavingReason: the retirement\'s or the drain\'s reason, none while serving', () => {
    // Assess
    expect(leavingReason(EXAMPLES.retiring)).toMatch(/^rollout to launch template version 2/);
    expect(leavingReason(EXAMPLES.draining)).toBe('SIGTERM received');
    expect(leavingReason(EXAMPLES.serving)).toBeUndefined();
  });

  it('drainOf: the drain under way, the one a stop ended, or none', () => {
    // Assess
    expect(drainOf(EXAMPLES.draining)).toMatchObject({ reason: 'SIGTERM received' });
    expect(drainOf(EXAMPLES.stopped)).toMatchObject({ reason: 'SIGTERM received' });
    expect(drainOf(EXAMPLES.serving)).toBeUndefined();
  });

  const free = { running: 0, total: 2 };
  const full = { running: 2, total: 2 };
  it.each<[string, FleetdState, { disk?: string; engine?: string }, { running: number; total: number }, string | null]>([
    ['booting', EXAMPLES.booting, {}, free, 'booting'],
    ['draining wins over the gates', EXAMPLES.draining, { disk: 'low disk on /w', engine: 'engine down' }, free, 'draining: SIGTERM received'],
    ['stopped after a drain', EXAMPLES.stopped, {}, free, 'stopped after draining: SIGTERM received'],
    ['stopped after a failed boot', { kind: 'stopped' }, {}, free, 'stopped'],
    ['serving, disk short', EXAMPLES.serving, { disk: 'low disk on /w' }, free, 'low disk on /w'],
    ['serving, disk before engine', EXAMPLES.serving, { disk: 'low disk on /w', engine: 'engine down' }, free, 'low disk on /w'],
    ['serving, engine down', EXAMPLES.serving, { engine: 'engine down' }, free, 'engine down'],
    ['paused for the idle check', EXAMPLES.paused, {}, free, 'idle check in progress: receiving paused'],
    ['paused on a short disk: the disk is named', EXAMPLES.paused, { disk: 'low disk on /w' }, free, 'low disk on /w'],
    ['retiring, whatever the gates', EXAMPLES.retiring, { disk: 'low disk on /w' }, free, 'retiring: rollout to launch template version 2 (this instance runs 1); finishing the running tasks, then terminating'],
    ['serving, every slot busy', EXAMPLES.serving, {}, full, 'every slot is busy'],
    ['serving, a slot free', EXAMPLES.serving, {}, free, null],
  ])('not claiming: %s', (_name, state, gates, slots, expected) => {
    // Assess
    expect(notClaimingReason(state, gates, slots)).toBe(expected);
  });
});

describe('fleetd state: the holder', () => {
  it('starts booting, applies transitions and refuses illegal ones without changing state', () => {
    // Prepare
    const h = new FleetdStateHolder();

    // Act
    h.to({ kind: 'serving' });
    const illegal = () => h.to({ kind: 'booting' });

    // Assess
    expect(illegal).toThrow(IllegalTransitionError);
    expect(h.current).toEqual({ kind: 'serving' });
  });

  it('unpaused() resolves when the pause ends, at once when not paused', async () => {
    // Prepare
    const h = new FleetdStateHolder();
    h.to({ kind: 'serving' });
    await expect(h.unpaused()).resolves.toBeUndefined();
    h.to({ kind: 'paused', reason: 'idle-check' });
    let resumed = false;
    const parked = h.unpaused().then(() => (resumed = true));

    // Act
    await Promise.resolve();
    const before = resumed;
    h.to({ kind: 'serving' });
    await parked;

    // Assess
    expect(before).toBe(false);
    expect(resumed).toBe(true);
  });

  it('a drain ends a pause and aborts receiveEnded', async () => {
    // Prepare
    const h = new FleetdStateHolder();
    h.to({ kind: 'serving' });
    h.to({ kind: 'paused', reason: 'idle-check' });
    const parked = h.unpaused();
    expect(h.receiveEnded.aborted).toBe(false);

    // Act
    h.to({ kind: 'draining', reason: 'spot', since: 1 });

    // Assess
    await expect(parked).resolves.toBeUndefined();
    expect(h.receiveEnded.aborted).toBe(true);
  });

  it('a retirement parks the slots: unpaused() resolves when it is aborted (serving) or becomes a drain', async () => {
    // Prepare
    const h = new FleetdStateHolder();
    h.to({ kind: 'serving' });
    h.to(EXAMPLES.retiring);
    let resumed = false;
    const parked = h.unpaused().then(() => (resumed = true));

    // Act
    await Promise.resolve();
    const before = resumed;
    h.to({ kind: 'serving' });
    await parked;
    h.to(EXAMPLES.retiring);
    const parkedAgain = h.unpaused();
    h.to({ kind: 'draining', reason: 'rollout: retired', since: 2 });

    // Assess
    expect(before).toBe(false);
    expect(resumed).toBe(true);
    await expect(parkedAgain).resolves.toBeUndefined();
    expect(h.receiveEnded.aborted).toBe(true);
  });
});
