/**
 * The CLI's V8 code cache loader (scripts/cli/code-cache.ts): a small CommonJS file in a temp
 * directory stands in for fleet-read.cjs. What is checked: the cache is written 0600 in a 0700
 * directory and used by the next compile; a directory or file that is not this user's private one
 * is refused (plain compile); a corrupt, stale or V8-rejected cache falls back and is rewritten;
 * FLEET_NO_CODE_CACHE=1 touches nothing. Whether the cache pays is the bench's question
 * (scripts/dev/bench/cli-vs-aws.ts), not a test's.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cacheFileName, cacheKey, codeCacheDir, compileWithCodeCache, readCacheFile } from '../../scripts/cli/code-cache';

let root: string;
let bundle: string;
let cacheHome: string;
let env: NodeJS.ProcessEnv;
const cacheDir = () => path.join(cacheHome, 'agent-fleet');
/** The one cache file of `fleet-status` (named after its key). */
const cacheFile = () => {
  const files = fs.readdirSync(cacheDir()).filter((f) => /^fleet-status-[0-9a-f]{16}\.v8cache$/.test(f));
  expect(files).toHaveLength(1);
  return path.join(cacheDir(), files[0]);
};
const mode = (p: string) => fs.lstatSync(p).mode & 0o777;

const SOURCE = `'use strict';
const same = this === exports && module.exports === exports && __dirname === require('node:path').dirname(__filename);
function describe(n) { return { squared: n * n, path: require('node:path').basename(__filename), same }; }
module.exports = { describe };
`;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-code-cache-'));
  bundle = path.join(root, 'bundle.cjs');
  fs.writeFileSync(bundle, SOURCE);
  cacheHome = path.join(root, 'xdg');
  env = { XDG_CACHE_HOME: cacheHome };
});

afterEach(() => {
  jest.restoreAllMocks();
  fs.rmSync(root, { recursive: true, force: true });
});

type Exports = { describe(n: number): { squared: number; path: string; same: boolean } };
const runs = (compiled: ReturnType<typeof compileWithCodeCache>) => {
  expect((compiled.run() as Exports).describe(7)).toEqual({ squared: 49, path: 'bundle.cjs', same: true });
};

describe('codeCacheDir', () => {
  it('is $XDG_CACHE_HOME/agent-fleet, or ~/.cache/agent-fleet when XDG_CACHE_HOME is unset or relative', () => {
    expect(codeCacheDir({ XDG_CACHE_HOME: '/x/cache', HOME: '/home/u' })).toBe('/x/cache/agent-fleet');
    expect(codeCacheDir({ XDG_CACHE_HOME: 'relative/cache', HOME: '/home/u' })).toBe('/home/u/.cache/agent-fleet');
    expect(codeCacheDir({ HOME: '/home/u' })).toBe('/home/u/.cache/agent-fleet');
  });
});

