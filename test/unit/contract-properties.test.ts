/**
 * Property-style tests: thousands of random and malformed inputs. The parsers of the contract
 * (parseTaskSpec, decodeEnvelope, parseTaskRecord) never throw; they accept, or they return at
 * least one non-empty, single-line problem that starts with the field path root. Accepted specs
 * re-validate to the same value. Runs are seeded, so a failure reproduces.
 */
import fc from 'fast-check';
import {
  ALL_STATUSES,
  RESERVED_ENV_NAMES,
  TASK_ID_PATTERN,
  decodeEnvelope,
  encodeEnvelope,
  isReservedEnvName,
  parseTaskRecord,
  parseTaskSpec,
  type Parsed,
} from '../../daemon/src/contract';

const SEED = 20261128;
/** Runs per property: enough to find the classes of failure, small enough for a loaded 2-core box. */
const RUNS = 1000;
const params = (numRuns = RUNS): fc.Parameters<unknown> => ({ seed: SEED, numRuns });

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

/** Any UTF-16 code unit, so lone and reversed surrogates, NUL and controls all appear. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const utf16String = (maxLength = 40): fc.Arbitrary<string> => fc.string({ unit: codeUnit, maxLength });

/** Strings that try to break things: surrogates, NUL, shell and template syntax, prototype keys. */
const nastyString = fc.oneof(
  utf16String(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    '\u0000',
    '\uD800',
    '\uDFFF',
    '\uDC00\uD800',
    '👋',
    '; rm -rf /',
    '$(id)',
    '`id`',
    '"\'',
    'a\nb',
    '\r\n',
    '\u2028',
    '{{TaskId}}',
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'TASK_ID',
    'AWS_SECRET_ACCESS_KEY',
    'FLEET_ATTEMPT',
  ),
);

/** Long strings (10 K – 200 K code units) built from a repeated nasty chunk. */
const hugeString = fc
  .tuple(fc.oneof(fc.constantFrom('a', '-', '.', '_', '\uD800', '\n', 'a-', 'a.', 'a__', '/a', ':'), nastyString), fc.integer({ min: 10_000, max: 200_000 }))
  .map(([chunk, n]) => (chunk.length === 0 ? 'x' : chunk).repeat(Math.ceil(n / Math.max(1, chunk.length))).slice(0, n));

/** Keys objects are built from, including the prototype-polluting ones. */
const nastyKey = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'image', 'env', 'payload', 'v', 'task_id', 'status', 'spec') },
  { weight: 3, arbitrary: nastyString },
);

const anything = fc.anything({
  key: nastyKey,
  maxDepth: 4,
  maxKeys: 6,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});

/** Deeply nested objects and arrays (depth 100 – 3 000), in a random field. */
const deepValue = fc.tuple(fc.integer({ min: 100, max: 3000 }), fc.boolean(), nastyKey).map(([depth, arrays, key]) => {
  let v: unknown = 'leaf';
  for (let i = 0; i < depth; i++) v = arrays ? [v] : { [key]: v };
  return v;
});

/** An object whose own "__proto__" key is data (as JSON.parse produces), not the prototype. */
const protoKeyed = fc.tuple(anything, anything).map(([inner, other]) => {
  const o: Record<string, unknown> = { other };
  Object.defineProperty(o, '__proto__', { value: inner, enumerable: true, writable: true, configurable: true });
  return o;
});

const hostileValue = fc.oneof(
  { weight: 4, arbitrary: anything },
  { weight: 2, arbitrary: fc.jsonValue() },
  { weight: 1, arbitrary: nastyString },
  { weight: 1, arbitrary: protoKeyed },
);

// --- valid-by-construction specs -------------------------------------------------------------

const envName = fc
  .stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,30}$/)
  .filter((n) => !isReservedEnvName(n) && n !== '__proto__');
