/**
 * Seeded bad input for the chaos suite: envelopes (SQS bodies), task specs and task records
 * that the contract must reject, each built by one named mutation of a valid value so it is
 * invalid by construction. `checkParsers` feeds them to the contract's never-throwing entry
 * points (decodeEnvelope, parseTaskSpec, parseTaskRecord) and counts, per kind: rejected with a
 * reason (one or more one-line problems), accepted (a parser defect, or a generator bug), and
 * thrown (a parser defect: those entry points promise never to throw).
 */
import { LIMITS, TASK_TOKEN_MAX_LENGTH, decodeEnvelope, parseIntakeMessage, parseTaskRecord, parseTaskSpec, type Parsed } from '../../../daemon/src/contract';
import type { Rng } from './rng';

/** Strings an attacker would try in every field: shell, SQL, template, path, control, Unicode tricks. */
export const INJECTIONS: readonly string[] = [
  '$(id)',
  '`reboot`',
  '; rm -rf / #',
  '&& curl http://169.254.169.254/latest/meta-data/',
  '| nc 169.254.170.2 80',
  "' OR '1'='1",
  '"; DROP TABLE tasks; --',
  '{{TaskId}}',
  '${AWS_SECRET_ACCESS_KEY}',
  '../../../../etc/passwd',
  '<script>alert(1)</script>',
  '{"$ne":null}',
  '%00%0a',
  'line\nbreak\r\u2028\u2029',
  '\u202eevil\u202c',
  'tab\tand\u0007bell',
  '🙂 ü ∑',
];

export const LONE_SURROGATES: readonly string[] = ['\ud800', 'x\udfff', '\udbff\u0041', 'a\ud83d'];

export type BadInputKind = 'envelope' | 'spec' | 'record' | 'intake';

export interface BadInput {
  readonly kind: BadInputKind;
  /** The mutation that made it invalid, e.g. `envelope.wrong-version`. */
  readonly mutation: string;
  readonly input: unknown;
}

const VALID_TASK_ID = 't-01jchaos00000000000000000';

export function baseSpec(image = 'agent-fleet/demo-agent:latest'): Record<string, unknown> {
  return { image, payload: { prompt: 'fix the bug' }, env: { DEMO_SLEEP_S: '1' }, memory_mb: 128, cpus: 0.5, timeout_s: 30, labels: { team: 'chaos' } };
}

function baseRecord(): Record<string, unknown> {
  const now = Date.now();
  return { task_id: VALID_TASK_ID, status: 'QUEUED', spec: baseSpec(), created_at: now, updated_at: now, attempt: 0, attempts_left: 3 };
}

/** A random task id that matches the pattern (names no real task). */
export function randomTaskId(rng: Rng): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = 't-zz';
  for (let i = 0; i < 22; i++) s += alphabet[rng.int(0, alphabet.length - 1)];
  return s;
}

const nonObjects = (rng: Rng): unknown => rng.pick<unknown>([null, 42, 'a string', [1, 2], true, [], -0]);

function badString(rng: Rng): string {
  return rng.chance(0.5) ? rng.pick(INJECTIONS) : rng.pick(LONE_SURROGATES);
}

type Mutation = (rng: Rng) => unknown;

const ENVELOPE_MUTATIONS: Record<string, Mutation> = {
  'wrong-version': (rng) => JSON.stringify({ v: rng.pick<unknown>([0, 2, 99, '1', 1.5, null, -1, true]), task_id: randomTaskId(rng) }),
  'missing-version': (rng) => JSON.stringify({ task_id: randomTaskId(rng) }),
  'bad-task-id': (rng) => JSON.stringify({ v: 1, task_id: rng.pick<unknown>([`t-${badString(rng)}`, badString(rng), '', 'x'.repeat(65), 42, null, ['t-1'], '-leading-dash']) }),
  'unknown-field': (rng) => JSON.stringify({ v: 1, task_id: randomTaskId(rng), [rng.pick(['spec', 'command', '__proto__', 'constructor', 'V', 'taskId'])]: rng.pick(INJECTIONS) }),
  'bad-sent-at': (rng) => JSON.stringify({ v: 1, task_id: randomTaskId(rng), sent_at: rng.pick<unknown>([-1, 1.5, '2026', null, {}]) }),
  'not-json': (rng) => rng.pick([rng.pick(INJECTIONS), '{"v":1,"task_id":', '', ' ', 'undefined', 'NaN', "{'v':1}", '\u0000\u0001']),
  'not-an-object': (rng) => JSON.stringify(nonObjects(rng)),
  oversized: (rng) => JSON.stringify({ v: 1, task_id: randomTaskId(rng), pad: 'x'.repeat(LIMITS.envelopeBytes + rng.int(1, 20_000)) }),
  'lone-surrogate': (rng) => `{"v":1,"task_id":"t-${rng.pick(LONE_SURROGATES)}"}`,
  'escaped-surrogate': () => '{"v":1,"task_id":"t-\\ud800abc"}',
  'not-a-string': (rng) => rng.pick<unknown>([undefined, null, 7, Buffer.from('{"v":1}'), { v: 1, task_id: VALID_TASK_ID }]),
};

