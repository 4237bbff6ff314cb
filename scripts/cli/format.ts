/**
 * Human output of the CLI: ages, durations, times, tables, a task's outcome. Machine output is
 * `--json` (printJson); nothing here is meant to be parsed.
 */
import { isTerminal } from '../../daemon/src/contract/states';
import type { TaskEvent, TaskRecord } from '../../daemon/src/contract';

/** `850ms`, `42s`, `3m 05s`, `2h 10m`, `3d 4h`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  const neg = ms < 0 ? '-' : '';
  const a = Math.abs(ms);
  if (a < 1000) return `${neg}${Math.round(a)}ms`;
  const s = Math.floor(a / 1000);
  if (s < 60) return `${neg}${a < 10_000 ? (a / 1000).toFixed(1) : s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${neg}${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${neg}${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${neg}${Math.floor(h / 24)}d ${h % 24}h`;
}

export function formatAge(at: number | undefined, now = Date.now()): string {
  return at === undefined ? '-' : `${formatDuration(now - at)} ago`;
}

/** A lease's time left, never negative: `1m 30s left`, `expired 12s ago`. */
export function formatLeaseLeft(expiresAt: number, now = Date.now()): string {
  return expiresAt >= now ? `${formatDuration(expiresAt - now)} left` : `expired ${formatDuration(now - expiresAt)} ago`;
}

/** UTC, to the second: unambiguous across machines. */
export function formatTime(at: number | undefined): string {
  return at === undefined ? '-' : new Date(at).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** Left-aligned columns, two spaces apart; the header in capitals. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header.map((h) => h.toUpperCase())), ...rows.map(line)].join('\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One line per event: `12:00:01Z CLAIMED by i-0abc (attempt 1)`. */
export function formatEvent(e: TaskEvent): string {
  const detail = Object.entries(e.detail ?? {})
    .filter(([k]) => k !== 'container_id')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const who = e.instance_id ? ` on ${e.instance_id}` : '';
  const attempt = e.attempt ? ` (attempt ${e.attempt})` : '';
  return `${formatTime(e.at).slice(11)} ${e.type}${who}${attempt}${detail ? `  ${detail}` : ''}`;
}

/** `COMPLETED in 3.2s (exit code 0)`, `FAILED: exit code 3`, `CANCELLED: cancelled by request`. */
export function formatOutcome(r: TaskRecord): string {
  const took = r.duration_ms !== undefined ? ` in ${formatDuration(r.duration_ms)}` : '';
  const exit = r.exit_code !== undefined ? ` (exit code ${r.exit_code}${r.oom_killed ? ', out of memory' : ''})` : '';
  return `${r.task_id} ${r.status}${took}${exit}${r.reason && r.status !== 'COMPLETED' ? `: ${r.reason}` : ''}`;
}

/** The live line of a running task: status, where, heartbeat age, elapsed. */
export function formatProgress(r: TaskRecord, now = Date.now()): string {
  const parts: string[] = [r.status];
  if (r.instance_id && !isTerminal(r.status)) parts.push(`on ${r.instance_id}`);
  if (r.attempt > 1) parts.push(`attempt ${r.attempt}`);
  if (r.heartbeat_at !== undefined && !isTerminal(r.status)) parts.push(`heartbeat ${formatAge(r.heartbeat_at, now)}`);
  parts.push(`${formatDuration(now - (r.started_at ?? r.created_at))} ${r.started_at ? 'running' : 'waiting'}`);
  return parts.join(' · ');
}

/** An attempt's dispatch phases in one line (docs/scaling.md "Dispatch timings"). */
export function formatDispatch(d: NonNullable<TaskRecord['dispatch']>): string {
  const ms = (v: number | undefined) => (v === undefined ? '?' : v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`);
  return [
    `queue ${ms(d.queue_wait_ms)}`,
    `claim ${ms(d.claim_ms)}`,
    `image ${ms(d.image_pull_ms)} (${d.image_pulled ? 'pulled' : 'on the engine'})`,
    `create ${ms(d.container_create_ms)}`,
    `start ${ms(d.container_start_ms)}`,
  ].join(' · ');
}

/** The record in `fleet status` form: label, value lines. */
export function formatRecord(r: TaskRecord, now = Date.now()): string {
  const spec = r.spec as { image?: unknown; timeout_s?: unknown };
  const rows: Array<[string, string | undefined]> = [
    ['task', r.task_id],
    ['status', `${r.status}${r.attempt ? ` (attempt ${r.attempt}${r.instance_id ? ` on ${r.instance_id}` : ''})` : ''}`],
    ['image', typeof spec.image === 'string' ? spec.image : undefined],
    ['created', `${formatTime(r.created_at)} (${formatAge(r.created_at, now)})`],
    ['started', r.started_at !== undefined ? formatTime(r.started_at) : undefined],
    ['dispatch', r.dispatch ? formatDispatch(r.dispatch) : undefined],
    ['heartbeat', r.heartbeat_at !== undefined && !isTerminal(r.status) ? formatAge(r.heartbeat_at, now) : undefined],
    ['lease', r.lease_expires_at !== undefined && !isTerminal(r.status) ? `until ${formatTime(r.lease_expires_at)} (${formatLeaseLeft(r.lease_expires_at, now)})` : undefined],
    ['cancel', r.cancel_requested_at !== undefined ? `requested ${formatTime(r.cancel_requested_at)}` : undefined],
    ['finished', r.finished_at !== undefined ? formatTime(r.finished_at) : undefined],
    ['duration', r.duration_ms !== undefined ? formatDuration(r.duration_ms) : undefined],
    ['exit code', r.exit_code !== undefined ? String(r.exit_code) : undefined],
    ['oom killed', r.oom_killed ? 'yes' : undefined],
    ['reason', r.reason],
    ['attempts left', isTerminal(r.status) ? undefined : String(r.attempts_left)],
    ['takeovers', r.takeovers ? `${r.takeovers} (instances that stopped heartbeating; their attempts were refunded)` : undefined],
    ['result error', r.result_error],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.filter(([, v]) => v !== undefined).map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  if (r.result !== undefined) lines.push(`${'result'.padEnd(width)}  ${JSON.stringify(r.result, null, 2).replace(/\n/g, `\n${' '.repeat(width + 2)}`)}`);
  return lines.join('\n');
}
