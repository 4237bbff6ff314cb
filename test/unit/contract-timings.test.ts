/**
 * Timing defaults and their cross-field checks: each problem is reported on its own, with what
 * was got, what is expected and how to fix it.
 */
import {
  DEFAULT_TIMINGS,
  LIMITS,
  instanceHeartbeatDelayMs,
  instanceStaleAfterMs,
  SQS_MAX_TOTAL_VISIBILITY_SECONDS,
  SQS_MAX_WAIT_SECONDS,
  validateTimings,
  type Timings,
} from '../../daemon/src/contract';

const makeTimings = (overrides: Partial<Record<keyof Timings, number>> = {}): Timings => ({
  ...DEFAULT_TIMINGS,
  ...overrides,
});

describe('Contract: timings', () => {
  describe('defaults (docs/architecture.md "Timings")', () => {
    it.each([
      ['longPollSeconds', 20],
      ['heartbeatSeconds', 30],
      ['instanceHeartbeatSeconds', 360],
      ['leaseSeconds', 120],
      ['cancelGraceSeconds', 30],
      ['maxAttempts', 3],
      ['idleBeforeTerminateSeconds', 10 * 60],
      ['defaultTaskTimeoutSeconds', 2 * 3600],
      ['maxTaskTimeoutSeconds', 11 * 3600],
      ['scalerTickSeconds', 10],
    ] as const)('%s is %d', (key, value) => {
      // Assess
      expect(DEFAULT_TIMINGS[key]).toBe(value);
    });

    it('pass their own validation', () => {
      // Act
      const problems = validateTimings(DEFAULT_TIMINGS);

      // Assess
      expect(problems).toEqual([]);
    });

    it('are frozen: nobody changes them by accident', () => {
      // Assess
      expect(Object.isFrozen(DEFAULT_TIMINGS)).toBe(true);
      expect(Object.isFrozen(LIMITS)).toBe(true);
    });

    it('state the SQS limits they are checked against', () => {
      // Assess
      expect(SQS_MAX_TOTAL_VISIBILITY_SECONDS).toBe(12 * 3600);
      expect(SQS_MAX_WAIT_SECONDS).toBe(20);
    });
  });

  describe('the instance heartbeat (instance row, rollout marker read)', () => {
    it('waits the interval plus 0–10 % jitter, never less: at most 10 writes and 10 reads an idle hour', () => {
      // Assess
      expect(instanceHeartbeatDelayMs(DEFAULT_TIMINGS, () => 0)).toBe(360_000);
      expect(instanceHeartbeatDelayMs(DEFAULT_TIMINGS, () => 0.999)).toBeLessThan(396_000);
      expect(3600 / DEFAULT_TIMINGS.instanceHeartbeatSeconds).toBe(10);
    });

    it('a row is stale after 2.5 instance heartbeats (15 min by default), never under a lease', () => {
      // Assess
      expect(instanceStaleAfterMs(DEFAULT_TIMINGS)).toBe(15 * 60_000);
      expect(instanceStaleAfterMs(makeTimings({ instanceHeartbeatSeconds: 3 }))).toBe(DEFAULT_TIMINGS.leaseSeconds * 1000);
    });

    it('idle AWS calls by design stay within 200 an hour at any slot count: 180 long polls + 10 row writes + 10 marker reads', () => {
      // Assess
      const t = DEFAULT_TIMINGS;
      expect(3600 / t.longPollSeconds + 2 * (3600 / t.instanceHeartbeatSeconds)).toBeLessThanOrEqual(200);
    });
  });

  describe('single-field problems', () => {
    it.each([
      'heartbeatSeconds',
      'instanceHeartbeatSeconds',
      'leaseSeconds',
      'cancelGraceSeconds',
      'maxAttempts',
      'idleBeforeTerminateSeconds',
      'defaultTaskTimeoutSeconds',
      'maxTaskTimeoutSeconds',
      'scalerTickSeconds',
    ] as const)('%s must be a positive number', (key) => {
      // Prepare
      for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        // Act
        const problems = validateTimings(makeTimings({ [key]: bad }));

        // Assess
        expect(problems).toContain(`${key}: got ${bad}, expected a positive number`);
      }
    });

    it.each([-1, 21, 60, Number.NaN])('longPollSeconds = %p is outside SQS\'s 0..20', (bad) => {
      // Act
      const problems = validateTimings(makeTimings({ longPollSeconds: bad }));

      // Assess
      expect(problems).toEqual([`longPollSeconds: got ${bad}, expected 0..20 (SQS's limit)`]);
    });

    it.each([0, 20])('longPollSeconds = %p is allowed (short poll and the SQS maximum)', (ok) => {
      // Assess
      expect(validateTimings(makeTimings({ longPollSeconds: ok }))).toEqual([]);
    });
  });

  describe('cross-field problems', () => {
    it('heartbeat longer than half the lease is reported, with both values and the fix', () => {
      // Act
      const problems = validateTimings(makeTimings({ heartbeatSeconds: 61, leaseSeconds: 120 }));

      // Assess
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('heartbeatSeconds (61)');
      expect(problems[0]).toContain('half of leaseSeconds (120)');
      expect(problems[0]).toContain('lower heartbeatSeconds or raise leaseSeconds');
    });

    it('heartbeat of exactly half the lease is allowed', () => {
      // Assess
      expect(validateTimings(makeTimings({ heartbeatSeconds: 60, leaseSeconds: 120 }))).toEqual([]);
    });

    it('a lease over SQS\'s 12 h visibility limit is reported', () => {
      // Act
      const problems = validateTimings(makeTimings({ leaseSeconds: 12 * 3600 + 1, maxTaskTimeoutSeconds: 60, defaultTaskTimeoutSeconds: 60 }));

      // Assess
      expect(problems).toContain(`leaseSeconds: got ${12 * 3600 + 1}, expected at most 43200 (SQS visibility limit)`);
    });

    it('a default timeout above the maximum is reported', () => {
      // Act
      const problems = validateTimings(makeTimings({ defaultTaskTimeoutSeconds: 5 * 3600, maxTaskTimeoutSeconds: 4 * 3600 }));

      // Assess
      expect(problems).toEqual(['defaultTaskTimeoutSeconds (18000) exceeds maxTaskTimeoutSeconds (14400); lower the default']);
    });

    it('a timeout cap that leaves no room for the cancel ladder and a lease within 12 h is reported', () => {
      // Prepare: 12 h - 30 s grace - 120 s lease = 43 050 s is the largest cap that fits
      const fits = makeTimings({ maxTaskTimeoutSeconds: 43_050 });
      const tooBig = makeTimings({ maxTaskTimeoutSeconds: 43_051 });

      // Act
      const fitsProblems = validateTimings(fits);
      const tooBigProblems = validateTimings(tooBig);

      // Assess
      expect(fitsProblems).toEqual([]);
      expect(tooBigProblems).toEqual([
        "maxTaskTimeoutSeconds + cancelGraceSeconds + leaseSeconds = 43201 s exceeds SQS's 12-hour visibility limit (43200 s); lower maxTaskTimeoutSeconds",
      ]);
    });

    it('a 12 h timeout cap is reported against the SQS limit', () => {
      // Act
      const problems = validateTimings(makeTimings({ maxTaskTimeoutSeconds: 12 * 3600 }));

      // Assess
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain("exceeds SQS's 12-hour visibility limit");
    });

    it('reports every problem at once, each on its own', () => {
      // Prepare
      const timings = makeTimings({
        longPollSeconds: 30,
        heartbeatSeconds: 100,
        leaseSeconds: 120,
        defaultTaskTimeoutSeconds: 12 * 3600,
        maxTaskTimeoutSeconds: 12 * 3600 - 10,
        maxAttempts: 0,
      });

      // Act
      const problems = validateTimings(timings);

      // Assess
      expect(problems).toHaveLength(5);
      expect(problems.filter((p) => p.startsWith('maxAttempts:'))).toHaveLength(1);
      expect(problems.filter((p) => p.startsWith('longPollSeconds:'))).toHaveLength(1);
      expect(problems.filter((p) => p.startsWith('heartbeatSeconds ('))).toHaveLength(1);
      expect(problems.filter((p) => p.startsWith('defaultTaskTimeoutSeconds ('))).toHaveLength(1);
      expect(problems.filter((p) => p.startsWith('maxTaskTimeoutSeconds + '))).toHaveLength(1);
    });

    it('the spec\'s timeout cap agrees with the timings', () => {
      // Assess
      expect(DEFAULT_TIMINGS.maxTaskTimeoutSeconds + DEFAULT_TIMINGS.cancelGraceSeconds + DEFAULT_TIMINGS.leaseSeconds).toBeLessThanOrEqual(
        SQS_MAX_TOTAL_VISIBILITY_SECONDS,
      );
      expect(DEFAULT_TIMINGS.defaultTaskTimeoutSeconds).toBeLessThanOrEqual(DEFAULT_TIMINGS.maxTaskTimeoutSeconds);
    });
  });

  describe('limits', () => {
    it('inline payloads are smaller than the largest payload and the envelope is small', () => {
      // Assess
      expect(LIMITS.inlinePayloadBytes).toBe(32 * 1024);
      expect(LIMITS.inlinePayloadBytes).toBeLessThan(LIMITS.maxPayloadBytes);
      expect(LIMITS.envelopeBytes).toBe(4 * 1024);
      expect(LIMITS.logTailBytes).toBeLessThan(LIMITS.logFileBytes);
    });
  });
});
