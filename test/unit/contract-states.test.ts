/**
 * The task state machine. The expectation below is written by hand from docs/architecture.md ("Task
 * states"), NOT derived from the contract's TRANSITIONS table, so that a drift in the table
 * (an edge added or dropped) fails this test.
 */
import {
  ALL_STATUSES,
  InvalidTransitionError,
  TERMINAL_STATUSES,
  TRANSITIONS,
  TaskStatus,
  assertTransition,
  canTransition,
  isTerminal,
  statusesLeadingTo,
} from '../../daemon/src/contract';

type Status = TaskStatus;

/**
 * Allowed edges, each with the sentence of the original design (docs/architecture.md, "Task states") that justifies it.
 * Anything not listed here is forbidden.
 */
const EXPECTED_EDGES: ReadonlyArray<readonly [Status, Status, string]> = [
  // QUEUED
  ['QUEUED', 'CLAIMED', 'Claim: allowed when status = QUEUED'],
  ['QUEUED', 'CANCELLED', 'Cancel: QUEUED goes straight to CANCELLED'],
  ['QUEUED', 'FAILED', 'attempts are capped; past the cap the task is FAILED with a reason, never silently dropped'],
  // CLAIMED
  ['CLAIMED', 'RUNNING', 'Run: the first heartbeat sets status RUNNING'],
  ['CLAIMED', 'CLAIMED', 'Claim: takeover of a CLAIMED record whose lease has passed (attempt + 1)'],
  ['CLAIMED', 'CANCEL_REQUESTED', 'CANCEL_REQUESTED (from CLAIMED/RUNNING)'],
  ['CLAIMED', 'INTERRUPTED', 'INTERRUPTED: released by a draining or interrupted instance'],
  ['CLAIMED', 'FAILED', 'Prepare can fail (image, secrets); attempts past the cap are FAILED'],
  // RUNNING
  ['RUNNING', 'COMPLETED', 'Finish: one fenced terminal write'],
  ['RUNNING', 'FAILED', 'Finish: one fenced terminal write'],
  ['RUNNING', 'TIMED_OUT', 'Timeouts: timed-out tasks end TIMED_OUT'],
  ['RUNNING', 'CANCEL_REQUESTED', 'CANCEL_REQUESTED (from CLAIMED/RUNNING)'],
  ['RUNNING', 'INTERRUPTED', 'INTERRUPTED: released by a draining or interrupted instance'],
  ['RUNNING', 'CLAIMED', 'Claim: takeover of a RUNNING record whose lease has passed'],
  // CANCEL_REQUESTED
  ['CANCEL_REQUESTED', 'CANCELLED', 'Final CANCELLED is written by the daemon that ran it (or the reconciler)'],
  ['CANCEL_REQUESTED', 'COMPLETED', 'Finish: the container ended on its own before the cancel ladder reached it'],
  ['CANCEL_REQUESTED', 'FAILED', 'Finish: the container ended on its own before the cancel ladder reached it'],
  ['CANCEL_REQUESTED', 'TIMED_OUT', 'Timeouts: the timeout ladder ran first'],
  // INTERRUPTED
  ['INTERRUPTED', 'QUEUED', 'INTERRUPTED goes back to QUEUED for another attempt'],
  [
    'INTERRUPTED',
    'CLAIMED',
    'released with message visibility 0: the next attempt may claim the released record directly',
  ],
  ['INTERRUPTED', 'CANCELLED', 'nobody holds a lease (CANCEL_REQUESTED is only from CLAIMED/RUNNING): cancelled at once'],
  ['INTERRUPTED', 'FAILED', 'attempts are capped; past the cap the task is FAILED'],
];

const EXPECTED_TERMINAL: readonly Status[] = ['COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCELLED'];

/** Every status the design names, spelled out (not read from the contract). */
const DESIGN_STATUSES: readonly Status[] = [
  'QUEUED',
  'CLAIMED',
  'RUNNING',
  'CANCEL_REQUESTED',
  'INTERRUPTED',
  'COMPLETED',
  'FAILED',
  'TIMED_OUT',
  'CANCELLED',
];