const SPEC_MUTATIONS: Record<string, Mutation> = {
  'bad-image': (rng) => ({ ...baseSpec(), image: rng.pick<unknown>([badString(rng), `demo${badString(rng)}`, '', 'UPPER/Case', 'a'.repeat(600), 42, null]) }),
  'missing-image': () => {
    const s = baseSpec();
    delete s.image;
    return s;
  },
  'command-as-string': (rng) => ({ ...baseSpec(), command: `sh -c "${rng.pick(INJECTIONS)}"` }),
  'bad-command': (rng) => ({ ...baseSpec(), command: rng.pick<unknown>([[], ['ok', `nul\u0000${rng.pick(INJECTIONS)}`], [rng.pick(LONE_SURROGATES)], Array(257).fill('x'), ['x'.repeat(4097)], [1, 2]]) }),
  'reserved-env': (rng) => ({ ...baseSpec(), env: { [rng.pick(['AWS_SECRET_ACCESS_KEY', 'FLEET_TASK_ID', 'TASK_ID', 'AGENT_PAYLOAD', 'AWS_ENDPOINT_URL'])]: rng.pick(INJECTIONS) } }),
  'bad-env-name': (rng) => ({ ...baseSpec(), env: { [rng.pick(['A;B', '1ABC', 'A B', '$(id)', '', 'A=B', 'x'.repeat(129), rng.pick(LONE_SURROGATES)])]: 'v' } }),
  'bad-env-value': (rng) => ({ ...baseSpec(), env: { GOOD: rng.pick<unknown>([`a\u0000b`, rng.pick(LONE_SURROGATES), 42, null, 'x'.repeat(32 * 1024 + 1), { nested: 1 }]) } }),
  'bad-secret': (rng) => ({ ...baseSpec(), secrets: { TOKEN: rng.pick([rng.pick(INJECTIONS), 'arn:aws:s3:::bucket', 'arn:aws:secretsmanager:us-east-1:1234:secret:x', `arn:aws:secretsmanager:us-east-1:123456789012:secret:${rng.pick(INJECTIONS.filter((s) => /[^A-Za-z0-9/_+=.@-]/.test(s)))}`]) } }),
  'secret-env-clash': () => ({ ...baseSpec(), env: { TOKEN: 'x' }, secrets: { TOKEN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:local/x' } }),
  'bad-number': (rng) => ({ ...baseSpec(), [rng.pick(['cpus', 'memory_mb', 'pids', 'timeout_s'])]: rng.pick<unknown>([-1, 0, 1e12, Number.NaN, Number.POSITIVE_INFINITY, '2048', null, 1.5e-9, [1]]) }),
  'fractional-int': (rng) => ({ ...baseSpec(), [rng.pick(['memory_mb', 'pids', 'timeout_s'])]: 100.5 }),
  'timeout-over-cap': () => ({ ...baseSpec(), timeout_s: 12 * 3600 }),
  'unknown-field': (rng) => ({ ...baseSpec(), [rng.pick(['Image', 'privileged', 'host_network', 'volumes', 'user', 'cmd'])]: rng.pick<unknown>([true, rng.pick(INJECTIONS), ['/:/host']]) }),
  'proto-key': () => JSON.parse(`{"image":"agent-fleet/demo-agent:latest","__proto__":{"privileged":true}}`),
  'payload-and-ref': () => ({ ...baseSpec(), payload_ref: { bucket: 'local-payloads', key: 'k' } }),
  'bad-payload-ref': (rng) => ({ image: 'agent-fleet/demo-agent:latest', payload_ref: rng.pick<unknown>([{ bucket: 'Bad_Bucket', key: 'k' }, { bucket: 'ok-bucket', key: '' }, { bucket: 'ok-bucket', key: rng.pick(LONE_SURROGATES) }, { bucket: 'ok-bucket', key: 'k', extra: 1 }, 'not-an-object']) }),
  'oversized-payload': (rng) => ({ ...baseSpec(), payload: { blob: 'x'.repeat(LIMITS.inlinePayloadBytes + rng.int(1, 10_000)) } }),
  'surrogate-in-payload': (rng) => ({ ...baseSpec(), payload: rng.pick<unknown>([{ prompt: rng.pick(LONE_SURROGATES) }, { [rng.pick(LONE_SURROGATES)]: 1 }, { list: ['ok', { deep: rng.pick(LONE_SURROGATES) }] }]) }),
  'payload-not-object': (rng) => ({ ...baseSpec(), payload: nonObjects(rng) }),
  'bad-labels': (rng) => ({ ...baseSpec(), labels: rng.pick<unknown>([{ [rng.pick(['UPPER', 'a b', '$(id)', '-x', 'x'.repeat(64)])]: 'v' }, { ok: 'x'.repeat(257) }, Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'v'])), { ok: 7 }]) }),
  'bad-idempotency-key': (rng) => ({ ...baseSpec(), idempotency_key: rng.pick<unknown>(['', 'x'.repeat(129), rng.pick(LONE_SURROGATES), 7]) }),
  'bad-repo': (rng) => ({ ...baseSpec(), repo: rng.pick<unknown>([rng.pick(LONE_SURROGATES), 'x'.repeat(257), 42, 'nul\u0000']) }),
  'not-an-object': (rng) => nonObjects(rng),
};

