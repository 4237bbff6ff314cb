/**
 * Turning schema failures into messages a person can act on: each names the field, says what
 * was expected and what was got. Parsing never throws; callers get a `Parsed<T>`.
 */
import * as z from 'zod';

export type Parsed<T> = { ok: true; value: T } | { ok: false; problems: string[] };

export class ContractValidationError extends Error {
  override readonly name = 'ContractValidationError';
  constructor(
    readonly what: string,
    readonly problems: string[],
  ) {
    super(`invalid ${what}: ${problems.join('; ')}`);
  }
}

/** Line separators JSON.stringify leaves raw; escaped so a message always stays on one line. */
const RAW_LINE_SEPARATORS = /[\u2028\u2029]/g;

/** A JSON-quoted string, truncated to `max` characters: safe to embed in a one-line message. */
export function quote(value: string, max = 40): string {
  const shown = value.length > max ? `${value.slice(0, max)}…` : value;
  return JSON.stringify(shown).replace(RAW_LINE_SEPARATORS, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/** Any text squeezed onto one line and truncated (for messages of errors we did not write). */
export function oneLine(text: string, max = 200): string {
  const flat = text.replace(/[\r\n\u2028\u2029]+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** A short, safe rendering of a received value: truncated, never multi-line. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return `symbol ${quote(value.description ?? '')}`;
  if (typeof value === 'string') return value.length > 40 ? `${quote(value)} (${value.length} chars)` : quote(value);
  return `${typeof value} ${String(value)}`;
}

/** Path segments shown bare (`.name`); anything else is quoted and truncated (`["a b"]`). */
const PLAIN_SEGMENT = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

function fieldName(path: readonly PropertyKey[], root: string): string {
  return (
    root +
    path
      .map((p) => {
        if (typeof p === 'number') return `[${p}]`;
        const key = String(p);
        return typeof p === 'string' && PLAIN_SEGMENT.test(key) ? `.${key}` : `[${quote(key, 64)}]`;
      })
      .join('')
  );
}

/** At most this many unknown field names are listed in one message. */
const MAX_LISTED_KEYS = 10;

function formatIssue(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[], root: string): string[] {
  const path = [...prefix, ...issue.path];
  const field = fieldName(path, root);
  const got = 'input' in issue ? `, got ${describeValue(issue.input)}` : '';
  if (issue.code === 'unrecognized_keys') {
    const listed = issue.keys.slice(0, MAX_LISTED_KEYS).map((k) => quote(k, 64));
    const more = issue.keys.length > MAX_LISTED_KEYS ? ` and ${issue.keys.length - MAX_LISTED_KEYS} more` : '';
    return [`${field}: unknown field(s) ${listed.join(', ')}${more}; remove them (check the spelling)`];
  }
  if (issue.code === 'invalid_key') {
    // A record key failed its schema: report the key's own problem, not zod's generic text.
    const inner = issue.issues[0]?.message ?? issue.message;
    return [`${field}: key ${inner}`];
  }
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    // A branch that failed somewhere inside the value (not just "wrong type here") is the one
    // the value was meant for: report its problems instead of zod's bare "Invalid input".
    const inner = issue.errors.find((branch) => branch.some((i) => i.path.length > 0 || i.code !== 'invalid_type'));
    if (inner !== undefined) return inner.flatMap((i) => formatIssue(i, path, root));
    const expected = new Set(issue.errors.flat().flatMap((i) => (i.code === 'invalid_type' ? [i.expected] : [])));
    if (expected.size > 0) return [`${field}: expected ${[...expected].join(' | ')}${got}`];
  }
  if (issue.code === 'invalid_type') return [`${field}: expected ${issue.expected}${got}`];
  return [`${field}: ${issue.message}${got}`];
}

export function formatIssues(error: z.ZodError, root: string): string[] {
  return error.issues.flatMap((issue) => formatIssue(issue, [], root));
}

export function parseWith<T>(schema: z.ZodType<T>, input: unknown, root: string): Parsed<T> {
  try {
    const r = schema.safeParse(input, { reportInput: true });
    if (r.success) return { ok: true, value: r.data };
    return { ok: false, problems: formatIssues(r.error, root) };
  } catch (err) {
    // Defensive: a schema refinement must never crash the caller on hostile input.
    return { ok: false, problems: [`${root}: could not be validated (${oneLine(err instanceof Error ? err.message : 'a non-Error value was thrown')})`] };
  }
}

export function mustParse<T>(schema: z.ZodType<T>, input: unknown, root: string): T {
  const r = parseWith(schema, input, root);
  if (!r.ok) throw new ContractValidationError(root, r.problems);
  return r.value;
}
