/**
 * Argument parsing of the fleet CLI: durations, sizes, NAME=VALUE pairs, statuses, counts, and
 * the spec the submit options describe.
 */
import { UsageError } from '../../scripts/cli/errors';
import { parseCount, parseCpus, parseDuration, parseKeyValue, parseKeyValues, parseSize, parseStatuses, parseTaskId } from '../../scripts/cli/parse';
import { specFromOptions } from '../../scripts/cli/submit';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('parseDuration', () => {
  it.each([
    ['90s', 90],
    ['15m', 900],
    ['2h', 7200],
    ['1h30m', 5400],
    ['1h0m5s', 3605],
    ['1d', 86400],
    ['90', 90],
    [' 2H ', 7200],
  ])('%s → %i s', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(['', 'x', '5x', '1.5h', '-5m', 'h', '30m1h', '0s', '0', '1 h', '99999999999999999999s'])('refuses %j with the accepted forms', (text) => {
    expect(usageMessage(() => parseDuration(text))).toMatch(/--timeout: got ".*", expected a duration (like 90s, 15m, 2h or 1h30m|above zero)/);
  });
});

describe('parseSize', () => {
  it.each([
    ['512m', 512],
    ['2g', 2048],
    ['1.5g', 1536],
    ['2G', 2048],
    ['2gb', 2048],
    ['2gib', 2048],
    ['65536k', 64],
    ['100k', 1],
    ['1t', 1024 * 1024],
  ])('%s → %i MiB', (text, mib) => {
    expect(parseSize(text)).toBe(mib);
  });

  it('a bare number has no unit: refused with a hint, never guessed', () => {
    try {
      parseSize('512');
      throw new Error('expected a UsageError');
    } catch (err) {
      expect((err as UsageError).message).toBe('--memory: got "512", which has no unit');
      expect((err as UsageError).hint).toMatch(/512m/);
    }
  });

  it.each(['', 'm', '2x', '-1g', '0m', 'lots'])('refuses %j', (text) => {
    expect(usageMessage(() => parseSize(text))).toMatch(/^--memory: got /);
  });
});

describe('NAME=VALUE pairs', () => {
  it('splits at the first =; the value may contain = and be empty', () => {
    expect(parseKeyValue('A=b=c', '--env')).toEqual(['A', 'b=c']);
    expect(parseKeyValue('EMPTY=', '--env')).toEqual(['EMPTY', '']);
  });

  it.each([
    ['novalue', /expected NAME=VALUE/],
    ['=x', /expected NAME=VALUE/],
    ['1A=x', /not a valid variable name/],
    ['A-B=x', /not a valid variable name/],
    ['TASK_ID=x', /reserved/],
    ['AGENT_PAYLOAD=x', /reserved/],
    ['FLEET_X=x', /reserved/],
    ['AWS_SECRET_ACCESS_KEY=x', /reserved/],
  ])('refuses %j', (text, message) => {
    expect(usageMessage(() => parseKeyValue(text, '--env'))).toMatch(message);
  });

  it('a secret needs a value; a name given twice is an error, not an override', () => {
    expect(usageMessage(() => parseKeyValues(['TOKEN='], '--secret', true))).toMatch(/TOKEN has an empty value/);
    expect(usageMessage(() => parseKeyValues(['A=1', 'A=2'], '--env'))).toMatch(/A is given twice/);
    expect(parseKeyValues(['A=1', 'B=2'], '--env')).toEqual({ A: '1', B: '2' });
  });
});

describe('statuses, counts, cpus, task ids', () => {
  it('statuses are case-insensitive, dash or underscore, comma-separated, deduplicated', () => {
    expect(parseStatuses('running')).toEqual(['RUNNING']);
    expect(parseStatuses('cancel-requested,QUEUED,running,Running')).toEqual(['CANCEL_REQUESTED', 'QUEUED', 'RUNNING']);
    expect(usageMessage(() => parseStatuses('running,done'))).toMatch(/--status: got "done", expected one of QUEUED, /);
  });

  it('counts are whole numbers in range', () => {
    expect(parseCount('20', '--limit')).toBe(20);
    for (const bad of ['0', '1001', '2.5', 'ten', '', '-1']) expect(usageMessage(() => parseCount(bad, '--limit'))).toMatch(/--limit: got .*, expected a whole number from 1 to 1000/);
  });

  it('cpus may be fractional, never zero or negative', () => {
    expect(parseCpus('0.5')).toBe(0.5);
    for (const bad of ['0', '-1', 'two', '', 'NaN', 'Infinity']) expect(usageMessage(() => parseCpus(bad))).toMatch(/--cpus/);
  });

  it('task ids match the contract pattern', () => {
    expect(parseTaskId('t-01jd8x5k2m3n4p5q6r7s8t9v0w')).toBe('t-01jd8x5k2m3n4p5q6r7s8t9v0w');
    expect(usageMessage(() => parseTaskId('-leading-dash'))).toMatch(/invalid task id "-leading-dash": expected/);
  });
});

describe('specFromOptions (fleet submit)', () => {
  it('turns the options into a spec', () => {
    const spec = specFromOptions({ image: 'agent:1', prompt: 'fix it', env: ['A=1'], secret: ['TOKEN=arn:aws:secretsmanager:us-east-1:123456789012:secret:x'], cpus: '0.5', memory: '1g', timeout: '1h30m', idempotencyKey: 'k1' });
    expect(spec).toEqual({
      image: 'agent:1',
      payload: { prompt: 'fix it' },
      env: { A: '1' },
      secrets: { TOKEN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x' },
      cpus: 0.5,
      memory_mb: 1024,
      timeout_s: 5400,
      idempotency_key: 'k1',
    });
  });

  it('reads a payload file that holds a JSON object, and refuses anything else', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-parse-'));
    const ok = path.join(dir, 'ok.json');
    fs.writeFileSync(ok, '{"repo_url":"org/repo","n":1}');
    expect(specFromOptions({ image: 'a', payloadFile: ok }).payload).toEqual({ repo_url: 'org/repo', n: 1 });
    fs.writeFileSync(path.join(dir, 'arr.json'), '[1]');
    fs.writeFileSync(path.join(dir, 'bad.json'), '{nope');
    expect(usageMessage(() => specFromOptions({ image: 'a', payloadFile: path.join(dir, 'arr.json') }))).toMatch(/expected a JSON object, got an array/);
    expect(usageMessage(() => specFromOptions({ image: 'a', payloadFile: path.join(dir, 'bad.json') }))).toMatch(/not JSON/);
    expect(usageMessage(() => specFromOptions({ image: 'a', payloadFile: path.join(dir, 'missing.json') }))).toMatch(/cannot be read \(ENOENT\)/);
    expect(usageMessage(() => specFromOptions({ image: 'a', payloadFile: ok, prompt: 'x' }))).toMatch(/--payload-file or --prompt, not both/);
  });
});
