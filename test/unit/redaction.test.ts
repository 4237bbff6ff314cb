/**
 * Redaction that escaping cannot get around (issue #15). For secrets with quotes, backslashes,
 * newlines, unicode (astral characters, lone surrogates, U+2028) and JSON bodies, no secret (nor
 * its JSON-escaped form) ever reaches:
 *   (a) the `result` readResult records from a result.json that holds it in values and keys;
 *   (b) the task's log file or log tail, whatever the chunk boundaries and line breaks;
 *   (c) fleetd's log lines (msg, fields, keys, an Error's message), raw or decoded;
 *   (d) a record update or an event row written through the store's redact hook.
 * Runs are seeded, so a failure reproduces.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { EventType, TaskStatus } from '../../daemon/src/contract';
import { Logger } from '../../daemon/src/log';
import { MIN_SECRET_LINE_LENGTH, REDACTED, Redactor, secretForms } from '../../daemon/src/redact';
import { ContainerRunner, type RunnerOptions, type TaskFiles } from '../../daemon/src/runner';
import { TaskStore, type Lease } from '../../daemon/src/store';
import { TaskOutput } from '../../daemon/src/task-output';

const SEED = 20260415;
const params = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns });

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

const PEM = [
  '-----BEGIN PRIVATE KEY-----',
  'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj',
  'MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu',
  'NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ',
  '-----END PRIVATE KEY-----',
].join('\n');

/** Pieces that JSON, shells and log formats treat specially. */
const piece = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('"', '\\', '\n', '\r\n', '\\"', '\\n', '\\\\', '\t', '/', '{', '}', '[', ']', ':', ',', ' ', "'", '$', 'é', 'ß', '中', '😀', '𝄞', '\u2028', '\u0000', '\u001f', '\u007f', '\ufeff') },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 8 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }) },
);
const pieces = (min: number, max: number): fc.Arbitrary<string> => fc.array(piece, { minLength: min, maxLength: max }).map((p) => p.join(''));

/** A JSON body: `{"username": …, "password": …}`, compact or pretty-printed (multi-line). */
const jsonSecret = fc
  .tuple(fc.dictionary(fc.constantFrom('username', 'password', 'token', 'private_key', 'host'), pieces(2, 8), { minKeys: 1, maxKeys: 4 }), fc.boolean())
  .map(([obj, pretty]) => (pretty ? JSON.stringify(obj, null, 2) : JSON.stringify(obj)));

const secretArb = fc
  .oneof(
    { weight: 6, arbitrary: pieces(1, 10) },
    { weight: 2, arbitrary: jsonSecret },
    { weight: 1, arbitrary: fc.constantFrom('pa"ss\\word', PEM, `${PEM}\n`, JSON.stringify({ type: 'service_account', private_key: PEM, client_email: 'svc@x.iam' })) },
    // A lone surrogate: a secret the container can only print as U+FFFD.
    { weight: 1, arbitrary: pieces(1, 4).map((s) => `${s}\ud800${s}`) },
  )
  // fleetd refuses secrets under 4 characters; a piece of the marker itself ("REDA") shows in every marker (redact.ts).
  .filter((s) => s.length >= 4 && !REDACTED.includes(s));

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const escaped = (s: string): string => JSON.stringify(s).slice(1, -1);

/** Every string and every key of a decoded JSON value. */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      strings(x, out);
    }
  }
  return out;
}

/** The secret and its escaped form appear in none of `texts`. */
function expectNoTrace(texts: readonly string[], secret: string): void {
  for (const t of texts) {
    expect(t.includes(secret)).toBe(false);
    expect(t.includes(escaped(secret))).toBe(false);
  }
}

/**
 * Occurrences of `secret` in `text` made of output characters only. In a stream, the text
 * written next to a marker can spell a secret that itself contains marker characters (`D]xy`
 * after `[REDACTED]`); such an occurrence overlaps the marker and carries no secret material.
 */
