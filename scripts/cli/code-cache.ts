/**
 * Runs a CommonJS bundle with a V8 code cache: the bundle's `fleet.mjs` runs `fleet status` and
 * `fleet list` this way (dist/bundle/fleet-read.cjs; issue #18, docs/benchmarks.md "CLI start-up").
 * Node 20 has no compile cache for ES modules (`module.enableCompileCache` is Node ≥ 22.1); V8's
 * `cachedData` is offered to code compiled through `vm.Script` only. The cache is written after a
 * run that exited 0 (`createCachedData()` then holds the functions the command compiled lazily
 * too) and used by the next run of the same command.
 *
 * A V8 code cache is executable code, so where it lives is checked before it is read:
 * - one directory per user, `$XDG_CACHE_HOME/agent-fleet` (absolute paths only, as the XDG spec
 *   says) or `~/.cache/agent-fleet`, created 0700; refused (no cache, plain compile) when it is a
 *   symbolic link, belongs to another user or is open to group or others;
 * - each file opened without following a link, refused unless it is a regular file of this user
 *   with mode 0600; written 0600 to a fresh temp name (O_EXCL), then renamed into place;
 * - a key from the bundle's SHA-256, the node version, the architecture and the node flags, in
 *   the file's name and header, so a new build or a new node never takes a stale cache (and two
 *   builds in use side by side do not overwrite each other's; the newest KEEP_PER_COMMAND files of
 *   a command are kept); the payload's SHA-256 too, as V8 (release builds) does not checksum what
 *   it deserializes.
 * Nothing here fails the command: any problem means a plain compile (FLEET_DEBUG=1 says why on
 * stderr), and a cache V8 rejects (`cachedDataRejected`) is rewritten. FLEET_NO_CODE_CACHE=1
 * turns it off: no directory is touched.
 *
 * The bundle must not use `import()`: in Node 20 functions restored from a cache lose vm's
 * `importModuleDynamically` callback (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), so the bundle
 * turns them into `require`s (scripts/bundle.ts, format 'cjs-cached').
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';

export const NO_CODE_CACHE_ENV = 'FLEET_NO_CODE_CACHE';
const MAGIC = 'agent-fleet v8 code cache 1\n';
const HEX_LINE = 65; // 64 hex digits + '\n'
const HEADER_BYTES = MAGIC.length + 2 * HEX_LINE;
/** A cache is ~90 % of its bundle's size; anything far larger is not ours. */
const MAX_CACHE_BYTES = 64 * 1024 * 1024;
/** Cache files kept per command (builds or node versions in use side by side); older ones are removed on write. */
const KEEP_PER_COMMAND = 4;

/** Where this user's caches live, or undefined when no absolute home is known. */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'agent-fleet');
  let home: string;
  try {
    home = env.HOME || os.homedir();
  } catch {
    return undefined;
  }
  return home && path.isAbsolute(home) ? path.join(home, '.cache', 'agent-fleet') : undefined;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** What makes a cache valid for this process: the bundle's bytes, node, the architecture, the flags. */
export function cacheKey(source: Buffer, env: NodeJS.ProcessEnv = process.env): string {
  return sha256([sha256(source), process.version, process.arch, process.execArgv.join(' '), env.NODE_OPTIONS ?? ''].join('\0'));
}

function currentUid(): number {
  if (typeof process.getuid !== 'function') throw new Error('no user ids on this platform: code cache off');
  return process.getuid();
}

/** Creates `dir` (0700) when missing; throws unless it is a real directory of this user closed to others. */
export function ensurePrivateDir(dir: string): void {
  const uid = currentUid();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (st.uid !== uid) throw new Error(`${dir} belongs to uid ${st.uid}, not to this user (uid ${uid})`);
  if ((st.mode & 0o077) !== 0) throw new Error(`${dir} has mode ${(st.mode & 0o777).toString(8)}; it must be 700`);
}

export type CacheRead = { readonly data: Buffer } | { readonly missing: string };

/** The payload of `file` when it is this user's 0600 file with `key` and an intact payload. */
export function readCacheFile(file: string, key: string): CacheRead {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { missing: code === 'ENOENT' ? 'no cache yet' : `cannot open ${file} (${code ?? String(err)})` };
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { missing: `${file} is not a regular file` };
    if (st.uid !== currentUid() || (st.mode & 0o077) !== 0) return { missing: `${file} is not this user's mode-600 file (uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)})` };
    if (st.size < HEADER_BYTES || st.size > MAX_CACHE_BYTES) return { missing: `${file}: ${st.size} bytes is not a cache of this tool` };
    const bytes = Buffer.allocUnsafe(st.size);
    let read = 0;
    while (read < bytes.length) {
      const n = fs.readSync(fd, bytes, read, bytes.length - read, read);
      if (n === 0) return { missing: `${file} shrank while being read` };
      read += n;
    }
    const header = bytes.subarray(0, HEADER_BYTES).toString('latin1');
    if (!header.startsWith(MAGIC)) return { missing: `${file} is not a cache of this tool` };
    if (header.slice(MAGIC.length, MAGIC.length + 64) !== key) return { missing: 'the cache is of another build, node or flags' };
    const payload = bytes.subarray(HEADER_BYTES);
    if (header.slice(MAGIC.length + HEX_LINE, MAGIC.length + HEX_LINE + 64) !== sha256(payload)) return { missing: `${file} is corrupt (checksum)` };
    return { data: payload };
  } finally {
    fs.closeSync(fd);
  }
}