const RECORD_MUTATIONS: Record<string, Mutation> = {
  'unknown-status': (rng) => ({ ...baseRecord(), status: rng.pick<unknown>(['DONE', 'running', `RUNNING${rng.pick(INJECTIONS)}`, '', 7, null]) }),
  'bad-attempt': (rng) => ({ ...baseRecord(), attempt: rng.pick<unknown>([-1, 1.5, '1', null, Number.NaN]) }),
  'spec-not-object': (rng) => ({ ...baseRecord(), spec: rng.pick<unknown>([null, 'spec', 42, undefined]) }),
  'bad-timestamp': (rng) => ({ ...baseRecord(), [rng.pick(['created_at', 'updated_at', 'lease_expires_at', 'heartbeat_at'])]: rng.pick<unknown>([-5, '2026-11-28', 1.25, null]) }),
  'missing-field': (rng) => {
    const r = baseRecord();
    delete r[rng.pick(['task_id', 'status', 'spec', 'created_at', 'attempt', 'attempts_left'])];
    return r;
  },
  'bad-result': (rng) => ({ ...baseRecord(), status: 'COMPLETED', result: rng.pick<unknown>(['text', [1], 7]) }),
  'not-an-object': (rng) => nonObjects(rng),
};

/** Intake messages (contract/intake.ts): SQS bodies a producer could send to the intake queue. */
const intakeBody = (fields: Record<string, unknown>) => JSON.stringify({ v: 1, spec: baseSpec(), ...fields });
const INTAKE_MUTATIONS: Record<string, Mutation> = {
  'wrong-version': (rng) => JSON.stringify({ v: rng.pick<unknown>([0, 2, '1', 1.5, null, -1, true]), spec: baseSpec() }),
  'missing-version': () => JSON.stringify({ spec: baseSpec() }),
  'missing-spec': () => JSON.stringify({ v: 1 }),
  'spec-not-object': (rng) => intakeBody({ spec: nonObjects(rng) }),
  // Every bad spec of the spec kind, inside an otherwise valid message.
  'bad-spec': (rng) => {
    const names = Object.keys(SPEC_MUTATIONS).filter((n) => n !== 'not-an-object' && n !== 'oversized-payload');
    return intakeBody({ spec: SPEC_MUTATIONS[rng.pick(names)](rng) });
  },
  'bad-idempotency-key': (rng) => intakeBody({ idempotency_key: rng.pick<unknown>(['', 'x'.repeat(129), 7, null, ['k'], `nul\u0000`]) }),
  'key-clash': () => JSON.stringify({ v: 1, idempotency_key: 'a', spec: { ...baseSpec(), idempotency_key: 'b' } }),
  'bad-task-token': (rng) => intakeBody({ task_token: rng.pick<unknown>(['', 'x'.repeat(TASK_TOKEN_MAX_LENGTH + 1), 42, null, { token: 'x' }]) }),
  'unknown-field': (rng) => intakeBody({ [rng.pick(['task_id', 'status', 'record', 'seal', 'attempt', 'V', 'taskToken'])]: rng.pick<unknown>([rng.pick(INJECTIONS), 1, true]) }),
  'record-smuggled': () => JSON.stringify({ v: 1, spec: { ...baseSpec(), status: 'COMPLETED', seal: { v: 1, key_id: 'k', mac: 'm' } } }),
  'not-json': (rng) => rng.pick([rng.pick(INJECTIONS), '{"v":1,"spec":', ' ', 'undefined', 'NaN', "{'v':1}"]),
  'not-an-object': (rng) => JSON.stringify(nonObjects(rng)),
  'envelope-instead': (rng) => JSON.stringify({ v: 1, task_id: randomTaskId(rng) }),
  // (A payload over the 16 MiB cap cannot arrive through SQS, whose bodies are at most 1 MiB; the unit tests cover the cap.)
  'deep-payload': () => {
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 40; i++) deep = { d: deep };
    return intakeBody({ spec: { ...baseSpec(), payload: deep } });
  },
};

