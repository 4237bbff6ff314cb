/**
 * Turning schema failures into messages a person can act on: each names the field, says what
 * was expected and what was got. Parsing never throws; callers get a `Parsed<T>`.
 */
import { z } from 'zod';

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

/** A short, safe rendering of a received value: truncated, never multi-line. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') {
    const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
    return value.length > 40 ? `${shown} (${value.length} chars)` : shown;
  }
  return `${typeof value} ${String(value)}`;
}

function fieldName(path: readonly PropertyKey[], root: string): string {
  return root + path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
}

export function formatIssues(error: z.ZodError, root: string): string[] {
  return error.issues.map((issue) => {
    const field = fieldName(issue.path, root);
    if (issue.code === 'unrecognized_keys') {
      return `${field}: unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; remove them (check the spelling)`;
    }
    if (issue.code === 'invalid_key') {
      // A record key failed its schema: report the key's own problem, not zod's generic text.
      const inner = issue.issues[0]?.message ?? issue.message;
      return `${field}: key ${inner}`;
    }
    const got = 'input' in issue ? `, got ${describeValue(issue.input)}` : '';
    if (issue.code === 'invalid_type') return `${field}: expected ${issue.expected}${got}`;
    return `${field}: ${issue.message}${got}`;
  });
}

export function parseWith<T>(schema: z.ZodType<T>, input: unknown, root: string): Parsed<T> {
  try {
    const r = schema.safeParse(input, { reportInput: true });
    if (r.success) return { ok: true, value: r.data };
    return { ok: false, problems: formatIssues(r.error, root) };
  } catch (err) {
    // Defensive: a schema refinement must never crash the caller on hostile input.
    return { ok: false, problems: [`${root}: could not be validated (${(err as Error).message})`] };
  }
}

export function mustParse<T>(schema: z.ZodType<T>, input: unknown, root: string): T {
  const r = parseWith(schema, input, root);
  if (!r.ok) throw new ContractValidationError(root, r.problems);
  return r.value;
}
