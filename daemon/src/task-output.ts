/**
 * A task's container output: split into lines per stream, secrets redacted, appended to a
 * bounded per-task log file (rotated to `<file>.1` at half the cap, so at most the cap is kept
 * and the newest output always survives), and kept as a short tail for the terminal record.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Redactor } from './log';

/** A line longer than this is cut into pieces (e.g. output with no newline at all). */
const MAX_LINE_BYTES = 64 * 1024;

export class TaskOutput {
  private fileBytes = 0;
  private tailText = '';
  private closed = false;
  totalBytes = 0;

  constructor(
    readonly logPath: string,
    private readonly redactor: Redactor,
    private readonly maxFileBytes: number,
    private readonly tailBytes: number,
    options: { append?: boolean } = {},
  ) {
    fs.mkdirSync(path.dirname(logPath), { recursive: true, mode: 0o700 });
    if (options.append && fs.existsSync(logPath)) this.fileBytes = fs.statSync(logPath).size;
    else fs.writeFileSync(logPath, '', { mode: 0o640 });
  }

  /** A writer for one stream (stdout or stderr): keeps its own partial line. */
  stream(): { write(chunk: Buffer): void; end(): void } {
    let partial = '';
    return {
      write: (chunk: Buffer) => {
        this.totalBytes += chunk.length;
        partial += chunk.toString('utf8');
        let nl: number;
        while ((nl = partial.indexOf('\n')) >= 0) {
          this.line(partial.slice(0, nl + 1));
          partial = partial.slice(nl + 1);
        }
        while (partial.length > MAX_LINE_BYTES) {
          this.line(`${partial.slice(0, MAX_LINE_BYTES)}\n`);
          partial = partial.slice(MAX_LINE_BYTES);
        }
      },
      end: () => {
        if (partial) this.line(`${partial}\n`);
        partial = '';
      },
    };
  }

  private line(text: string): void {
    if (this.closed) return;
    const clean = this.redactor.redact(text);
    const bytes = Buffer.byteLength(clean);
    if (this.fileBytes + bytes > this.maxFileBytes / 2) {
      fs.renameSync(this.logPath, `${this.logPath}.1`);
      fs.writeFileSync(this.logPath, '', { mode: 0o640 });
      this.fileBytes = 0;
    }
    fs.appendFileSync(this.logPath, clean);
    this.fileBytes += bytes;
    this.tailText += clean;
    if (this.tailText.length > this.tailBytes * 2) this.tailText = this.tailText.slice(-this.tailBytes);
  }

  /** The last `tailBytes` of output, redacted (once more, in case a secret was registered late). */
  tail(): string {
    const t = this.tailText.length > this.tailBytes ? this.tailText.slice(-this.tailBytes) : this.tailText;
    return this.redactor.redact(t);
  }

  close(): void {
    this.closed = true;
  }
}
