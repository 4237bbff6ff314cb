/**
 * fleetd keeps each task's output in `<workDir>/logs/<task-id>.log` on the instance that ran
 * it (bounded, newest kept; left in place after the task until pruned). `fleet logs` and
 * `fleet watch` read it when this machine has it (run on the instance, or a local daemon);
 * otherwise they fall back to the record's log_tail (the last 8 KiB, written when the task ends)
 * and say so. The task record deliberately names no log path: a path on another machine is
 * of no use to a reader, and fleetd's work dir is the instance's business.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_WORK_DIR, FLEET_ENV } from '../../daemon/src/contract';

/** --log-dir, else $FLEETD_WORK_DIR/logs, else fleetd's default /var/lib/fleetd/logs. */
export function logDirectory(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return explicit ?? path.join(env[FLEET_ENV.workDir] ?? DEFAULT_WORK_DIR, 'logs');
}

export function logFilePath(dir: string, taskId: string): string {
  return path.join(dir, `${taskId}.log`);
}

/** Reads a growing file from where it left off; starts over when the file was cut (fleetd keeps the newest bytes). */
export class LogFollower {
  private offset = 0;
  private partial = '';

  constructor(readonly file: string) {}

  /** Readable now? (Missing and unreadable are both "no": the caller falls back to the record.) */
  available(): boolean {
    try {
      fs.accessSync(this.file, fs.constants.R_OK);
      return true;
    } catch {
      return false;
    }
  }

  /** Bytes written since the last call, as text (a cut multi-byte character waits for the next call). */
  readNew(): string {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch {
      return '';
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < this.offset) this.offset = 0;
      const chunks: Buffer[] = [];
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        chunks.push(Buffer.from(buf.subarray(0, n)));
        this.offset += n;
      }
      const all = Buffer.concat(chunks);
      // Hold back an incomplete UTF-8 sequence at the end.
      let end = all.length;
      for (let i = Math.max(0, all.length - 3); i < all.length; i++) {
        const b = all[i];
        const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
        if (need > 1 && i + need > all.length) {
          end = i;
          break;
        }
      }
      this.offset -= all.length - end;
      return all.subarray(0, end).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Complete new lines (a trailing partial line waits; `flush` returns it too). */
  readLines(flush = false): string[] {
    const text = this.partial + this.readNew();
    const lines = text.split('\n');
    this.partial = flush ? '' : (lines.pop() ?? '');
    return lines.filter((l, i) => l !== '' || i < lines.length - 1);
  }
}
