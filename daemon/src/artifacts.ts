/**
 * Artifacts: after the container exited and before the terminal write, fleetd uploads what the
 * agent left under /fleet/output (the task's output directory on the host) to the payload
 * bucket under `artifacts/<task_id>/<attempt>/<sanitised relative path>` (docs/logs.md).
 *
 * - result.json is not uploaded: it is recorded on the task record, parsed and redacted
 *   (runner.ts readResult); an unredacted copy in S3 would undo that.
 * - Never follows a symlink and never leaves the output directory: the walk uses lstat and
 *   skips everything that is not a regular file or a directory; each file is opened with
 *   O_NOFOLLOW and checked again on the open descriptor (fstat) before it is read, and its
 *   directory must still resolve inside the output directory (no parent swapped for a link).
 * - Names are sanitised: control characters become `_`, `.`/`..` segments and empty segments
 *   are replaced or dropped (no key can climb out of its prefix), and a key longer than S3's
 *   1,024 bytes is shortened to a hash plus the end of the name. Two names that sanitise alike
 *   get `~2`, `~3`.
 * - Caps (config `artifacts`, ARTIFACT_DEFAULTS): files, bytes per file, bytes in all. What a
 *   cap, a link or a special file left out makes the summary `truncated`.
 * - Errors never fail the task: the record gets `artifacts_error` instead.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { sdk } from './aws';
import { artifactsPrefix, type ArtifactsSummary } from './contract';
import type { Logger } from './log';
import { RETRY_POLICIES, retry } from './retry';

export interface ArtifactLimits {
  readonly maxFiles: number;
  readonly maxFileBytes: number;
  readonly maxTotalBytes: number;
}

/** S3's key limit, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** Directories deeper than this under /fleet/output are not walked. */
export const MAX_ARTIFACT_DEPTH = 32;
/** Not uploaded: recorded on the task record instead (see above). */
export const EXCLUDED_ARTIFACTS = new Set(['result.json']);

export interface ArtifactFile {
  /** Path on the host. */
  readonly file: string;
  /** Relative path as the agent wrote it. */
  readonly relative: string;
  /** Full S3 key. */
  readonly key: string;
  readonly size: number;
}

export interface ArtifactPlan {
  readonly files: ArtifactFile[];
  /** Something was left out (a cap, a link, a special file, a directory too deep). */
  readonly truncated: boolean;
  readonly skipped: string[];
}

/** Sanitises one relative path (segments separated by `/`) into a key part; undefined when nothing is left. */
export function sanitiseRelativePath(relative: string): string | undefined {
  const segments = relative
    .split('/')
    // eslint-disable-next-line no-control-regex
    .map((s) => s.replace(/[\u0000-\u001f\u007f\u0080-\u009f\\]/g, '_'))
    .filter((s) => s !== '' && s !== '.')
    .map((s) => (s === '..' ? '__' : s));
  return segments.length ? segments.join('/') : undefined;
}

/**
 * The key for a part, shortened when prefix + part would exceed MAX_KEY_BYTES: `long/`, a hash
 * of the whole relative path, and the file's own name (a file name is at most 255 bytes, so it
 * fits; when not even that fits, the hash alone).
 */
export function fitKey(prefix: string, part: string): string {
  if (Buffer.byteLength(prefix + part) <= MAX_KEY_BYTES) return prefix + part;
  const hash = createHash('sha256').update(part).digest('hex').slice(0, 32);
  const named = `${prefix}long/${hash}-${path.posix.basename(part)}`;
  return Buffer.byteLength(named) <= MAX_KEY_BYTES ? named : `${prefix}long/${hash}`;
}

