/**
 * The scaling decision: desired = clamp(ceil((visible + in_flight) / slots) + buffer, min, max),
 * and the scaler's rule that it never lowers desired capacity.
 */
import fc from 'fast-check';
import { desiredCapacity, nextDesiredCapacity, type ScalingInput } from '../../daemon/src/contract';

/** A fleet with nothing waiting: one slot per instance, no buffer, 0..1000 instances. */
function anInput(overrides: Partial<ScalingInput> = {}): ScalingInput {
  return { visible: 0, inFlight: 0, slotsPerInstance: 1, buffer: 0, min: 0, max: 1000, ...overrides };
}

describe('desiredCapacity', () => {
  describe.each<[string, Partial<ScalingInput>, number]>([
    ['zero: nothing queued, nothing running', {}, 0],
    ['zero with a buffer: no warm instances without demand', { buffer: 2 }, 0],
    ['one task', { visible: 1 }, 1],
    ['burst: 250 tasks arrive at once', { visible: 250 }, 250],
    ['max cap: 10,000 tasks, max 1,000', { visible: 10_000 }, 1000],
    ['max cap applies after the buffer', { visible: 999, buffer: 5 }, 1000],
    ['slots > 1: 7 tasks on 3-slot instances', { visible: 7, slotsPerInstance: 3 }, 3],
    ['slots > 1: exact multiple', { visible: 6, slotsPerInstance: 3 }, 2],
    ['buffer: 3 tasks + 2 warm', { visible: 3, buffer: 2 }, 5],
    ['in-flight only: 4 running, none waiting', { inFlight: 4 }, 4],
    ['visible + in flight add up', { visible: 3, inFlight: 4, slotsPerInstance: 2 }, 4],
    ['min floor with no demand', { min: 2 }, 2],
    ['min floor above demand', { visible: 1, min: 3 }, 3],
    ['negative (bad metric) counts as zero', { visible: -5, inFlight: -1 }, 0],
    ['fractional slots round down, never below 1', { visible: 3, slotsPerInstance: 0.5 }, 3],
    ['rollout: 2 retiring with a task each on 2 slots, 2 queued: one new instance for the queue', { visible: 2, inFlight: 2, slotsPerInstance: 2, retiring: 2 }, 3],
    ['rollout: 2 retiring, only their tasks in flight: no new instance (none would idle and leave again)', { inFlight: 2, slotsPerInstance: 2, retiring: 2 }, 2],
    ['rollout: 2 retiring full, 4 on new ones, 1 queued', { visible: 1, inFlight: 8, slotsPerInstance: 2, retiring: 2 }, 5],
    ['rollout: retiring with nothing to do asks for nothing', { retiring: 3 }, 0],
    ['rollout: the retiring count is capped by max like the rest', { visible: 5, inFlight: 1, retiring: 1, max: 4 }, 4],
  ])('%s', (_name, overrides, expected) => {
    it(`→ ${expected}`, () => {
      // Prepare
      const input = anInput(overrides);
      // Act
      const desired = desiredCapacity(input);
      // Assess
      expect(desired).toBe(expected);
    });
  });
});

describe('nextDesiredCapacity (the scaler never lowers)', () => {
  it.each<[string, number, Partial<ScalingInput>, number]>([
    ['raises to demand', 2, { visible: 5 }, 5],
    ['keeps current when demand drops to zero', 8, {}, 8],
    ['keeps current when demand is lower', 8, { visible: 3 }, 8],
    ['keeps a current above max (someone set it by hand)', 1200, { visible: 5 }, 1200],
    ['raises to the min floor', 0, { min: 1 }, 1],
  ])('%s', (_name, current, overrides, expected) => {
    expect(nextDesiredCapacity(current, anInput(overrides))).toBe(expected);
  });
});

describe('properties', () => {
  const arbInput = fc
    .record({
      visible: fc.integer({ min: 0, max: 20_000 }),
      inFlight: fc.integer({ min: 0, max: 20_000 }),
      slotsPerInstance: fc.integer({ min: 1, max: 16 }),
      buffer: fc.integer({ min: 0, max: 10 }),
      min: fc.integer({ min: 0, max: 50 }),
      span: fc.integer({ min: 0, max: 1000 }),
    })
    .map(({ span, ...rest }): ScalingInput => ({ ...rest, max: rest.min + span }));

  it('always stays within [min, max]', () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const d = desiredCapacity(input);
        expect(d).toBeGreaterThanOrEqual(input.min);
        expect(d).toBeLessThanOrEqual(input.max);
        expect(Number.isInteger(d)).toBe(true);
      }),
    );
  });

  it('is monotone in the backlog (more waiting or running never means fewer instances)', () => {
    fc.assert(
      fc.property(arbInput, fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 5000 }), (input, moreVisible, moreInFlight) => {
        const bigger = { ...input, visible: input.visible + moreVisible, inFlight: input.inFlight + moreInFlight };
        expect(desiredCapacity(bigger)).toBeGreaterThanOrEqual(desiredCapacity(input));
      }),
    );
  });

  it('covers the backlog whenever max allows it', () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const d = desiredCapacity(input);
        const needed = Math.ceil((input.visible + input.inFlight) / input.slotsPerInstance);
        expect(d * input.slotsPerInstance >= input.visible + input.inFlight || d === input.max).toBe(true);
        if (needed > 0 && needed + input.buffer <= input.max) expect(d).toBe(Math.max(input.min, needed + input.buffer));
      }),
    );
  });

  it('nextDesiredCapacity never goes below the current value, over any sequence of ticks', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.array(arbInput, { maxLength: 30 }), (start, ticks) => {
        let current = start;
        for (const input of ticks) {
          const next = nextDesiredCapacity(current, input);
          expect(next).toBeGreaterThanOrEqual(current);
          expect(next).toBe(Math.max(current, desiredCapacity(input)));
          current = next;
        }
      }),
    );
  });
});
