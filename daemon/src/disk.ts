/** Free space and inodes of the filesystems tasks write to (statfs, no shell). */
import * as fs from 'node:fs';

export interface DiskReport {
  readonly path: string;
  readonly freeBytes: number;
  readonly freeInodes: number;
}

export function diskReport(path: string): DiskReport | undefined {
  try {
    const s = fs.statfsSync(path);
    return { path, freeBytes: s.bavail * s.bsize, freeInodes: s.ffree };
  } catch {
    return undefined;
  }
}

/** Why claiming must stop, or undefined when every path has room. */
export function diskShortage(paths: string[], minFreeBytes: number, minFreeInodes: number): string | undefined {
  for (const p of paths) {
    const r = diskReport(p);
    if (!r) continue;
    if (r.freeBytes < minFreeBytes) return `low disk on ${p}: ${(r.freeBytes / 1024 ** 3).toFixed(2)} GiB free, need ${(minFreeBytes / 1024 ** 3).toFixed(2)} GiB`;
    if (r.freeInodes < minFreeInodes) return `low inodes on ${p}: ${r.freeInodes} free, need ${minFreeInodes}`;
  }
  return undefined;
}