describe('compileWithCodeCache', () => {
  it('writes the cache (0600 in a new 0700 directory) after a run, and the next compile uses it', () => {
    const first = compileWithCodeCache(bundle, 'fleet-status', env);
    expect(first.cache).toBe('write');
    expect(first.reason).toBe('no cache yet');
    runs(first);
    expect(first.saveCache()).toBe(true);
    expect(mode(cacheDir())).toBe(0o700);
    expect(mode(cacheFile())).toBe(0o600);
    expect(fs.readdirSync(cacheDir())).toEqual([path.basename(cacheFile())]);

    const second = compileWithCodeCache(bundle, 'fleet-status', env);
    expect(second.cache).toBe('used');
    runs(second);
    expect(second.saveCache()).toBe(false);
  });

  it('turns off without touching anything with FLEET_NO_CODE_CACHE=1', () => {
    const compiled = compileWithCodeCache(bundle, 'fleet-status', { ...env, FLEET_NO_CODE_CACHE: '1' });
    expect(compiled.cache).toBe('off');
    runs(compiled);
    expect(compiled.saveCache()).toBe(false);
    expect(fs.existsSync(cacheHome)).toBe(false);
  });

  it('refuses a directory open to others (plain compile, nothing written)', () => {
    fs.mkdirSync(cacheDir(), { recursive: true });
    fs.chmodSync(cacheDir(), 0o755);
    const compiled = compileWithCodeCache(bundle, 'fleet-status', env);
    expect(compiled.cache).toBe('off');
    expect(compiled.reason).toMatch(/has mode 755; it must be 700/);
    runs(compiled);
    expect(compiled.saveCache()).toBe(false);
    expect(fs.readdirSync(cacheDir())).toEqual([]);
  });

  it("refuses a directory of another user, and one that is a symbolic link", () => {
    fs.mkdirSync(cacheDir(), { recursive: true, mode: 0o700 });
    jest.spyOn(process, 'getuid').mockReturnValue(process.getuid!() + 1);
    const other = compileWithCodeCache(bundle, 'fleet-status', env);
    expect(other.cache).toBe('off');
    expect(other.reason).toMatch(/belongs to uid \d+, not to this user/);
    jest.restoreAllMocks();

    const elsewhere = path.join(root, 'elsewhere');
    fs.mkdirSync(elsewhere, { mode: 0o700 });
    fs.rmdirSync(cacheDir());
    fs.symlinkSync(elsewhere, cacheDir());
    const linked = compileWithCodeCache(bundle, 'fleet-status', env);
    expect(linked.cache).toBe('off');
    expect(linked.reason).toMatch(/is not a directory/);
    runs(linked);
  });

  it("refuses a cache file that is not this user's 0600 file, or a link, and replaces it after the run", () => {
    const written = compileWithCodeCache(bundle, 'fleet-status', env);
    written.run();
    written.saveCache();
    fs.chmodSync(cacheFile(), 0o644);
    const open = compileWithCodeCache(bundle, 'fleet-status', env);
    expect(open.cache).toBe('write');
    expect(open.reason).toMatch(/is not this user's mode-600 file/);
    runs(open);
    expect(open.saveCache()).toBe(true);
    expect(mode(cacheFile())).toBe(0o600);
    expect(compileWithCodeCache(bundle, 'fleet-status', env).cache).toBe('used');

    const target = path.join(root, 'planted');
    const file = cacheFile();
    fs.copyFileSync(file, target);
    fs.chmodSync(target, 0o600);
    fs.rmSync(file);
    fs.symlinkSync(target, file);
    const linked = compileWithCodeCache(bundle, 'fleet-status', env);
    expect(linked.cache).toBe('write');
    expect(linked.reason).toMatch(/cannot open .* \(ELOOP\)/);
    runs(linked);
    expect(linked.saveCache()).toBe(true);
    expect(fs.lstatSync(cacheFile()).isSymbolicLink()).toBe(false);
  });

  it('falls back on a corrupt payload (checksum) and rewrites it', () => {
    const written = compileWithCodeCache(bundle, 'fleet-status', env);
    written.run();
    written.saveCache();
    const bytes = fs.readFileSync(cacheFile());
    bytes[bytes.length - 10] ^= 0xff;
    fs.writeFileSync(cacheFile(), bytes);
    const corrupt = compileWithCodeCache(bundle, 'fleet-status', env);
    expect(corrupt.cache).toBe('write');
    expect(corrupt.reason).toMatch(/is corrupt \(checksum\)/);
    runs(corrupt);
    expect(corrupt.saveCache()).toBe(true);
    expect(compileWithCodeCache(bundle, 'fleet-status', env).cache).toBe('used');
  });

  it('rewrites a cache V8 rejects (cachedDataRejected)', () => {
    fs.mkdirSync(cacheDir(), { recursive: true, mode: 0o700 });
    // A well-formed file of this build whose payload is not V8's: only V8's own check can catch it.
    const key = cacheKey(fs.readFileSync(bundle), env);
    const payload = Buffer.alloc(4096, 7);
    const checksum = createHash('sha256').update(payload).digest('hex');
    fs.writeFileSync(path.join(cacheDir(), cacheFileName('fleet-status', key)), Buffer.concat([Buffer.from(`agent-fleet v8 code cache 1\n${key}\n${checksum}\n`, 'latin1'), payload]), { mode: 0o600 });
    expect('data' in readCacheFile(cacheFile(), key)).toBe(true);
    const rejected = compileWithCodeCache(bundle, 'fleet-status', env);
    expect(rejected.cache).toBe('write');
    expect(rejected.reason).toBe('V8 rejected the cache');
    runs(rejected);
    expect(rejected.saveCache()).toBe(true);
    expect(compileWithCodeCache(bundle, 'fleet-status', env).cache).toBe('used');
  });

  it('never takes the cache of another build (a changed bundle is a new key and a new file)', () => {
    const written = compileWithCodeCache(bundle, 'fleet-status', env);
    written.run();
    written.saveCache();
    const firstFile = cacheFile();
    fs.writeFileSync(bundle, SOURCE.replace('n * n', 'n * n * 1'));
    const rebuilt = compileWithCodeCache(bundle, 'fleet-status', env);
    expect(rebuilt.cache).toBe('write');
    expect(rebuilt.reason).toBe('no cache yet');
    runs(rebuilt);
    expect(rebuilt.saveCache()).toBe(true);
    // Both builds keep their own cache.
    expect(fs.readdirSync(cacheDir())).toHaveLength(2);
    expect(fs.readdirSync(cacheDir())).toContain(path.basename(firstFile));
    // A file of another key under this key's name (a collision of the 16-digit prefix) is not taken.
    const newKey = cacheKey(fs.readFileSync(bundle), env);
    fs.copyFileSync(firstFile, path.join(cacheDir(), cacheFileName('fleet-status', newKey)));
    const collided = compileWithCodeCache(bundle, 'fleet-status', env);
    expect(collided.reason).toBe('the cache is of another build, node or flags');
  });

  it('keeps the newest four cache files of a command when it writes one', () => {
    fs.mkdirSync(cacheDir(), { recursive: true, mode: 0o700 });
    const old = ['0', '1', '2', '3', '4'].map((d, i) => {
      const f = path.join(cacheDir(), `fleet-status-${d.repeat(16)}.v8cache`);
      fs.writeFileSync(f, 'old', { mode: 0o600 });
      fs.utimesSync(f, 1_000_000 + i, 1_000_000 + i);
      return path.basename(f);
    });
    fs.writeFileSync(path.join(cacheDir(), `fleet-list-${'0'.repeat(16)}.v8cache`), 'other command', { mode: 0o600 });
    const compiled = compileWithCodeCache(bundle, 'fleet-status', env);
    compiled.run();
    expect(compiled.saveCache()).toBe(true);
    expect(fs.readdirSync(cacheDir()).sort()).toEqual([`fleet-list-${'0'.repeat(16)}.v8cache`, cacheFileName('fleet-status', cacheKey(fs.readFileSync(bundle), env)), ...old.slice(2)].sort());
  });
});
