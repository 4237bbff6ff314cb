/**
 * fleetd's own logs: one JSON object per line on stdout (journald keeps them), with the task
 * id on every task line. Secrets never reach a log: values registered with the redactor are
 * replaced in every line, log tail and record fleetd writes.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const REDACTED = '[REDACTED]';

/** Holds secret values in memory only, to scrub them from any text fleetd emits. */
export class Redactor {
  private readonly values = new Set<string>();
  add(value: string): void {
    // Very short values would redact ordinary text; secrets shorter than 4 chars are refused upstream.
    if (value.length >= 4) this.values.add(value);
  }
  remove(value: string): void {
    this.values.delete(value);
  }
  redact(text: string): string {
    let out = text;
    for (const v of this.values) if (out.includes(v)) out = out.split(v).join(REDACTED);
    return out;
  }
}

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
    this.write(this.redactor.redact(JSON.stringify(entry, errorReplacer)));
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
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}
