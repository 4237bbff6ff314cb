/**
 * A task's /fleet/output with a size bound (docs/security.md, "Confinement"): a file system of
 * its own, `disk_mb` big, so an agent that writes without bound fills its own disk, gets ENOSPC
 * and fails, while the instance's disk (fleetd's work dir, the engine's data root, other tasks)
 * keeps its room.
 *
 * How: a sparse file in the task's directory (`output.img`, it takes only the blocks written),
 * an ext4 file system on it with no journal and no reserved blocks (`mkfs.ext4`, made in
 * ~0.1 s whatever its size: inode tables are initialised lazily, and `noinit_itable` keeps the
 * kernel from zeroing them behind the task), mounted through a loop device at the task's
 * output directory with nosuid,nodev. Its root belongs to the container's root user (the
 * remapped uid under userns-remap) and is mode 0777 so a non-root image user writes there too;
 * the task's directory above it stays root-only 0700 on the host. fleetd (host root) reads
 * result.json from it after the exit, then unmounts it (the loop device is freed with it) and
 * removes the directory. A mount outlives a fleetd restart, so a re-adopted container keeps it.
 *
 * Arguments are arrays (execFile); nothing here composes a shell command.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Left free on a full file system after a failed write: less than this counts as "full". */
export const FULL_BELOW_BYTES = 1024 * 1024;

export class OutputDiskError extends Error {
  override readonly name = 'OutputDiskError';
}

/** True when `dir` is a mount point (another device than its parent's). */
export function isMountPoint(dir: string): boolean {
  try {
    return fs.statSync(dir).dev !== fs.statSync(path.dirname(dir)).dev;
  } catch {
    return false;
  }
}

/**
 * Makes `outputDir` a `sizeMb` file system owned by `owner` (uid, gid), backed by `imageFile`.
 * Throws OutputDiskError with the tool's own words when the host cannot (no loop device, not
 * root, no mkfs.ext4).
 */
export async function mountOutputDisk(outputDir: string, imageFile: string, sizeMb: number, owner: { uid: number; gid: number }): Promise<void> {
  const fd = fs.openSync(imageFile, 'w', 0o600);
  try {
    fs.ftruncateSync(fd, sizeMb * 1024 * 1024);
  } finally {
    fs.closeSync(fd);
  }
  const step = async (what: string, file: string, args: string[]) => {
    try {
      await run(file, args, { timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new OutputDiskError(`${what} failed: ${(e.stderr || e.message).trim().slice(0, 300)}`, { cause: err });
    }
  };
  await step('mkfs.ext4 for the output disk', 'mkfs.ext4', ['-q', '-F', '-m', '0', '-O', '^has_journal', '-E', `lazy_itable_init=1,nodiscard,root_owner=${owner.uid}:${owner.gid}`, imageFile]);
  await step('mounting the output disk', 'mount', ['-o', 'loop,nosuid,nodev,noinit_itable', imageFile, outputDir]);
  fs.rmSync(path.join(outputDir, 'lost+found'), { recursive: true, force: true });
  fs.chmodSync(outputDir, 0o777);
}

/**
 * True when the output disk at `outputDir` has (almost) no room left: a write hit its bound.
 * `quota`: the directory is an engine volume under an xfs project quota, whose statfs reports
 * the quota; otherwise only a mount point of our own counts (a plain directory's statfs is the
 * work disk's).
 */
export function outputDiskFull(outputDir: string, quota = false): boolean {
  if (!quota && !isMountPoint(outputDir)) return false;
  try {
    const s = fs.statfsSync(outputDir);
    return s.bavail * s.bsize < FULL_BELOW_BYTES;
  } catch {
    return false;
  }
}

/** Unmounts the output disk if `outputDir` is one (lazily, so a process still in it cannot keep it), then nothing is left mounted. */
export function unmountOutputDisk(outputDir: string): void {
  if (!isMountPoint(outputDir)) return;
  execFileSync('umount', ['--lazy', outputDir], { timeout: 30_000, stdio: 'ignore' });
}

/** Removes a task's directory: its output disk unmounted first, so nothing in a mounted file system is walked into. */
export function removeTaskDir(dir: string): void {
  try {
    unmountOutputDisk(path.join(dir, 'output'));
  } catch {
    // Still mounted (umount refused): leave the directory for the next prune rather than
    // deleting through the mount point.
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