const wellFormed = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: 'grapheme', maxLength }).filter((s) => !s.includes('\u0000'));
const labelKey = fc.stringMatching(/^[a-z0-9][a-z0-9._/-]{0,20}$/);
const secretArn = fc
  .stringMatching(/^[A-Za-z0-9/_+=.@-]{1,40}$/)
  .map((name) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}`);
const image = fc.constantFrom(
  'agent',
  'agent-fleet/demo-agent:latest',
  '123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:1.2',
  'localhost:5000/a/b_c:v1',
  `agent@sha256:${'a'.repeat(64)}`,
);
const payload = fc.dictionary(
  fc.string({ unit: 'grapheme', maxLength: 10 }).filter((k) => k !== '__proto__'),
  fc.jsonValue({ maxDepth: 3 }),
  { maxKeys: 5 },
);

/** A spec that must be accepted: every field valid, each optional field present or not. */
const validSpec = fc
  .record(
    {
      image,
      command: fc.array(wellFormed(20), { minLength: 1, maxLength: 5 }),
      payload,
      env: fc.dictionary(envName, wellFormed(30), { maxKeys: 4 }),
      secrets: fc.dictionary(envName.map((n) => `S_${n}`), secretArn, { maxKeys: 2 }),
      cpus: fc.double({ min: 0.1, max: 192, noNaN: true }),
      memory_mb: fc.integer({ min: 64, max: 1024 * 1024 }),
      pids: fc.integer({ min: 16, max: 65536 }),
      timeout_s: fc.integer({ min: 1, max: 11 * 3600 }),
      idempotency_key: wellFormed(128).filter((s) => s.length > 0),
      labels: fc.dictionary(labelKey, wellFormed(30), { maxKeys: 4 }),
      repo: wellFormed(60),
    },
    { requiredKeys: ['image'] },
  )
  .map((spec) => {
    const clean: Record<string, unknown> = { ...spec };
    // env and secrets may not share a name; the S_ prefix keeps them apart unless env uses it too.
    const env = (clean.env ?? {}) as Record<string, string>;
    for (const k of Object.keys((clean.secrets ?? {}) as object)) delete env[k];
    return clean;
  })
  .filter((spec) => Buffer.byteLength(JSON.stringify(spec.payload ?? {})) <= 32 * 1024);

/** A valid spec with one field replaced by something hostile (or an extra field added). */
const mutatedSpec = fc
  .tuple(validSpec, fc.constantFrom('image', 'command', 'payload', 'payload_ref', 'env', 'secrets', 'cpus', 'memory_mb', 'pids', 'timeout_s', 'idempotency_key', 'labels', 'repo', 'extra', '__proto__'), hostileValue)
  .map(([spec, field, value]) => {
    const out: Record<string, unknown> = { ...spec };
    Object.defineProperty(out, field, { value, enumerable: true, writable: true, configurable: true });
    return out;
  });

/** A spec whose env / labels / payload carry hostile keys and values. */
const hostileMaps = fc
  .record({
    env: fc.dictionary(nastyKey, nastyString, { maxKeys: 4 }),
    labels: fc.dictionary(nastyKey, nastyString, { maxKeys: 4 }),
    payload: fc.dictionary(nastyKey, fc.oneof(nastyString, fc.jsonValue({ maxDepth: 2 })), { maxKeys: 4 }),
  })
  .map((maps) => ({ image: 'agent', ...maps }));

// --- envelopes and records -------------------------------------------------------------------

/** JSON text of any generated value (BigInt as a string, undefined as null): never throws. */
const toJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? 'null';

const taskId = fc.stringMatching(new RegExp(TASK_ID_PATTERN.source));
const envelopeLike = fc
  .record(
    {
      v: fc.oneof(fc.constant(1), hostileValue),
      task_id: fc.oneof(taskId, nastyString, hostileValue),
      sent_at: fc.oneof(fc.nat(), hostileValue),
      extra: hostileValue,
    },
    { requiredKeys: [] },
  );
const envelopeBody = fc.oneof(
  { weight: 3, arbitrary: envelopeLike.map(toJson) },
  { weight: 1, arbitrary: fc.json() },
  { weight: 1, arbitrary: fc.tuple(taskId, fc.nat()).map(([id, t]) => encodeEnvelope(id, t)) },
  { weight: 2, arbitrary: utf16String(200) },
  { weight: 1, arbitrary: hugeString },
  { weight: 1, arbitrary: fc.jsonValue().map(toJson) },
  { weight: 1, arbitrary: hostileValue },
);

/** A well-formed record whose spec is anything from valid to hostile. */
const recordWithAnySpec = fc
  .tuple(taskId, fc.constantFrom(...ALL_STATUSES), fc.oneof(validSpec, mutatedSpec, hostileMaps, fc.dictionary(nastyKey, anything, { maxKeys: 4 })), fc.nat(), fc.nat({ max: 5 }))
  .map(([task_id, status, spec, at, attempt]) => ({ task_id, status, spec, created_at: at, updated_at: at, attempt, attempts_left: 3 - attempt }));

const recordLike = fc.record(
  {
    task_id: fc.oneof(taskId, hostileValue),
    status: fc.oneof(fc.constantFrom(...ALL_STATUSES), hostileValue),
    spec: fc.oneof(validSpec, mutatedSpec, hostileValue),
    created_at: fc.oneof(fc.nat(), hostileValue),
    updated_at: fc.oneof(fc.nat(), hostileValue),
    attempt: fc.oneof(fc.nat(), hostileValue),
    attempts_left: fc.oneof(fc.integer(), hostileValue),
    result: fc.oneof(fc.dictionary(nastyKey, anything), hostileValue),
    reason: hostileValue,
    extra: hostileValue,
  },
  { requiredKeys: [] },
);

// ---------------------------------------------------------------------------------------------
// Assertions shared by every property
// ---------------------------------------------------------------------------------------------

/** The verdict of a parser: accepted, or at least one non-empty single-line problem under `roots`. */
const expectVerdict = (result: Parsed<unknown>, roots: readonly string[]): void => {
  if (result.ok) return;
  expect(Array.isArray(result.problems)).toBe(true);
  expect(result.problems.length).toBeGreaterThan(0);
  for (const problem of result.problems) {
    expect(typeof problem).toBe('string');
    const root = roots.find((r) => problem.startsWith(r));
    if (root === undefined) throw new Error(`problem does not start with ${roots.join(' / ')}: ${problem}`);
    // the root is followed by the rest of the path or directly by ': '
    expect(problem.slice(root.length)).toMatch(/^(?:[.[][^]*)?: \S/);
    expect(problem).not.toMatch(/[\r\n\u2028\u2029]/);
  }
};

/** Calls `parse` and fails the property with the input if it throws. */
const neverThrows = <T>(parse: (input: unknown) => T, input: unknown): T => {
  try {
    return parse(input);
  } catch (err) {
    throw new Error(`threw ${String(err)} on ${fc.stringify(input).slice(0, 300)}`, { cause: err });
  }
};

const SPEC_ROOTS = ['spec'];
const ENVELOPE_ROOTS = ['message body', 'envelope'];
const RECORD_ROOTS = ['task record'];

// ---------------------------------------------------------------------------------------------

describe('Contract: properties', () => {
  describe('parseTaskSpec', () => {
    it.each([
      ['fc.anything()', hostileValue],
      ['JSON text parsed (fc.json())', fc.json().map((j) => JSON.parse(j) as unknown)],
      ['a valid spec with one field made hostile', mutatedSpec],
      ['hostile keys and values in env, labels and payload', hostileMaps],
      ['objects with an own __proto__ key', protoKeyed],
      ['huge strings in every string field', fc.tuple(hugeString, fc.constantFrom('image', 'command', 'env', 'labels', 'repo', 'idempotency_key', 'payload')).map(([s, f]) => ({ image: 'agent', [f]: f === 'command' ? [s] : ['env', 'labels', 'payload'].includes(f) ? { k: s, [s.slice(0, 300)]: 'v' } : s }))],
      ['deep objects', fc.tuple(deepValue, fc.constantFrom('payload', 'env', 'labels', 'command', 'payload_ref')).map(([v, f]) => ({ image: 'agent', [f]: v }))],
    ])('never throws on %s: accepts, or names a problem under spec', (_name, arbitrary) => {
      // Prepare / Act / Assess (per generated input)
      fc.assert(
        fc.property(arbitrary as fc.Arbitrary<unknown>, (input) => {
          const result = neverThrows(parseTaskSpec, input);
          expectVerdict(result, SPEC_ROOTS);
        }),
        params(_name.startsWith('huge') || _name.startsWith('deep') ? 150 : RUNS),
      );
    });

    it('accepts every valid-by-construction spec and fills the defaults', () => {
      fc.assert(
        fc.property(validSpec, (input) => {
          // Act
          const result = parseTaskSpec(input);

          // Assess
          if (!result.ok) throw new Error(`rejected a valid spec: ${result.problems.join(' | ')}`);
          expect(result.value).toMatchObject(input);
          for (const key of ['env', 'secrets', 'cpus', 'memory_mb', 'pids', 'timeout_s', 'labels']) {
            expect(result.value).toHaveProperty(key);
          }
        }),
        params(),
      );
    });

    it('is idempotent: whatever it accepts re-validates to the same value, also after a JSON round trip', () => {
      fc.assert(
        fc.property(fc.oneof(validSpec, mutatedSpec, hostileMaps), (input) => {
          // Act
          const first = parseTaskSpec(input);
          if (!first.ok) return;
          const second = parseTaskSpec(first.value);
          const viaJson = parseTaskSpec(JSON.parse(JSON.stringify(first.value)) as unknown);

          // Assess
          expect(second).toEqual(first);
          expect(viaJson.ok).toBe(true);
          if (viaJson.ok) expect(JSON.stringify(viaJson.value)).toBe(JSON.stringify(first.value));
        }),
        params(),
      );
    });

    it('never accepts a reserved env name, a lone surrogate or a NUL in env', () => {
      fc.assert(
        fc.property(hostileMaps, (input) => {
          // Act
          const result = parseTaskSpec(input);
          if (!result.ok) return;

          // Assess
          for (const [name, value] of Object.entries(result.value.env)) {
            expect(isReservedEnvName(name)).toBe(false);
            expect((RESERVED_ENV_NAMES as readonly string[]).includes(name)).toBe(false);
            expect(value).not.toContain('\u0000');
            expect(value).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
          }
        }),
        params(),
      );
    });

    it('does not pollute Object.prototype, whatever it is fed', () => {
      // Act
      fc.assert(
        fc.property(fc.oneof(protoKeyed, mutatedSpec, hostileMaps), (input) => {
          parseTaskSpec(input);
        }),
        params(500),
      );

      // Assess
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(
        Object.getOwnPropertyNames(Object.getPrototypeOf({}) as object).sort(),
      );
      expect(({} as Record<string, unknown>).other).toBeUndefined();
      expect(({} as Record<string, unknown>).image).toBeUndefined();
    });
  });

  describe('decodeEnvelope', () => {
    it('never throws on random bodies: accepts, or names a problem under message body / envelope', () => {
      fc.assert(
        fc.property(envelopeBody, (body) => {
          // Act
          const result = neverThrows(decodeEnvelope, body);

          // Assess
          expectVerdict(result, ENVELOPE_ROOTS);
          if (result.ok) {
            expect(result.value.v).toBe(1);
            expect(result.value.task_id).toMatch(TASK_ID_PATTERN);
          } else if (result.taskId !== undefined) {
            expect(result.taskId).toMatch(TASK_ID_PATTERN);
          }
        }),
        params(),
      );
    });

    it('recovers the task id exactly when the body is a JSON object naming a valid one', () => {
      fc.assert(
        fc.property(envelopeLike, (fields) => {
          // Prepare
          const body = toJson(fields);
          if (Buffer.byteLength(body) > 4096) return;

          // Act
          const result = decodeEnvelope(body);

          // Assess
          const named = (JSON.parse(body) as { task_id?: unknown }).task_id;
          const valid = typeof named === 'string' && TASK_ID_PATTERN.test(named);
          if (result.ok) expect(result.value.task_id).toBe(named);
          else expect(result.taskId).toBe(valid ? named : undefined);
        }),
        params(),
      );
    });

    it('round-trips every valid task id and time', () => {
      fc.assert(
        fc.property(taskId, fc.nat(), (id, sentAt) => {
          // Act
          const result = decodeEnvelope(encodeEnvelope(id, sentAt));

          // Assess
          expect(result).toEqual({ ok: true, value: { v: 1, task_id: id, sent_at: sentAt } });
        }),
        params(),
      );
    });
  });

  describe('parseTaskRecord', () => {
    it.each([
      ['fc.anything()', hostileValue],
      ['record-shaped items with hostile attributes', recordLike],
      ['objects with an own __proto__ key', protoKeyed],
      ['deep specs', deepValue.map((spec) => ({ task_id: 't', status: 'QUEUED', spec: { deep: spec }, created_at: 0, updated_at: 0, attempt: 0, attempts_left: 1 }))],
    ])('never throws on %s: accepts, or names a problem under task record', (name, arbitrary) => {
      fc.assert(
        fc.property(arbitrary as fc.Arbitrary<unknown>, (item) => {
          // Act
          const result = neverThrows(parseTaskRecord, item);

          // Assess
          expectVerdict(result, RECORD_ROOTS);
          if (result.ok) expect(ALL_STATUSES).toContain(result.value.status);
        }),
        params(name.startsWith('deep') ? 150 : 600),
      );
    });

    it('a record it accepts still holds a spec parseTaskSpec can judge without throwing', () => {
      fc.assert(
        fc.property(recordWithAnySpec, (item) => {
          // Act
          const record = parseTaskRecord(item);
          expect(record.ok).toBe(true);
          if (!record.ok) return;
          const spec = neverThrows(parseTaskSpec, record.value.spec);

          // Assess
          expectVerdict(spec, SPEC_ROOTS);
        }),
        params(),
      );
    });
  });

  describe('pathological sizes, checked once each', () => {
    it.each([
      ['a 10 000-deep object payload', (): unknown => nest(10_000, false)],
      ['a 10 000-deep array payload', (): unknown => nest(10_000, true)],
      ['a 100 000-deep object payload', (): unknown => nest(100_000, false)],
    ])('parseTaskSpec judges %s without throwing', (_name, build) => {
      // Prepare
      const input = { image: 'agent', payload: { p: build() } };

      // Act
      const result = neverThrows(parseTaskSpec, input);

      // Assess
      expect(result.ok).toBe(false);
      expectVerdict(result, SPEC_ROOTS);
    });

    it('parseTaskRecord judges a 100 000-deep item without throwing', () => {
      // Act
      const result = neverThrows(parseTaskRecord, nest(100_000, false));

      // Assess
      expectVerdict(result, RECORD_ROOTS);
    });

    it('a 1 MB key is echoed truncated, on one line', () => {
      // Prepare
      const key = `K\n${'k'.repeat(1024 * 1024)}`;

      // Act
      const specProblems = parseTaskSpec({ image: 'agent', [key]: 1, env: { [key]: 'v' }, labels: { [key]: 'v' }, payload: { [key]: BigInt(1) } });

      // Assess
      expect(specProblems.ok).toBe(false);
      expectVerdict(specProblems, SPEC_ROOTS);
      for (const p of specProblems.ok ? [] : specProblems.problems) expect(p.length).toBeLessThan(1000);
    });
  });
});

function nest(depth: number, arrays: boolean): unknown {
  let v: unknown = 'leaf';
  for (let i = 0; i < depth; i++) v = arrays ? [v] : { a: v };
  return v;
}