function leaks(text: string, secret: string): number {
  const markers: Array<[number, number]> = [];
  for (let i = text.indexOf(REDACTED); i >= 0; i = text.indexOf(REDACTED, i + 1)) markers.push([i, i + REDACTED.length]);
  let n = 0;
  for (let i = text.indexOf(secret); i >= 0; i = text.indexOf(secret, i + 1)) {
    const end = i + secret.length;
    if (!markers.some(([a, b]) => a < end && i < b)) n++;
  }
  return n;
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'redaction-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let seq = 0;
function taskFiles(): TaskFiles {
  const dir = path.join(tmp, `t${seq++}`);
  fs.mkdirSync(path.join(dir, 'output'), { recursive: true });
  return { dir, payloadFile: path.join(dir, 'payload.json'), outputDir: path.join(dir, 'output'), logFile: path.join(dir, 'task.log') };
}

const runner = new ContainerRunner({} as RunnerOptions);

// ---------------------------------------------------------------------------------------------
// The redactor
// ---------------------------------------------------------------------------------------------

describe('Redactor', () => {
  test('registers the JSON-escaped forms, the lines (8+ characters) of a multi-line secret and the string fields (4+) of a JSON secret', () => {
    const r = new Redactor();
    r.add('pa"ss\\word');
    expect(r.redact('raw pa"ss\\word, in JSON "pa\\"ss\\\\word"')).toBe(`raw ${REDACTED}, in JSON "${REDACTED}"`);
    r.add(PEM);
    expect(r.redact('MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu')).toBe(REDACTED);
    expect(r.redact('MzEfYyjiWA4R4\\/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu')).toBe(REDACTED);
    r.add(JSON.stringify({ username: 'svc-build', password: 'hunter2!', port: 5432, pin: 'abc', nested: ['deep-value'] }, null, 2));
    expect(r.redact('user svc-build password hunter2! value deep-value pin abc port 5432')).toBe(`user ${REDACTED} password ${REDACTED} value ${REDACTED} pin abc port 5432`);
    // Short lines of a pretty-printed secret (`{`, `}`) and keys are not registered: ordinary text stays.
    expect(r.redact('{ "username" }')).toBe('{ "username" }');
    expect(secretForms('ab\ncdefghij\nshort\nk')).toEqual(expect.arrayContaining(['cdefghij']));
    expect(secretForms('ab\ncdefghij\nshort\nk').some((f) => f === 'short')).toBe(false);
    expect(MIN_SECRET_LINE_LENGTH).toBe(8);
  });

  test('non-ASCII secrets are caught \\u-escaped too (Python ensure_ascii), and a lone surrogate as U+FFFD', () => {
    const r = new Redactor();
    r.add('pässwörd😀');
    expect(r.redact('{"p": "p\\u00e4ssw\\u00f6rd\\ud83d\\ude00"}')).toBe(`{"p": "${REDACTED}"}`);
    r.add('abc\ud800def');
    expect(r.redact(Buffer.from('x abc\ud800def y').toString('utf8'))).toBe(`x ${REDACTED} y`);
  });

  test('registrations are counted: a secret two tasks share stays registered until both removed it', () => {
    const r = new Redactor();
    r.add('shared-secret');
    r.add('shared-secret');
    r.remove('shared-secret');
    expect(r.redact('shared-secret')).toBe(REDACTED);
    r.remove('shared-secret');
    expect(r.redact('shared-secret')).toBe('shared-secret');
    expect(r.longest).toBe(0);
  });

  test('replacing never leaves a secret spelled by the marker and the text around it', () => {
    const r = new Redactor();
    r.add('D]xyz');
    r.add('abcd');
    const out = r.redact('abcdxyz');
    expect(out.includes('D]xyz')).toBe(false);
    // A piece of the marker itself is replaced once, not chased forever.
    const m = new Redactor();
    m.add('REDA');
    expect(m.redact('x REDA y')).toBe(`x ${REDACTED} y`);
  });

  test('redactValue: strings and keys, nested; colliding keys keep the later value; __proto__ stays a plain key', () => {
    const r = new Redactor();
    r.add('key-secret-1');
    r.add('key-secret-2');
    const v = JSON.parse('{"key-secret-1":"a","key-secret-2":"b","list":["x key-secret-1 y",{"__proto__":"key-secret-2"}],"n":1,"t":true,"z":null}') as unknown;
    const out = r.redactValue(v) as Record<string, unknown>;
    expect(out).toEqual({ [REDACTED]: 'b', list: [`x ${REDACTED} y`, JSON.parse(`{"__proto__":"${REDACTED}"}`)], n: 1, t: true, z: null });
    expect(Object.getPrototypeOf((out.list as unknown[])[1])).toBe(Object.prototype);
  });

  test('property: many secrets at once (past 16 forms the matcher walks the text instead of searching per form): none is left', () => {
    fc.assert(
      fc.property(fc.array(secretArb, { minLength: 4, maxLength: 10 }), pieces(0, 3), (secrets, glue) => {
        const r = new Redactor();
        for (const s of secrets) r.add(s);
        const text = secrets.map((s, i) => (i % 2 ? escaped(s) : s)).join(glue);
        const out = r.redact(text);
        for (const s of secrets) expectNoTrace([out], s);
      }),
      params(200),
    );
  });

  test('property: redact and redactValue leave no occurrence of any secret or of its escaped form', () => {
    fc.assert(
      fc.property(secretArb, pieces(0, 4), pieces(0, 4), (secret, before, after) => {
        const r = new Redactor();
        r.add(secret);
        const text = `${before}${secret}${after} ${JSON.stringify({ [secret]: secret })} ${before}${escaped(secret)}`;
        expectNoTrace([r.redact(text)], secret);
        expectNoTrace(strings(r.redactValue({ [secret]: [secret, `${before}${secret}${after}`, { [`${after}${secret}`]: escaped(secret) }] })), secret);
      }),
      params(500),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// (a) readResult
// ---------------------------------------------------------------------------------------------

describe('readResult', () => {
  test('regression (issue #15): a PEM key and pa"ss\\word in result.json values and keys are redacted; before, the escaped text did not match', () => {
    const r = new Redactor();
    const secrets = [PEM, 'pa"ss\\word'];
    for (const s of secrets) r.add(s);
    const files = taskFiles();
    fs.writeFileSync(path.join(files.outputDir, 'result.json'), JSON.stringify({ key: PEM, password: 'pa"ss\\word', [PEM]: 1, note: 'kept' }));
    const { result, result_error } = runner.readResult(files, (s) => r.redact(s));
    expect(result_error).toBeUndefined();
    expect(result).toEqual({ key: REDACTED, password: REDACTED, [REDACTED]: 1, note: 'kept' });
  });

  test('a parse error quoting the secret is redacted', () => {
    const r = new Redactor();
    r.add('hunter2-secret');
    const files = taskFiles();
    fs.writeFileSync(path.join(files.outputDir, 'result.json'), '{"a": hunter2-secret}');
    const { result_error } = runner.readResult(files, (s) => r.redact(s));
    expect(result_error).toMatch(/^result\.json is not valid JSON/);
    expect(result_error).not.toContain('hunter2-secret');
  });

  test('a result nested past the redaction depth is not recorded (result_error), never thrown', () => {
    const files = taskFiles();
    fs.writeFileSync(path.join(files.outputDir, 'result.json'), `${'{"a":'.repeat(300)}1${'}'.repeat(300)}`);
    expect(runner.readResult(files, (s) => s)).toEqual({ result_error: 'result.json nests deeper than 256 levels; not recorded' });
  });

  test('property: no secret, nor its escaped form, in any string or key of the recorded result', () => {
    fc.assert(
      fc.property(secretArb, pieces(0, 3), (secret, around) => {
        const r = new Redactor();
        r.add(secret);
        const files = taskFiles();
        const doc = {
          summary: `done ${around}${secret}${around}`,
          [secret]: secret,
          nested: { list: [secret, escaped(secret), { [`k${secret}k`]: `${secret}\n${secret}` }], n: 1 },
          escaped_in_text: `token=${escaped(secret)};`,
        };
        fs.writeFileSync(path.join(files.outputDir, 'result.json'), JSON.stringify(doc));
        const { result, result_error } = runner.readResult(files, (s) => r.redact(s));
        expect(result_error).toBeUndefined();
        expect(result).toBeDefined();
        expectNoTrace(strings(result), secret);
      }),
      params(300),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// (b) the task's log file and tail
// ---------------------------------------------------------------------------------------------

describe('TaskOutput', () => {
  test('a multi-line secret split across lines and chunks is redacted in the file and the tail', () => {
    const r = new Redactor();
    r.add(PEM);
    const files = taskFiles();
    const out = new TaskOutput(files.logFile, r, 1024 * 1024, 4096);
    const s = out.stream();
    const bytes = Buffer.from(`key follows\n${PEM}\nend\n`);
    for (let i = 0; i < bytes.length; i += 7) s.write(bytes.subarray(i, i + 7));
    s.end();
    const file = fs.readFileSync(files.logFile, 'utf8');
    expect(file).toBe(`key follows\n${REDACTED}\nend\n`);
    expect(out.tail()).toBe(file);
  });

  test('close() writes what a stream still held, redacted', () => {
    const r = new Redactor();
    r.add('a-long-secret-value');
    const files = taskFiles();
    const out = new TaskOutput(files.logFile, r, 1024 * 1024, 4096);
    out.stream().write(Buffer.from('tail: a-long-secret-value'));
    out.close();
    expect(fs.readFileSync(files.logFile, 'utf8')).toBe(`tail: ${REDACTED}\n`);
  });

  test('property: at any chunk boundaries (bytes) and line breaks, neither the file nor the tail contains the secret', () => {
    fc.assert(
      fc.property(secretArb, pieces(0, 4), fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), (secret, noise, cuts, rotate) => {
        const r = new Redactor();
        r.add(secret);
        const files = taskFiles();
        // A small cap forces rotation into <file>.1 in some runs.
        const out = new TaskOutput(files.logFile, r, rotate ? 256 : 1024 * 1024, 200);
        const text = `${noise}${secret}${noise}\n${secret}${secret}\nprinted as JSON: ${JSON.stringify({ s: secret })}\n${secret.split('\n').join('\r\n')}\n${noise}${secret}`;
        const bytes = Buffer.from(text, 'utf8');
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const stdout = out.stream();
        let prev = 0;
        for (const c of [...at, bytes.length]) {
          stdout.write(bytes.subarray(prev, c));
          prev = c;
        }
        stdout.end();
        const written = [files.logFile, `${files.logFile}.1`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8'));
        // What the bytes decode to when the secret is not valid UTF-16 (a lone surrogate → U+FFFD).
        const printed = Buffer.from(secret, 'utf8').toString('utf8');
        for (const t of [...written, out.tail()]) {
          expect(leaks(t, secret)).toBe(0);
          expect(leaks(t, printed)).toBe(0);
          expect(leaks(t, escaped(secret))).toBe(0);
        }
        expect(written.join('')).toContain(REDACTED);
      }),
      params(300),
    );
  });

  test('memory is bounded: a stream holds back less than twice the longest registered form', () => {
    const r = new Redactor();
    r.add(`${'s'.repeat(49)}!`);
    const files = taskFiles();
    const out = new TaskOutput(files.logFile, r, 64 * 1024 * 1024, 4096);
    const s = out.stream();
    let fed = 0;
    for (let i = 0; i < 2000; i++) {
      const line = `line ${i}\n`;
      s.write(Buffer.from(line));
      fed += line.length;
      // Unwritten: the carry-over (< twice the 50-character form, scanned then) plus the partial line it cut (< 12).
      expect(fed - fs.statSync(files.logFile).size).toBeLessThan(2 * 50 + 12);
    }
    s.end();
    expect(fs.statSync(files.logFile).size).toBe(fed);
  });
});

// ---------------------------------------------------------------------------------------------
// (c) fleetd's log lines
// ---------------------------------------------------------------------------------------------

describe('Logger', () => {
  test('regression (issue #15): a secret with a quote and a backslash was escaped by JSON.stringify before the redaction and survived', () => {
    const lines: string[] = [];
    const log = new Logger({}, new Redactor(), 'debug', (l) => lines.push(l));
    log.secrets.add('pa"ss\\word');
    log.info('login', { password: 'pa"ss\\word', error: new Error('bad pa"ss\\word') });
    expect(lines[0]).not.toContain('pa\\"ss\\\\word');
    expect(JSON.parse(lines[0])).toMatchObject({ msg: 'login', password: REDACTED, error: { name: 'Error', message: `bad ${REDACTED}` } });
  });

  test('a line whose own JSON text spells the secret is withheld, still one JSON object', () => {
    const lines: string[] = [];
    const log = new Logger({}, new Redactor(), 'debug', (l) => lines.push(l));
    log.secrets.add('","level');
    log.info('hello');
    expect(lines[0]).not.toContain('","level');
    expect(JSON.parse(lines[0])).toBeInstanceOf(Object);
  });

  test('property: no occurrence of the secret in the raw line, nor in any decoded string or key', () => {
    fc.assert(
      fc.property(secretArb, pieces(0, 3), (secret, around) => {
        const lines: string[] = [];
        const log = new Logger({ component: 'fleetd' }, new Redactor(), 'debug', (l) => lines.push(l));
        log.secrets.add(secret);
        log.info(`msg ${around}${secret}${around}`, { field: secret, [secret]: 'as a key', nested: { list: [secret, escaped(secret)] }, error: new Error(`failed: ${secret}`) });
        log.child({ context: `${around}${secret}` }).warn(secret, { reason: JSON.stringify({ s: secret }) });
        expect(lines).toHaveLength(2);
        for (const line of lines) {
          expectNoTrace([line], secret);
          expectNoTrace(strings(JSON.parse(line)), secret);
        }
      }),
      params(300),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// (d) the store's redact hook
// ---------------------------------------------------------------------------------------------

describe('TaskStore redact hook', () => {
  const lease: Lease = { taskId: 't-redact', instanceId: 'i-0123456789abcdef0', attempt: 2 };

  function capturingStore(redactor: Redactor): { store: TaskStore; sent: unknown[] } {
    const sent: unknown[] = [];
    const ddb = { send: (cmd: { input: unknown }) => (sent.push(cmd.input), Promise.resolve({})) } as unknown as DynamoDBDocumentClient;
    const store = new TaskStore({ ddb, tasksTable: 'tasks', eventsTable: 'events', timings: { leaseSeconds: 60 }, redact: (v) => redactor.redactValue(v) });
    return { store, sent };
  }

  test('a secret equal to a status or the instance id does not corrupt them', async () => {
    const r = new Redactor();
    r.add('COMPLETED');
    r.add(lease.instanceId);
    const { store, sent } = capturingStore(r);
    await store.finish(lease, TaskStatus.COMPLETED, { reason: 'COMPLETED' });
    const input = sent[0] as { TransactItems: Array<{ Update?: { ExpressionAttributeValues: Record<string, unknown> }; Put?: { Item: Record<string, unknown> } }> };
    const values = Object.values(input.TransactItems[0].Update!.ExpressionAttributeValues);
    expect(values).toContain(TaskStatus.COMPLETED);
    expect(values).toContain(lease.instanceId);
    expect(values).toContain(REDACTED);
    expect(input.TransactItems[1].Put!.Item).toMatchObject({ status: TaskStatus.COMPLETED, instance_id: lease.instanceId, detail: { reason: REDACTED } });
  });

  test('property: no secret in the SET values or the event row of a terminal write, a release, a rejection or a resend', async () => {
    await fc.assert(
      fc.asyncProperty(secretArb, async (secret) => {
        const r = new Redactor();
        r.add(secret);
        const { store, sent } = capturingStore(r);
        await store.finish(lease, TaskStatus.FAILED, {
          exit_code: 1,
          result: { [secret]: secret, list: [{ nested: `x${secret}y` }] },
          result_error: `bad ${secret}`,
          log_tail: `...${secret}\n`,
          reason: `exit ${secret}`,
        });
        await store.release(lease, `release ${secret}`);
        await store.transitionSeen({ task_id: 't-other', status: TaskStatus.QUEUED, attempt: 0, attempts_left: 1 } as never, TaskStatus.CANCELLED, { reason: `cancelled ${secret}` }, { type: EventType.CANCELLED, detail: { by: `client ${secret}` } });
        await store.endUnleased({ task_id: 't-x', status: TaskStatus.QUEUED, attempt: 0, attempts_left: 1 } as never, TaskStatus.FAILED, secret, `by ${secret}`);
        expect(sent).toHaveLength(4);
        expectNoTrace(strings(sent), secret);
      }),
      params(100),
    );
  });
});