const MUTATIONS: Record<BadInputKind, Record<string, Mutation>> = { envelope: ENVELOPE_MUTATIONS, spec: SPEC_MUTATIONS, record: RECORD_MUTATIONS, intake: INTAKE_MUTATIONS };

/** `count` bad inputs of one kind, cycling through every mutation so each is exercised. */
export function badInputs(rng: Rng, kind: BadInputKind, count: number): BadInput[] {
  const names = Object.keys(MUTATIONS[kind]);
  return Array.from({ length: count }, (_, i) => {
    const mutation = names[i % names.length];
    return { kind, mutation: `${kind}.${mutation}`, input: MUTATIONS[kind][mutation](rng) };
  });
}

export interface ParserCheck {
  readonly kind: BadInputKind;
  total: number;
  rejectedWithReason: number;
  /** Parsed as valid although built invalid: each is a finding. */
  readonly accepted: string[];
  /** Threw, or returned problems that are empty or not one line: each is a finding. */
  readonly broken: string[];
}

const PARSERS: Record<BadInputKind, (input: unknown) => Parsed<unknown>> = {
  envelope: decodeEnvelope,
  spec: parseTaskSpec,
  record: parseTaskRecord,
  intake: parseIntakeMessage,
};

/** A rejection counts when it names at least one problem and every problem is one non-empty line. */
export function isGoodRejection(result: Parsed<unknown>): boolean {
  return !result.ok && result.problems.length > 0 && result.problems.every((p) => typeof p === 'string' && p.length > 0 && !/[\r\n\u2028\u2029]/.test(p) && p.length <= 4096);
}

export function checkParsers(inputs: readonly BadInput[]): ParserCheck[] {
  const byKind = new Map<BadInputKind, ParserCheck>();
  for (const bad of inputs) {
    let check = byKind.get(bad.kind);
    if (!check) byKind.set(bad.kind, (check = { kind: bad.kind, total: 0, rejectedWithReason: 0, accepted: [], broken: [] }));
    check.total++;
    let result: Parsed<unknown>;
    try {
      result = PARSERS[bad.kind](bad.input);
    } catch (err) {
      check.broken.push(`${bad.mutation}: threw ${(err as Error).name}: ${(err as Error).message}`.slice(0, 300));
      continue;
    }
    if (result.ok) check.accepted.push(`${bad.mutation}: ${JSON.stringify(bad.input)?.slice(0, 200)}`);
    else if (isGoodRejection(result)) check.rejectedWithReason++;
    else check.broken.push(`${bad.mutation}: rejected without a usable reason: ${JSON.stringify(result.problems).slice(0, 200)}`);
  }
  return [...byKind.values()];
}

/**
 * Whether real SQS would accept this body at all (allowed characters, 256 KiB). Bodies it
 * refuses never reach a daemon in production, so they are not sent to moto (which is laxer).
 */
export function sqsAcceptsBody(body: unknown): body is string {
  // eslint-disable-next-line no-control-regex
  return typeof body === 'string' && body.length > 0 && Buffer.byteLength(body) <= 256 * 1024 && !/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u.test(body);
}
