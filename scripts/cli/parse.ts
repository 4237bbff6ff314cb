/**
 * Argument parsing of the `fleet` CLI: durations (90s, 15m, 2h, 1h30m), sizes (512m, 2g),
 * K=V pairs, task ids, statuses, counts. Each parser throws a UsageError whose message quotes
 * the value safely (truncated, one line) and says which forms are accepted.
 */
// The contract's modules one by one, not its index: this file is in every command's start-up
// (program.ts), and the index would build every schema of the contract (docs/benchmarks.md, "CLI start-up").
import { TASK_ID_PATTERN, TASK_ID_PATTERN_SOURCE } from '../../daemon/src/contract/ids';
import { ENV_NAME_PATTERN, isReservedEnvName } from '../../daemon/src/contract/env-names';
import { ALL_STATUSES, type TaskStatus } from '../../daemon/src/contract/states';
import { quote } from '../../daemon/src/contract/validation';
import { UsageError } from './errors';

const DURATION_UNITS: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1 };
const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Seconds in `90s`, `15m`, `2h`, `1h30m`, `1d`, or a bare number of seconds (`90`). */
export function parseDuration(text: string, option = '--timeout'): number {
  const t = text.trim().toLowerCase();
  let seconds: number | undefined;
  if (/^\d+$/.test(t)) seconds = Number(t);
  else {
    const m = DURATION.exec(t);
    if (m && t !== '') seconds = ['d', 'h', 'm', 's'].reduce((sum, unit, i) => sum + Number(m[i + 1] ?? 0) * DURATION_UNITS[unit], 0);
  }
  if (seconds === undefined || !Number.isSafeInteger(seconds)) {
    throw new UsageError(`${option}: got ${quote(text)}, expected a duration like 90s, 15m, 2h or 1h30m`);
  }
  if (seconds <= 0) throw new UsageError(`${option}: got ${quote(text)}, expected a duration above zero`);
  return seconds;
}

const SIZE = /^(\d+(?:\.\d+)?)([kmgt])(?:i?b)?$/;
const SIZE_MIB: Record<string, number> = { k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024 };

/** MiB in `512m`, `2g`, `1.5g`, `65536k` (binary units, as Docker counts; rounded up to whole MiB). */
export function parseSize(text: string, option = '--memory'): number {
  const t = text.trim().toLowerCase();
  if (/^\d+(?:\.\d+)?$/.test(t)) throw new UsageError(`${option}: got ${quote(text)}, which has no unit`, `write it with a unit: ${t}m for MiB, or for example 2g`);
  const m = SIZE.exec(t);
  if (!m) throw new UsageError(`${option}: got ${quote(text)}, expected a size like 512m or 2g`);
  const mib = Math.ceil(Number(m[1]) * SIZE_MIB[m[2]]);
  if (!Number.isSafeInteger(mib) || mib <= 0) throw new UsageError(`${option}: got ${quote(text)}, expected a size above zero`);
  return mib;
}

/** A positive number of CPUs (fractions allowed: 0.5). */
export function parseCpus(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--cpus: got ${quote(text)}, expected a number of CPUs above zero, like 2 or 0.5`);
  return n;
}

/** An integer in [min, max]. */
export function parseCount(text: string, option: string, min = 1, max = 1000): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) throw new UsageError(`${option}: got ${quote(text)}, expected a whole number from ${min} to ${max}`);
  return n;
}

/** `NAME=value` → [NAME, value]. The name must be usable as a container variable. */
export function parseKeyValue(text: string, option: string, requireValue = false): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError(`${option}: got ${quote(text)}, expected NAME=VALUE`, `for example ${option} ${option === '--secret' ? 'GITHUB_TOKEN=arn:aws:secretsmanager:…' : 'LOG_LEVEL=debug'}`);
  const name = text.slice(0, eq);
  const value = text.slice(eq + 1);
  if (!ENV_NAME_PATTERN.test(name)) throw new UsageError(`${option}: ${quote(name)} is not a valid variable name (expected ${ENV_NAME_PATTERN.source})`);
  if (isReservedEnvName(name)) throw new UsageError(`${option}: ${name} is reserved: fleetd sets TASK_ID, AGENT_PAYLOAD, FLEET_* and AWS_* itself`, 'choose another name');
  if (requireValue && value === '') throw new UsageError(`${option}: ${name} has an empty value`);
  return [name, value];
}

/** Repeated NAME=VALUE options → an object; a name given twice is a mistake, not a silent override. */
export function parseKeyValues(list: readonly string[], option: string, requireValue = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const [name, value] = parseKeyValue(item, option, requireValue);
    if (Object.hasOwn(out, name)) throw new UsageError(`${option}: ${name} is given twice`, 'give each name once');
    out[name] = value;
  }
  return out;
}

/** A task id as typed by a user: checked before it goes anywhere (no shell, no query). */
export function parseTaskId(text: string): string {
  if (!TASK_ID_PATTERN.test(text)) {
    const size = text.length > 40 ? ` (${text.length} characters)` : '';
    throw new UsageError(`invalid task id ${quote(text)}${size}: expected ${TASK_ID_PATTERN_SOURCE}`, 'task ids are printed by "fleet submit" and "fleet list"');
  }
  return text;
}

/** `running`, `RUNNING`, `cancel-requested`, or several comma-separated. */
export function parseStatuses(text: string): TaskStatus[] {
  const out: TaskStatus[] = [];
  for (const raw of text.split(',')) {
    const s = raw.trim().toUpperCase().replace(/-/g, '_') as TaskStatus;
    if (!ALL_STATUSES.includes(s)) throw new UsageError(`--status: got ${quote(raw.trim())}, expected one of ${ALL_STATUSES.join(', ')} (or several, comma-separated)`);
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

/** Commander collector for a repeatable option. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
