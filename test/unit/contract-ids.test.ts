/**
 * Task ids: generated, derived from idempotency keys, and the one pattern every entry point
 * (SSM cancel document, CLI, `fleetd cancel`, the envelope) checks.
 */
import fc from 'fast-check';
import {
  INSTANCE_ID_PATTERN,
  TASK_ID_PATTERN,
  TASK_ID_PATTERN_SOURCE,
  isTaskId,
  newEventId,
  newTaskId,
  taskIdForIdempotencyKey,
} from '../../daemon/src/contract';

describe('Contract: task ids', () => {
  describe('newTaskId', () => {
    it('matches TASK_ID_PATTERN and the t-<lower-case ULID> shape', () => {
      // Act
      const id = newTaskId();

      // Assess
      expect(id).toMatch(TASK_ID_PATTERN);
      expect(id).toMatch(/^t-[0-9a-hjkmnp-tv-z]{26}$/);
      expect(isTaskId(id)).toBe(true);
    });

    it('is unique over many calls', () => {
      // Act
      const ids = Array.from({ length: 5000 }, () => newTaskId());

      // Assess
      expect(new Set(ids).size).toBe(ids.length);
    });

    it('sorts by creation time', async () => {
      // Prepare
      const first = newTaskId();
      await new Promise((resolve) => setTimeout(resolve, 5));

      // Act
      const second = newTaskId();

      // Assess
      expect(first < second).toBe(true);
    });
  });

  describe('taskIdForIdempotencyKey', () => {
    it('is deterministic', () => {
      // Act
      const a = taskIdForIdempotencyKey('abca-task-42');
      const b = taskIdForIdempotencyKey('abca-task-42');

      // Assess
      expect(a).toBe(b);
      expect(a).toMatch(/^k-[0-9a-f]{40}$/);
    });

    it('is a known value (pins the derivation: changing it would break resubmission)', () => {
      // Act
      const id = taskIdForIdempotencyKey('abc');

      // Assess: sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
      expect(id).toBe('k-ba7816bf8f01cfea414140de5dae2223b00361a3');
    });

    it.each(['', ' ', '; rm -rf /', '$(id)', '`id`', '\n', 'x'.repeat(10_000), '日本語', '👋'])(
      'maps %j to an id matching TASK_ID_PATTERN',
      (key) => {
        // Act
        const id = taskIdForIdempotencyKey(key);

        // Assess
        expect(id).toMatch(TASK_ID_PATTERN);
      },
    );

    it('property: deterministic, pattern-safe and distinct for distinct keys', () => {
      // Assess
      fc.assert(
        fc.property(fc.string({ unit: 'grapheme', maxLength: 128 }), fc.string({ unit: 'grapheme', maxLength: 128 }), (a, b) => {
          const idA = taskIdForIdempotencyKey(a);
          expect(idA).toMatch(TASK_ID_PATTERN);
          expect(taskIdForIdempotencyKey(a)).toBe(idA);
          if (a !== b) expect(taskIdForIdempotencyKey(b)).not.toBe(idA);
        }),
        { seed: 20261128, numRuns: 2000 },
      );
    });

    it('never collides with a generated id (different prefixes)', () => {
      // Assess
      expect(taskIdForIdempotencyKey('x').startsWith('k-')).toBe(true);
      expect(newTaskId().startsWith('t-')).toBe(true);
    });
  });

  describe('TASK_ID_PATTERN', () => {
    it('is anchored, and its source is what the SSM document uses', () => {
      // Assess
      expect(TASK_ID_PATTERN.source).toBe(TASK_ID_PATTERN_SOURCE);
      expect(TASK_ID_PATTERN_SOURCE.startsWith('^')).toBe(true);
      expect(TASK_ID_PATTERN_SOURCE.endsWith('$')).toBe(true);
      expect(TASK_ID_PATTERN.flags).toBe('');
    });

    it.each(['a', '0', 'A'.repeat(64), 't-1', 'k_1-x'])('accepts %j', (id) => {
      // Assess
      expect(isTaskId(id)).toBe(true);
    });

    it.each([
      '',
      'a'.repeat(65),
      'a'.repeat(10 * 1024),
      '-rf',
      '_x',
      't 1',
      't;id',
      '$(id)',
      '`id`',
      't|x',
      't&x',
      't>x',
      't"x',
      "t'x",
      't\\x',
      't/x',
      't.x',
      't\nx',
      't-1\n',
      '\nt-1',
      't\u0000',
      '{{TaskId}}',
      'tâche',
    ])('rejects %j', (id) => {
      // Assess
      expect(isTaskId(id)).toBe(false);
    });

    it.each([undefined, null, 1, {}, ['t-1']])('isTaskId(%p) is false for non-strings', (value) => {
      // Assess
      expect(isTaskId(value)).toBe(false);
    });

    it('property: every accepted id is shell-safe (only [A-Za-z0-9_-], at most 64)', () => {
      // Assess
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
          if (isTaskId(s)) {
            expect(s).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
            expect(s[0]).not.toBe('-');
          }
        }),
        { seed: 20261128, numRuns: 5000 },
      );
    });
  });

  describe('other ids', () => {
    it('newEventId is a time-ordered ULID', () => {
      // Act
      const id = newEventId();

      // Assess
      expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    });

    it.each([
      ['i-0123abcd', true],
      ['i-0123456789abcdef0', true],
      ['i-0123abc', false],
      ['i-0123456789ABCDEF0', false],
      ['i-0123456789abcdef01', false],
      ['0123abcd', false],
    ])('INSTANCE_ID_PATTERN on %s is %p', (id, ok) => {
      // Assess
      expect(INSTANCE_ID_PATTERN.test(id)).toBe(ok);
    });
  });
});