/** Walks the output directory (lstat only) and applies the caps. */
export function planArtifacts(outputDir: string, prefix: string, limits: ArtifactLimits): ArtifactPlan {
  const files: ArtifactFile[] = [];
  const skipped: string[] = [];
  const used = new Set<string>();
  let total = 0;
  let truncated = false;
  const skip = (relative: string, why: string) => {
    truncated = true;
    if (skipped.length < 20) skipped.push(`${JSON.stringify(relative)}: ${why}`);
  };
  const walk = (dir: string, relDir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      skip(relDir || '.', `not readable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const relative = relDir ? `${relDir}/${e.name}` : e.name;
      const file = path.join(dir, e.name);
      if (depth === 0 && EXCLUDED_ARTIFACTS.has(e.name)) continue;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(file);
      } catch {
        continue; // gone meanwhile
      }
      if (st.isSymbolicLink()) {
        skip(relative, 'a symbolic link (never followed)');
      } else if (st.isDirectory()) {
        if (depth + 1 >= MAX_ARTIFACT_DEPTH) skip(relative, `deeper than ${MAX_ARTIFACT_DEPTH} directories`);
        else walk(file, relative, depth + 1);
      } else if (!st.isFile()) {
        skip(relative, 'not a regular file');
      } else if (files.length >= limits.maxFiles) {
        skip(relative, `over the ${limits.maxFiles}-file cap`);
      } else if (st.size > limits.maxFileBytes) {
        skip(relative, `${st.size} bytes, over the ${limits.maxFileBytes}-byte per-file cap`);
      } else if (total + st.size > limits.maxTotalBytes) {
        skip(relative, `would pass the ${limits.maxTotalBytes}-byte total cap`);
      } else {
        const part = sanitiseRelativePath(relative);
        if (!part) {
          skip(relative, 'no usable name');
          continue;
        }
        let key = fitKey(prefix, part);
        for (let n = 2; used.has(key); n++) key = fitKey(prefix, `${part}~${n}`);
        used.add(key);
        files.push({ file, relative, key, size: st.size });
        total += st.size;
      }
    }
  };
  walk(outputDir, '', 0);
  return { files, truncated, skipped };
}

export class ArtifactFileError extends Error {
  override readonly name = 'ArtifactFileError';
}

/**
 * Opens a planned file for reading without following a link at its last component, and checks
 * that its directory still resolves inside `root` and the descriptor is a regular file.
 */
export function openArtifact(root: string, file: string): { fd: number; size: number } {
  const realRoot = fs.realpathSync(root);
  const realDir = fs.realpathSync(path.dirname(file));
  if (realDir !== realRoot && !realDir.startsWith(realRoot + path.sep)) throw new ArtifactFileError(`${file}: its directory resolves outside the output directory`);
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | (fs.constants.O_NONBLOCK ?? 0));
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new ArtifactFileError(`${file}: not a regular file when opened`);
  }
  return { fd, size: st.size };
}

export interface UploadArtifactsOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly outputDir: string;
  readonly limits: ArtifactLimits;
  readonly log: Logger;
}

export type ArtifactsOutcome = { artifacts?: ArtifactsSummary; artifacts_error?: string };

/** Plans and uploads; returns the record's summary (nothing when the directory is empty). */
export async function uploadArtifacts(o: UploadArtifactsOptions): Promise<ArtifactsOutcome> {
  const prefix = artifactsPrefix(o.taskId, o.attempt);
  if (!fs.existsSync(o.outputDir)) return {};
  let plan: ArtifactPlan;
  try {
    plan = planArtifacts(o.outputDir, prefix, o.limits);
  } catch (err) {
    return { artifacts_error: `listing /fleet/output failed: ${(err as Error).message}` };
  }
  if (plan.files.length === 0 && !plan.truncated) return {};
  if (plan.skipped.length) o.log.warn('some artifacts were left out', { skipped: plan.skipped });
  let count = 0;
  let bytes = 0;
  let truncated = plan.truncated;
  const errors: string[] = [];
  for (const f of plan.files) {
    let opened: { fd: number; size: number };
    try {
      opened = openArtifact(o.outputDir, f.file);
    } catch (err) {
      truncated = true;
      o.log.warn('an artifact was not uploaded', { file: f.relative, error: err });
      continue;
    }
    try {
      // Streamed from the descriptor, at most the planned size: a file that grew since the walk is cut there.
      const size = Math.min(opened.size, f.size);
      await retry(`uploading artifact ${f.key}`, () => o.s3.send(new (sdk.s3().PutObjectCommand)({
        Bucket: o.bucket,
        Key: f.key,
        Body: size === 0 ? '' : fs.createReadStream('', { fd: opened.fd, start: 0, end: size - 1, autoClose: false }),
        ContentLength: size,
        ContentType: 'application/octet-stream',
      })), {
        policy: RETRY_POLICIES.taskStep,
        onRetry: (r) => o.log.warn('uploading an artifact failed; retrying', { key: f.key, error: r.error, attempt: r.attempt }),
      });
      const off = size;
      count++;
      bytes += off;
    } catch (err) {
      errors.push(`${f.relative}: ${(err as Error).message}`);
      if (errors.length >= 3) break;
    } finally {
      fs.closeSync(opened.fd);
    }
  }
  const artifacts = { prefix, count, bytes, truncated };
  if (errors.length) return { artifacts, artifacts_error: `uploading artifacts failed (${count} of ${plan.files.length} uploaded): ${errors.join('; ').slice(0, 1000)}` };
  return { artifacts };
}
