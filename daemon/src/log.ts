/**
 * fleetd's own logs: one JSON object per line on stdout (journald keeps them), with the task
 * id on every task line. Secrets never reach a log: values registered with the redactor
 * (redact.ts) are replaced in every line, log tail and record fleetd writes.
 */
import { REDACTED, Redactor } from './redact';

export { REDACTED, Redactor } from './redact';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export class Logger {
  constructor(
    private readonly fields: Record<string, unknown> = {},
    private readonly redactor: Redactor = new Redactor(),
    private readonly minLevel: LogLevel = (process.env.FLEETD_LOG_LEVEL as LogLevel) in LEVELS ? (process.env.FLEETD_LOG_LEVEL as LogLevel) : 'info',
    private readonly write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  ) {}

  child(fields: Record<string, unknown>): Logger {
    return new Logger({ ...this.fields, ...fields }, this.redactor, this.minLevel, this.write);
  }

  get secrets(): Redactor {
    return this.redactor;
  }

  log(level: LogLevel, msg: string, extra: Record<string, unknown> = {}): void {
    if (LEVELS[level] < LEVELS[this.minLevel]) return;
    const entry = { ts: new Date().toISOString(), level, msg, ...this.fields, ...extra };
    this.write(this.encode(entry));
  }
  debug(msg: string, extra?: Record<string, unknown>): void {
    this.log('debug', msg, extra);
  }
  info(msg: string, extra?: Record<string, unknown>): void {
    this.log('info', msg, extra);
  }
  warn(msg: string, extra?: Record<string, unknown>): void {
    this.log('warn', msg, extra);
  }
  error(msg: string, extra?: Record<string, unknown>): void {
    this.log('error', msg, extra);
  }

  /**
   * The entry is first reduced to plain JSON data (an Error to its name and message), then
   * every string and key of it is redacted, decoded, before it is encoded: no escape sequence
   * can hide a secret from the redactor. The encoded line is redacted once more (defence in
   * depth: a secret that is itself spelled with escape sequences, `a\"b`, shows in the encoded
   * text only). When that second pass changed the line so that it no longer decodes to clean
   * JSON (the secret spelled part of the line's own syntax, e.g. `","level`), the line is
   * withheld: a line with the timestamp, level and a redacted message is written instead, or
   * `{}` when even that line spells the secret.
   */
  private encode(entry: { ts: string; level: LogLevel; msg: string }): string {
    let plain: unknown;
    try {
      plain = JSON.parse(JSON.stringify(entry, errorReplacer)) as unknown;
    } catch (err) {
      plain = { ts: entry.ts, level: entry.level, msg: entry.msg, log_error: `the entry's fields could not be encoded: ${(err as Error).message}` };
    }
    let line: string;
    try {
      line = JSON.stringify(this.redactor.redactValue(plain));
    } catch {
      line = JSON.stringify({ ts: entry.ts, level: entry.level, msg: this.redactor.redact(entry.msg), log_error: 'the entry nests too deep to redact; fields dropped' });
    }
    const again = this.redactor.redact(line);
    if (again === line || this.decodesClean(again)) return again;
    const withheld = JSON.stringify({ ts: entry.ts, level: entry.level, msg: REDACTED, log_error: 'line withheld: its JSON text matched a secret' });
    return this.redactor.redact(withheld) === withheld ? withheld : '{}';
  }

  private decodesClean(line: string): boolean {
    try {
      const parsed = JSON.parse(line) as unknown;
      return JSON.stringify(this.redactor.redactValue(parsed)) === JSON.stringify(parsed);
    } catch {
      return false;
    }
  }
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}