/** `<cacheName>-<key prefix>.v8cache`: one file per build, node and flags. */
export function cacheFileName(cacheName: string, key: string): string {
  return `${cacheName}-${key.slice(0, 16)}.v8cache`;
}

/** Removes all but the `keep` newest cache files of `cacheName` in `dir` (regular files of this user only). */
export function pruneCacheFiles(dir: string, cacheName: string, keep = KEEP_PER_COMMAND): void {
  const pattern = new RegExp(`^${cacheName.replace(/[^a-z0-9-]/gi, '')}-[0-9a-f]{16}\\.v8cache$`);
  const uid = currentUid();
  const files = fs.readdirSync(dir).filter((f) => pattern.test(f)).flatMap((f) => {
    const st = fs.lstatSync(path.join(dir, f), { throwIfNoEntry: false });
    return st?.isFile() && st.uid === uid ? [{ file: path.join(dir, f), mtime: st.mtimeMs }] : [];
  });
  for (const old of files.sort((a, b) => b.mtime - a.mtime).slice(keep)) fs.rmSync(old.file, { force: true });
}

/** Writes `payload` under `key` atomically: a new 0600 file (never an existing name), then rename. */
export function writeCacheFile(file: string, key: string, payload: Buffer): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(temp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    try {
      fs.writeSync(fd, `${MAGIC}${key}\n${sha256(payload)}\n`, null, 'latin1');
      fs.writeSync(fd, payload);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}

export interface CompiledBundle {
  /** 'used': compiled from the cache; 'write': no usable cache, saveCache() writes one; 'off': no cache at all. */
  readonly cache: 'used' | 'write' | 'off';
  /** Why no cache was used (for FLEET_DEBUG). */
  readonly reason?: string;
  /** Runs the module (its exports are returned). */
  run(): unknown;
  /** After run(): writes the code cache when `cache` is 'write'; false when there was nothing to do or it failed. */
  saveCache(): boolean;
}

/**
 * Compiles the CommonJS file `file` as Node would, with the cache `<dir>/<cacheName>-<key>.v8cache`
 * when one is usable. `env` supplies FLEET_NO_CODE_CACHE, FLEET_DEBUG and the cache directory.
 */
export function compileWithCodeCache(file: string, cacheName: string, env: NodeJS.ProcessEnv = process.env): CompiledBundle {
  const debug = (message: string) => {
    if (env.FLEET_DEBUG) process.stderr.write(`fleet: code cache: ${message}\n`);
  };
  const source = fs.readFileSync(file);
  let target: { file: string; key: string } | undefined;
  let cachedData: Buffer | undefined;
  let reason: string | undefined;
  const off = env[NO_CODE_CACHE_ENV];
  if (off && off !== '0') reason = `off (${NO_CODE_CACHE_ENV}=${off})`;
  else {
    try {
      const dir = codeCacheDir(env);
      if (!dir) throw new Error('no home directory: code cache off');
      ensurePrivateDir(dir);
      const key = cacheKey(source, env);
      target = { file: path.join(dir, cacheFileName(cacheName, key)), key };
      const read = readCacheFile(target.file, target.key);
      if ('data' in read) cachedData = read.data;
      else reason = read.missing;
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
      target = undefined;
    }
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname) { ${source.toString('utf8')}\n})`;
  const script = new vm.Script(wrapped, { filename: file, ...(cachedData ? { cachedData } : {}) });
  if (cachedData && script.cachedDataRejected) reason = 'V8 rejected the cache';
  const cache = !target ? 'off' : cachedData && !script.cachedDataRejected ? 'used' : 'write';
  debug(cache === 'used' ? `using ${target!.file}` : `${reason ?? 'unknown'}${cache === 'write' ? `; ${target!.file} is written after a successful run` : ''}`);
  return {
    cache,
    ...(reason !== undefined ? { reason } : {}),
    run() {
      const module = { exports: {}, filename: file, id: file, loaded: false };
      const fn = script.runInThisContext() as (exports: unknown, require: NodeRequire, module: unknown, filename: string, dirname: string) => void;
      fn.call(module.exports, module.exports, createRequire(file), module, file, path.dirname(file));
      module.loaded = true;
      return module.exports;
    },
    saveCache() {
      if (cache !== 'write') return false;
      try {
        writeCacheFile(target!.file, target!.key, script.createCachedData());
        pruneCacheFiles(path.dirname(target!.file), cacheName);
        return true;
      } catch (err) {
        debug(`not written: ${err instanceof Error ? err.message : String(err)}`);
        return false;
      }
    },
  };
}

/** The bundle's way to run a command: compile (cached when possible), run, and save the cache when the process exits 0. */
export function runWithCodeCache(file: string, cacheName: string): void {
  const compiled = compileWithCodeCache(file, cacheName);
  if (compiled.cache === 'write') {
    process.once('exit', (code) => {
      if (code === 0) compiled.saveCache();
    });
  }
  compiled.run();
}
