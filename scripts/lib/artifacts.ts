/**
 * A task's artifacts (docs/logs.md): what the agent left under /fleet/output, uploaded by fleetd
 * after the container exited to the payload bucket under `artifacts/<task_id>/<attempt>/`
 * (contract/logs.ts). Lists them and downloads them into a directory; a key that would land
 * outside that directory (fleetd never writes one, but the bucket may hold anything) is refused.
 *
 * Needs s3:ListBucket (prefix artifacts/) and s3:GetObject on artifacts/*: grantRead gives both.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { artifactsPrefix } from '../../daemon/src/contract';
import { FleetClientError, FleetRequestError } from './errors';

export interface ArtifactEntry {
  readonly key: string;
  /** The path under the attempt's prefix (as fleetd sanitised it). */
  readonly path: string;
  readonly size: number;
  readonly lastModified?: string;
}

export class UnsafeArtifactPathError extends FleetClientError {
  override readonly name = 'UnsafeArtifactPathError';
}

/** Every artifact of one attempt, in key order. */
export async function listArtifacts(s3: S3Client, bucket: string, taskId: string, attempt: number): Promise<ArtifactEntry[]> {
  const prefix = artifactsPrefix(taskId, attempt);
  const out: ArtifactEntry[] = [];
  let token: string | undefined;
  do {
    let res;
    try {
      res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    } catch (err) {
      throw new FleetRequestError(`listing s3://${bucket}/${prefix}`, err);
    }
    for (const o of res.Contents ?? []) {
      if (!o.Key) continue;
      out.push({ key: o.Key, path: o.Key.slice(prefix.length), size: o.Size ?? 0, ...(o.LastModified ? { lastModified: o.LastModified.toISOString() } : {}) });
    }
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Where an artifact lands under `dir`; throws when its path would leave `dir`. */
export function downloadTarget(dir: string, artifactPath: string): string {
  const root = path.resolve(dir);
  const target = path.resolve(root, artifactPath);
  // eslint-disable-next-line no-control-regex
  if (!artifactPath || path.isAbsolute(artifactPath) || artifactPath.split('/').includes('..') || /[\u0000-\u001f]/.test(artifactPath) || !target.startsWith(root + path.sep)) {
    throw new UnsafeArtifactPathError(`artifact path ${JSON.stringify(artifactPath)} would land outside ${root}; not downloaded`);
  }
  return target;
}

/** Downloads each artifact to `dir/<path>` (directories made as needed); returns the files written. */
export async function downloadArtifacts(s3: S3Client, bucket: string, entries: readonly ArtifactEntry[], dir: string): Promise<string[]> {
  const written: string[] = [];
  for (const e of entries) {
    const target = downloadTarget(dir, e.path);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    let res;
    try {
      res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: e.key }));
    } catch (err) {
      throw new FleetRequestError(`downloading s3://${bucket}/${e.key}`, err);
    }
    // 'wx': never overwrite through an existing link or file.
    await pipeline(res.Body as Readable, fs.createWriteStream(target, { flags: 'wx' }));
    written.push(target);
  }
  return written;
}
