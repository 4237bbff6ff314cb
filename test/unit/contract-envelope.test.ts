/**
 * The SQS message envelope: encode / decode, and every way a body can be wrong. decodeEnvelope
 * never throws; on failure it still recovers the task id when the body names a valid one.
 */
import { ENVELOPE_VERSION, LIMITS, decodeEnvelope, encodeEnvelope, newTaskId } from '../../daemon/src/contract';

const TASK_ID = 't-01jd8k2m3n4p5q6r7s8t9v0w1x';

/** A raw body built from fields (JSON-encoded). */
const makeBody = (fields: Record<string, unknown>): string => JSON.stringify(fields);

const decodeProblems = (body: unknown): { problems: string[]; taskId?: string } => {
  const decoded = decodeEnvelope(body);
  if (decoded.ok) throw new Error(`expected the body to be rejected, got ${JSON.stringify(decoded.value)}`);
  return { problems: decoded.problems, taskId: decoded.taskId };
};

describe('Contract: message envelope', () => {
  describe('round trip', () => {
    it('decodes what it encodes', () => {
      // Prepare
      const body = encodeEnvelope(TASK_ID, 1_764_288_000_000);

      // Act
      const decoded = decodeEnvelope(body);

      // Assess
      expect(decoded).toEqual({ ok: true, value: { v: ENVELOPE_VERSION, task_id: TASK_ID, sent_at: 1_764_288_000_000 } });
    });

    it('stamps sent_at with the current time by default', () => {
      // Prepare
      const before = Date.now();

      // Act
      const decoded = decodeEnvelope(encodeEnvelope(TASK_ID));

      // Assess
      expect(decoded.ok).toBe(true);
      if (decoded.ok) {
        expect(decoded.value.sent_at).toBeGreaterThanOrEqual(before);
        expect(decoded.value.sent_at).toBeLessThanOrEqual(Date.now());
      }
    });

    it('is version 1 and small', () => {
      // Act
      const body = encodeEnvelope(newTaskId(), 0);

      // Assess
      expect(ENVELOPE_VERSION).toBe(1);
      expect(JSON.parse(body)).toMatchObject({ v: 1 });
      expect(Buffer.byteLength(body)).toBeLessThan(LIMITS.envelopeBytes);
    });

    it.each(['a', 'A'.repeat(64), 'k-0123abc', 'x_y-z', newTaskId()])('round-trips the task id %s', (id) => {
      // Act
      const decoded = decodeEnvelope(encodeEnvelope(id, 0));

      // Assess
      expect(decoded.ok && decoded.value.task_id).toBe(id);
    });

    it('accepts an envelope without sent_at (it is for metrics only)', () => {
      // Act
      const decoded = decodeEnvelope(makeBody({ v: 1, task_id: TASK_ID }));

      // Assess
      expect(decoded).toEqual({ ok: true, value: { v: 1, task_id: TASK_ID } });
    });
  });

  describe('wrong version', () => {
    it.each([
      [2, 'got number 2'],
      [0, 'got number 0'],
      ['1', 'got "1"'],
      [1.5, 'got number 1.5'],
      [null, 'got null'],
    ])('v = %p is rejected, naming the supported version and the one received', (v, got) => {
      // Act
      const { problems } = decodeProblems(makeBody({ v, task_id: TASK_ID }));

      // Assess
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^envelope\.v: /);
      expect(problems[0]).toContain('unsupported envelope version');
      expect(problems[0]).toContain('v=1');
      expect(problems[0]).toContain(got);
    });

    it('a missing version is reported as such', () => {
      // Act
      const { problems } = decodeProblems(makeBody({ task_id: TASK_ID }));

      // Assess
      expect(problems).toEqual([expect.stringMatching(/^envelope\.v: .*got nothing$/)]);
    });

    it('recovers the task id so the caller can fail that task with the reason', () => {
      // Act
      const { taskId } = decodeProblems(makeBody({ v: 2, task_id: TASK_ID }));

      // Assess
      expect(taskId).toBe(TASK_ID);
    });
  });

  describe('other schema problems', () => {
    it.each([
      ['an unknown field', { v: 1, task_id: TASK_ID, extra: true }, 'envelope: unknown field(s) "extra"'],
      ['a negative sent_at', { v: 1, task_id: TASK_ID, sent_at: -1 }, 'envelope.sent_at: '],
      ['a fractional sent_at', { v: 1, task_id: TASK_ID, sent_at: 1.5 }, 'envelope.sent_at: expected int'],
      ['a string sent_at', { v: 1, task_id: TASK_ID, sent_at: 'now' }, 'envelope.sent_at: expected'],
    ])('%s is rejected and the valid task id recovered', (_name, fields, problem) => {
      // Act
      const { problems, taskId } = decodeProblems(makeBody(fields));

      // Assess
      expect(problems.some((p) => p.startsWith(problem))).toBe(true);
      expect(taskId).toBe(TASK_ID);
    });

    it.each([
      ['null', 'null', 'envelope: expected object, got null'],
      ['an array', '[1,2]', 'envelope: expected object, got an array of 2'],
      ['a number', '42', 'envelope: expected object, got number 42'],
      ['a string', '"t-1"', 'envelope: expected object, got "t-1"'],
      ['true', 'true', 'envelope: expected object, got boolean true'],
    ])('a JSON body that is %s is rejected with no task id', (_name, body, problem) => {
      // Act
      const { problems, taskId } = decodeProblems(body);

      // Assess
      expect(problems).toEqual([problem]);
      expect(taskId).toBeUndefined();
    });
  });

  describe('invalid task ids', () => {
    it.each([
      ['empty', ''],
      ['65 characters', 'a'.repeat(65)],
      ['3 KB', 'a'.repeat(3 * 1024)],
      ['a leading dash (option injection)', '-rf'],
      ['a leading underscore', '_t'],
      ['a space', 't 1'],
      ['a semicolon', 't;reboot'],
      ['a command substitution', '$(id)'],
      ['backticks', '`id`'],
      ['a pipe', 't|nc'],
      ['an ampersand', 't&&x'],
      ['quotes', 't"\''],
      ['a newline', 't\nid'],
      ['a trailing newline', 't-1\n'],
      ['a path', '../t'],
      ['an SSM parameter reference', '{{TaskId}}'],
      ['non-ASCII', 'tâche'],
      ['a NUL', 't\u0000'],
      ['a lone surrogate', 't\uD800'],
    ])('a task id with %s is rejected, quoted safely, with no task id recovered', (_name, id) => {
      // Act
      const { problems, taskId } = decodeProblems(makeBody({ v: 1, task_id: id }));

      // Assess
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^envelope\.task_id: expected a task id matching /);
      expect(problems[0]).not.toMatch(/[\r\n]/);
      expect(problems[0].length).toBeLessThan(300);
      expect(taskId).toBeUndefined();
    });

    it.each([
      ['a number', 42, 'expected string, got number 42'],
      ['an object', { id: TASK_ID }, 'expected string, got an object'],
      ['missing', undefined, 'expected string, got nothing'],
    ])('a task id that is %s is rejected', (_name, id, message) => {
      // Act
      const { problems, taskId } = decodeProblems(makeBody({ v: 1, task_id: id }));

      // Assess
      expect(problems).toEqual([`envelope.task_id: ${message}`]);
      expect(taskId).toBeUndefined();
    });

    it('a 10 KB task id makes the body oversized: rejected before parsing', () => {
      // Act
      const { problems, taskId } = decodeProblems(makeBody({ v: 1, task_id: 'a'.repeat(10 * 1024) }));

      // Assess
      expect(problems).toEqual([`message body: ${10 * 1024 + 20} bytes, expected at most ${LIMITS.envelopeBytes}`]);
      expect(taskId).toBeUndefined();
    });

    it('recovers no task id when both the version and the id are bad', () => {
      // Act
      const { problems, taskId } = decodeProblems(makeBody({ v: 9, task_id: '$(id)' }));

      // Assess
      expect(problems).toHaveLength(2);
      expect(taskId).toBeUndefined();
    });
  });

  describe('oversized bodies', () => {
    it('accepts a body of exactly the limit', () => {
      // Prepare: pad with JSON whitespace to exactly LIMITS.envelopeBytes
      const core = makeBody({ v: 1, task_id: TASK_ID });
      const body = core + ' '.repeat(LIMITS.envelopeBytes - core.length);

      // Act
      const decoded = decodeEnvelope(body);

      // Assess
      expect(Buffer.byteLength(body)).toBe(LIMITS.envelopeBytes);
      expect(decoded.ok).toBe(true);
    });

    it('rejects one byte more, naming both sizes', () => {
      // Prepare
      const core = makeBody({ v: 1, task_id: TASK_ID });
      const body = core + ' '.repeat(LIMITS.envelopeBytes - core.length + 1);

      // Act
      const { problems, taskId } = decodeProblems(body);

      // Assess
      expect(problems).toEqual([`message body: ${LIMITS.envelopeBytes + 1} bytes, expected at most ${LIMITS.envelopeBytes}`]);
      expect(taskId).toBeUndefined();
    });

    it('measures UTF-8 bytes, not characters', () => {
      // Prepare: 1 400 three-byte characters = 4 200 bytes in 1 400 characters
      const body = '€'.repeat(1400);

      // Act
      const { problems } = decodeProblems(body);

      // Assess
      expect(problems).toEqual([`message body: 4200 bytes, expected at most ${LIMITS.envelopeBytes}`]);
    });

    it('rejects a 5 MB body quickly', () => {
      // Prepare
      const body = 'x'.repeat(5 * 1024 * 1024);
      const started = Date.now();

      // Act
      const { problems } = decodeProblems(body);

      // Assess
      expect(problems[0]).toMatch(/^message body: 5242880 bytes/);
      expect(Date.now() - started).toBeLessThan(1000);
    });
  });

  describe('bodies that are not JSON', () => {
    it.each([
      ['empty', ''],
      ['plain text', 'hello'],
      ['truncated JSON', '{"v":1,"task_id":"t-1"'],
      ['single quotes', "{'v':1}"],
      ['a trailing comma', '{"v":1,}'],
      ['multi-line garbage', '{"v":1,\n"task_id":\n nope}'],
      ['a lone surrogate', '\uD800'],
      ['a NUL', '\u0000'],
      ['a shell command', '$(reboot)'],
    ])('%s is reported as "not JSON", on one line', (_name, body) => {
      // Act
      const { problems, taskId } = decodeProblems(body);

      // Assess
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^message body: not JSON \(/);
      expect(problems[0]).not.toMatch(/[\r\n]/);
      expect(taskId).toBeUndefined();
    });
  });

  describe('bodies that are not strings', () => {
    it.each([
      ['undefined', undefined, 'nothing'],
      ['null', null, 'null'],
      ['a number', 7, 'number 7'],
      ['an object', { v: 1, task_id: TASK_ID }, 'an object'],
      ['a Buffer', Buffer.from('{}'), 'an object'],
      ['an array', [], 'an array of 0'],
    ])('%s is rejected as not a string', (_name, body, got) => {
      // Act
      const { problems } = decodeProblems(body);

      // Assess
      expect(problems).toEqual([`message body: expected a string, got ${got}`]);
    });
  });
});