const expectedAllowed = (from: Status, to: Status): boolean =>
  EXPECTED_EDGES.some(([f, t]) => f === from && t === to);

/** The full status × status matrix, each cell labelled with the expectation. */
const matrix = DESIGN_STATUSES.flatMap((from) =>
  DESIGN_STATUSES.map((to) => ({ from, to, allowed: expectedAllowed(from, to) })),
);
const allowedCells = matrix.filter((c) => c.allowed);
const forbiddenCells = matrix.filter((c) => !c.allowed);

describe('Contract: task states', () => {
  it('has exactly the statuses docs/architecture.md names', () => {
    // Prepare
    const expected = [...DESIGN_STATUSES].sort();

    // Act
    const actual = [...ALL_STATUSES].sort();

    // Assess
    expect(actual).toEqual(expected);
    expect(Object.keys(TRANSITIONS).sort()).toEqual(expected);
    expect(Object.values(TaskStatus).sort()).toEqual(expected);
  });

  it('covers the whole matrix: 81 cells, 22 allowed, 59 forbidden', () => {
    // Assess
    expect(matrix).toHaveLength(81);
    expect(allowedCells).toHaveLength(EXPECTED_EDGES.length);
    expect(allowedCells).toHaveLength(22);
    expect(forbiddenCells).toHaveLength(59);
  });

  it('lists no duplicate edges in the expectation table', () => {
    // Prepare
    const keys = EXPECTED_EDGES.map(([f, t]) => `${f}->${t}`);

    // Assess
    expect(new Set(keys).size).toBe(keys.length);
  });

  describe.each(allowedCells)('allowed: $from → $to', ({ from, to }) => {
    it('canTransition is true', () => {
      // Act
      const result = canTransition(from, to);

      // Assess
      expect(result).toBe(true);
    });

    it('assertTransition does not throw', () => {
      // Act & Assess
      expect(() => assertTransition(from, to)).not.toThrow();
    });

    it('statusesLeadingTo(to) includes from', () => {
      // Act
      const sources = statusesLeadingTo(to);

      // Assess
      expect(sources).toContain(from);
    });
  });

  describe.each(forbiddenCells)('forbidden: $from → $to', ({ from, to }) => {
    it('canTransition is false', () => {
      // Act
      const result = canTransition(from, to);

      // Assess
      expect(result).toBe(false);
    });

    it('assertTransition throws InvalidTransitionError naming both states', () => {
      // Prepare
      let thrown: unknown;

      // Act
      try {
        assertTransition(from, to);
      } catch (err) {
        thrown = err;
      }

      // Assess
      expect(thrown).toBeInstanceOf(InvalidTransitionError);
      expect(thrown).toBeInstanceOf(Error);
      const error = thrown as InvalidTransitionError;
      expect(error.name).toBe('InvalidTransitionError');
      expect(error.from).toBe(from);
      expect(error.to).toBe(to);
      expect(error.message).toContain(`from ${from} to ${to}`);
    });

    it('statusesLeadingTo(to) excludes from', () => {
      // Act
      const sources = statusesLeadingTo(to);

      // Assess
      expect(sources).not.toContain(from);
    });
  });

  it('the forbidden-transition message lists what is allowed from the source state', () => {
    // Act
    const error = new InvalidTransitionError('QUEUED', 'RUNNING');

    // Assess
    expect(error.message).toBe('task cannot go from QUEUED to RUNNING; allowed from QUEUED: CLAIMED, CANCELLED, FAILED');
  });

  describe.each(EXPECTED_TERMINAL)('terminal state %s', (terminal) => {
    it('is terminal', () => {
      // Assess
      expect(isTerminal(terminal)).toBe(true);
      expect(TERMINAL_STATUSES).toContain(terminal);
    });

    it('has no exits, not even to itself', () => {
      // Act
      const exits = DESIGN_STATUSES.filter((to) => canTransition(terminal, to));

      // Assess
      expect(exits).toEqual([]);
      expect(TRANSITIONS[terminal]).toEqual([]);
    });

    it('says so in the error message', () => {
      // Act & Assess
      expect(() => assertTransition(terminal, 'QUEUED')).toThrow(
        `task cannot go from ${terminal} to QUEUED; allowed from ${terminal}: nothing (terminal)`,
      );
    });
  });

  describe.each(DESIGN_STATUSES.filter((s) => !EXPECTED_TERMINAL.includes(s)))('non-terminal state %s', (status) => {
    it('is not terminal and has at least one exit', () => {
      // Assess
      expect(isTerminal(status)).toBe(false);
      expect(TRANSITIONS[status].length).toBeGreaterThan(0);
    });

    it('can still reach a terminal state (no dead ends)', () => {
      // Prepare
      const seen = new Set<Status>([status]);
      const frontier: Status[] = [status];

      // Act
      while (frontier.length > 0) {
        const s = frontier.pop() as Status;
        for (const next of TRANSITIONS[s]) {
          if (!seen.has(next)) {
            seen.add(next);
            frontier.push(next);
          }
        }
      }

      // Assess
      expect(EXPECTED_TERMINAL.some((t) => seen.has(t))).toBe(true);
    });
  });

  it('every status is reachable from QUEUED', () => {
    // Prepare
    const seen = new Set<Status>(['QUEUED']);
    const frontier: Status[] = ['QUEUED'];

    // Act
    while (frontier.length > 0) {
      const s = frontier.pop() as Status;
      for (const next of TRANSITIONS[s]) {
        if (!seen.has(next)) {
          seen.add(next);
          frontier.push(next);
        }
      }
    }

    // Assess
    expect([...seen].sort()).toEqual([...DESIGN_STATUSES].sort());
  });

  describe.each(DESIGN_STATUSES)('statusesLeadingTo(%s)', (to) => {
    it('is exactly the set of sources in the expectation table, in ALL_STATUSES order', () => {
      // Prepare
      const expected = DESIGN_STATUSES.filter((from) => expectedAllowed(from, to));

      // Act
      const actual = statusesLeadingTo(to);

      // Assess
      expect(actual).toEqual(expected);
      expect(actual.every((from) => canTransition(from, to))).toBe(true);
    });

    it('returns a fresh array (callers may not corrupt the table)', () => {
      // Act
      const first = statusesLeadingTo(to);
      first.push('QUEUED');
      const second = statusesLeadingTo(to);

      // Assess
      expect(second).toEqual(DESIGN_STATUSES.filter((from) => expectedAllowed(from, to)));
    });
  });

  it('no terminal state leads anywhere: statusesLeadingTo never lists one', () => {
    // Act
    const sources = DESIGN_STATUSES.flatMap((to) => statusesLeadingTo(to));

    // Assess
    expect(sources.filter((s) => EXPECTED_TERMINAL.includes(s))).toEqual([]);
  });

  describe('values that are not statuses (e.g. a raw string read from elsewhere)', () => {
    const notStatuses = ['DONE', 'queued', '', 'constructor', 'toString', '__proto__', 'hasOwnProperty'];

    it.each(notStatuses)('canTransition(%j, QUEUED) is false and does not throw', (bogus) => {
      // Act
      const result = (): boolean => canTransition(bogus as Status, 'QUEUED');

      // Assess
      expect(result).not.toThrow();
      expect(result()).toBe(false);
    });

    it.each(notStatuses)('canTransition(QUEUED, %j) is false', (bogus) => {
      // Assess
      expect(canTransition('QUEUED', bogus as Status)).toBe(false);
    });

    it.each(notStatuses)('assertTransition(%j, QUEUED) throws InvalidTransitionError, not a TypeError', (bogus) => {
      // Act & Assess
      expect(() => assertTransition(bogus as Status, 'QUEUED')).toThrow(InvalidTransitionError);
    });

    it('the message says the source is not a status rather than calling it terminal', () => {
      // Act & Assess
      expect(() => assertTransition('DONE' as Status, 'QUEUED')).toThrow(
        'task cannot go from DONE to QUEUED; allowed from DONE: nothing (not a task status)',
      );
    });

    it.each(notStatuses)('isTerminal(%j) is false', (bogus) => {
      // Assess
      expect(isTerminal(bogus as Status)).toBe(false);
    });
  });
});
