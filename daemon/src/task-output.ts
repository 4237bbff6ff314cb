/**
 * A task's container output: secrets redacted, split into lines per stream, appended to a
 * bounded per-task log file (rotated to `<file>.1` at half the cap, so at most the cap is kept
 * and the newest output always survives), and kept as a short tail for the terminal record.
 *
 * Redaction runs on each stream's text as a whole, before it is cut into lines, so a secret
 * split across chunks or across lines (a PEM key) is whole when it is looked for. Each stream
 * decodes its bytes with its own UTF-8 decoder (a character split between two chunks stays one
 * character) and holds back, unredacted and unwritten, the text the next chunk can still turn
 * into a secret: after a scan, less than the longest registered secret form
 * (Redactor.redactStream); it is scanned again once it has grown to twice that length. Memory
 * per stream is bounded by twice the longest form plus one chunk and one line
 * (`MAX_LINE_BYTES`); the log file lags the container by at most that much until the stream
 * ends. The held text is written when more output pushes it out, when the stream ends, or on
 * `close()`, each time redacted with the secrets registered then.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Redactor } from './log';

/** A line longer than this (in characters) is cut into pieces (e.g. output with no newline at all). */
const MAX_LINE_BYTES = 64 * 1024;

interface OutputStream {
  write(chunk: Buffer): void;
  end(): void;
}

export class TaskOutput {
  private fileBytes = 0;
  private tailText = '';
  private closed = false;
  private readonly open = new Set<OutputStream>();
  totalBytes = 0;
  /** Told every line exactly as the file gets it (redacted): the CloudWatch stream (log-shipper.ts). */
  private readonly onLine?: (line: string) => void;
  /** Lines of the chunk being processed, not yet in the file. */
  private pending: string[] = [];

  constructor(
    readonly logPath: string,
    private readonly redactor: Redactor,
    private readonly maxFileBytes: number,
    private readonly tailBytes: number,
    options: { append?: boolean; onLine?: (line: string) => void } = {},
  ) {
    this.onLine = options.onLine;
    fs.mkdirSync(path.dirname(logPath), { recursive: true, mode: 0o700 });
    if (options.append && fs.existsSync(logPath)) this.fileBytes = fs.statSync(logPath).size;
    else fs.writeFileSync(logPath, '', { mode: 0o640 });
  }

  /** A writer for one stream (stdout or stderr): keeps its own decoder, carry-over and partial line. */
  stream(): OutputStream {
    const decoder = new StringDecoder('utf8');
    /** Decoded, not yet redacted: shorter than twice the longest registered secret form (plus a chunk). */
    let held = '';
    /** Redacted, not yet a whole line. */
    let partial = '';
    let ended = false;
    const emit = (clean: string) => {
      partial += clean;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        this.line(partial.slice(0, nl + 1));
        partial = partial.slice(nl + 1);
      }
      while (partial.length > MAX_LINE_BYTES) {
        const cut = isHighSurrogate(partial.charCodeAt(MAX_LINE_BYTES - 1)) ? MAX_LINE_BYTES - 1 : MAX_LINE_BYTES;
        this.line(`${partial.slice(0, cut)}\n`);
        partial = partial.slice(cut);
      }
    };
    const s: OutputStream = {
      write: (chunk: Buffer) => {
        if (ended) return;
        this.totalBytes += chunk.length;
        held += decoder.write(chunk);
        // Scanned once the held text is twice the longest form, not on every chunk: each
        // character is then looked at about twice, however small the chunks and long the secret.
        if (held.length < 2 * this.redactor.longest) return;
        const { done, rest } = this.redactor.redactStream(held);
        held = rest;
        emit(done);
        this.flush();
      },
      end: () => {
        if (ended) return;
        ended = true;
        this.open.delete(s);
        emit(this.redactor.redact(held + decoder.end()));
        held = '';
        if (partial) this.line(`${partial}\n`);
        partial = '';
        this.flush();
      },
    };
    this.open.add(s);
    return s;
  }

  /** One whole line of a stream, already redacted. */
  private line(clean: string): void {
    if (this.closed) return;
    const bytes = Buffer.byteLength(clean);
    if (this.fileBytes + bytes > this.maxFileBytes / 2) {
      this.flush();
      fs.renameSync(this.logPath, `${this.logPath}.1`);
      fs.writeFileSync(this.logPath, '', { mode: 0o640 });
      this.fileBytes = 0;
    }
    // Written once per chunk (flush), not once per line: a flooding container costs a few
    // system calls per 64 KiB chunk, not one per line.
    this.pending.push(clean);
    this.fileBytes += bytes;
    this.onLine?.(clean);
    this.tailText += clean;
    if (this.tailText.length > this.tailBytes * 2) this.tailText = this.tailText.slice(-this.tailBytes);
  }

  /** Appends the lines of the current chunk to the file in one write. */
  private flush(): void {
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    fs.appendFileSync(this.logPath, text);
  }

  /** The last `tailBytes` of output, redacted (once more, in case a secret was registered late). */
  tail(): string {
    const t = this.tailText.length > this.tailBytes ? this.tailText.slice(-this.tailBytes) : this.tailText;
    return this.redactor.redact(t);
  }

  /** Ends every open stream (its held text is redacted and written), then writes nothing more. */
  close(): void {
    if (this.closed) return;
    for (const s of [...this.open]) s.end();
    this.closed = true;
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
