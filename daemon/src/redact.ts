/**
 * Secret redaction that escaping cannot get around (issue #15).
 *
 * What is registered. `Redactor.add(secret)` registers the secret and the forms in which it
 * reaches text in practice ("forms" below, see `secretForms`):
 *   - the value itself, and its UTF-8 round trip (a lone surrogate becomes U+FFFD, as it does
 *     in the bytes a container prints);
 *   - its JSON-escaped form (`JSON.stringify(secret).slice(1, -1)`: `"` → `\"`, `\` → `\\`,
 *     newline → `\n`, …), that form with `/` escaped as `\/` (PHP, some Java encoders) and that
 *     form with every non-ASCII UTF-16 unit as `\uXXXX` (Python's `ensure_ascii`), so text that
 *     embeds the secret JSON-encoded is caught too;
 *   - for a multi-line secret (a PEM key), each line, trimmed, of at least
 *     `MIN_SECRET_LINE_LENGTH` (8) characters, with its encodings: one line printed on its own
 *     is key material. Shorter lines (`{`, `-----`, a blank line) would make ordinary text
 *     vanish from every log, so they are not registered; the whole value and its escaped forms
 *     still are;
 *   - for a secret whose text is a JSON object or array (`{"username":…,"password":…}`), each
 *     string leaf (never a key) of at least `MIN_SECRET_LENGTH` (4) characters, with its lines
 *     and encodings (a JSON leaf holding a PEM key is common), nested JSON up to 2 levels. Leaves
 *     shorter than 4 characters are not registered: they would redact ordinary words.
 * Registrations are counted: two tasks sharing a secret (or a JSON field) each add it, and it
 * stays registered until both have removed it.
 *
 * How text is redacted. One left-to-right pass replaces every occurrence of every form with
 * `[REDACTED]`, the longest form first where several start at the same place; the replacement
 * text is not rescanned within the pass. Replacing can make a new occurrence only out of the
 * marker's own characters (a secret such as `D]xyz` next to a marker), so passes repeat until
 * nothing matches, at most `MAX_PASSES` times; text that still matches after that becomes
 * `[REDACTED]` whole. A secret that is itself a piece of the marker (`REDA`) is replaced in the
 * first pass only: every marker contains it, so it is not looked for again.
 *
 * Structured values (`redactValue`) are redacted after decoding, never as encoded text: every
 * string and every key of a parsed JSON value, so no escape sequence hides a secret. Where two
 * keys of one object become the same key after redaction, the later one (in JavaScript's
 * property order: integer-like keys ascending, then insertion order) keeps its value and the
 * earlier ones are dropped: the record loses a field rather than show a secret.
 *
 * Streams (`redactStream`): text whose end may still be the start of a secret is held back, at
 * most the longest registered form's length minus one characters, until more text or the end
 * of the stream decides it; bounded memory, and a secret split across chunks or lines is still
 * whole when it is looked for.
 */

export const REDACTED = '[REDACTED]';
/** Secrets (and JSON fields of secrets) shorter than this are not registered: they would redact ordinary words. */
export const MIN_SECRET_LENGTH = 4;
/** Lines of a multi-line secret shorter than this (trimmed) are not registered on their own. */
export const MIN_SECRET_LINE_LENGTH = 8;
/** JSON in JSON secrets is looked into this deep. */
const MAX_SECRET_JSON_DEPTH = 2;
const MAX_PASSES = 4;
/** Values nested deeper than this are refused by `redactValue` (the walk is recursive). */
export const MAX_REDACT_DEPTH = 256;

export class RedactionDepthError extends Error {
  override readonly name = 'RedactionDepthError';
}

function encodings(s: string, into: Set<string>): void {
  into.add(s);
  into.add(Buffer.from(s, 'utf8').toString('utf8'));
  const json = JSON.stringify(s).slice(1, -1);
  into.add(json);
  into.add(json.replace(/\//g, '\\/'));
  into.add(json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

function stringLeaves(v: unknown, out: string[], depth = 0): void {
  if (depth > 64) return;
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) stringLeaves(x, out, depth + 1);
  else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) stringLeaves(x, out, depth + 1);
}

function collect(s: string, jsonDepth: number, into: Set<string>): void {
  if (s.length < MIN_SECRET_LENGTH) return;
  encodings(s, into);
  if (/[\r\n]/.test(s)) {
    for (const line of s.split(/\r\n|\r|\n/)) {
      const t = line.trim();
      if (t.length >= MIN_SECRET_LINE_LENGTH) encodings(t, into);
    }
  }
  if (jsonDepth < MAX_SECRET_JSON_DEPTH && /^\s*[[{]/.test(s)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(s);
    } catch {
      return;
    }
    const leaves: string[] = [];
    stringLeaves(parsed, leaves);
    for (const leaf of leaves) collect(leaf, jsonDepth + 1, into);
  }
}

/** Every string registering `secret` adds (see the module comment), each at least 4 characters. */
export function secretForms(secret: string): string[] {
  const forms = new Set<string>();
  collect(secret, 0, forms);
  return [...forms].filter((f) => f.length >= MIN_SECRET_LENGTH);
}

/**
 * Finds the registered forms in text: leftmost occurrence first, the longest form where several
 * start at the same place. Few forms: one `indexOf` per form (fast string search). Many forms
 * (the lines of a long PEM key, the fields of a JSON secret, many tasks' secrets): forms are
 * bucketed by their first two UTF-16 units and the text is walked once, so the cost stays
 * linear in the text whatever the number of forms: a large secret cannot stall fleetd.
 */
class Matcher {
  private readonly byStart = new Map<number, string[]>();

  /** `forms`: longest first, each at least MIN_SECRET_LENGTH long. */
  constructor(readonly forms: readonly string[]) {
    if (forms.length <= INDEXOF_MAX_FORMS) return;
    for (const f of forms) {
      const key = pairAt(f, 0);
      const list = this.byStart.get(key);
      if (list) list.push(f);
      else this.byStart.set(key, [f]);
    }
  }

  /**
   * One left-to-right pass over `text`: every occurrence starting before `cut` is replaced (it
   * may end after `cut`); the replacement is not rescanned. Returns the redacted text up to
   * `end`, the larger of `cut` and the end of the last occurrence replaced.
   */
  pass(text: string, cut = text.length): { out: string; end: number } {
    let pos = 0;
    let out = '';
    const next = this.forms.length <= INDEXOF_MAX_FORMS ? this.byIndexOf(text) : (from: number) => this.byWalk(text, from, cut);
    for (let m = next(pos); m && m.at < cut; m = next(pos)) {
      out += text.slice(pos, m.at) + REDACTED;
      pos = m.at + m.length;
    }
    const end = Math.max(pos, Math.min(cut, text.length));
    return { out: out + text.slice(pos, end), end };
  }

  /** Whether any form occurs in `text`. */
  test(text: string): boolean {
    return this.forms.length <= INDEXOF_MAX_FORMS ? this.forms.some((f) => text.includes(f)) : this.byWalk(text, 0, text.length) !== undefined;
  }

  private byIndexOf(text: string): (from: number) => { at: number; length: number } | undefined {
    const at = this.forms.map((f) => text.indexOf(f));
    return (from) => {
      let best = -1;
      let bestAt = Infinity;
      for (let i = 0; i < this.forms.length; i++) {
        if (at[i] >= 0 && at[i] < from) at[i] = text.indexOf(this.forms[i], from);
        // Strictly less: on a tie the earlier form, which is the longer one, wins.
        if (at[i] >= 0 && at[i] < bestAt) {
          best = i;
          bestAt = at[i];
        }
      }
      return best < 0 ? undefined : { at: bestAt, length: this.forms[best].length };
    };
  }

  private byWalk(text: string, from: number, before: number): { at: number; length: number } | undefined {
    const last = Math.min(before, text.length - MIN_SECRET_LENGTH + 1);
    for (let i = from; i < last; i++) {
      const list = this.byStart.get(pairAt(text, i));
      if (list) for (const f of list) if (text.startsWith(f, i)) return { at: i, length: f.length };
    }
    return undefined;
  }
}

/** Above this many forms, Matcher walks the text once instead of searching it once per form. */
const INDEXOF_MAX_FORMS = 16;

function pairAt(s: string, i: number): number {
  return (s.charCodeAt(i) << 16) | s.charCodeAt(i + 1);
}

interface Compiled {
  readonly all: Matcher;
  /** The forms looked for again after the first pass: all but pieces of the marker itself. */
  readonly again: Matcher;
  readonly longest: number;
}

/** A deep copy of a JSON-like value with `redactString` applied to every string and key. */
export function redactJson<T>(value: T, redactString: (s: string) => string): T {
  return walk(value, redactString, 0) as T;
}

function walk(v: unknown, r: (s: string) => string, depth: number): unknown {
  if (typeof v === 'string') return r(v);
  if (v === null || typeof v !== 'object') return v;
  if (depth >= MAX_REDACT_DEPTH) throw new RedactionDepthError(`the value nests deeper than ${MAX_REDACT_DEPTH} levels`);
  if (Array.isArray(v)) return v.map((x) => walk(x, r, depth + 1));
  if (v instanceof Error) return { name: r(v.name), message: r(v.message) };
  if (v instanceof Set) return new Set([...(v as Set<unknown>)].map((x) => walk(x, r, depth + 1)));
  const proto = Object.getPrototypeOf(v) as unknown;
  // Dates, buffers and other class instances carry no text of their own to redact here.
  if (proto !== Object.prototype && proto !== null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    // defineProperty: a `__proto__` key stays a plain key, as JSON.parse made it.
    Object.defineProperty(out, r(k), { value: walk(x, r, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Holds secret values in memory only, to scrub them from any text or value fleetd emits. */
export class Redactor {
  private readonly counts = new Map<string, number>();
  private compiled?: Compiled;

  /** Registers `secret` and its forms (module comment). Values shorter than 4 characters are ignored; fleetd refuses them upstream. */
  add(secret: string): void {
    for (const f of secretForms(secret)) this.counts.set(f, (this.counts.get(f) ?? 0) + 1);
    this.compiled = undefined;
  }

  /** Undoes one `add(secret)`; forms another registration still holds stay. */
  remove(secret: string): void {
    for (const f of secretForms(secret)) {
      const n = this.counts.get(f);
      if (n === undefined) continue;
      if (n <= 1) this.counts.delete(f);
      else this.counts.set(f, n - 1);
    }
    this.compiled = undefined;
  }

  /** The longest registered form (0 when none): the carry-over a stream must keep. */
  get longest(): number {
    return this.compile()?.longest ?? 0;
  }

  private compile(): Compiled | undefined {
    if (this.counts.size === 0) return undefined;
    if (!this.compiled) {
      const all = [...this.counts.keys()].sort((a, b) => b.length - a.length);
      this.compiled = { all: new Matcher(all), again: new Matcher(all.filter((f) => !REDACTED.includes(f))), longest: all[0].length };
    }
    return this.compiled;
  }

  /** `text` with every registered form replaced by `[REDACTED]`. */
  redact(text: string): string {
    const c = this.compile();
    if (!c) return text;
    return this.settle(c.all.pass(text).out, c);
  }

  /** Further passes until no form is left (see the module comment). */
  private settle(text: string, c: Compiled): string {
    let out = text;
    for (let i = 1; i < MAX_PASSES; i++) {
      if (!c.again.test(out)) return out;
      out = c.again.pass(out).out;
    }
    return c.again.test(out) ? REDACTED : out;
  }

  /**
   * A deep copy of a JSON value with every string and every key redacted (colliding keys: the
   * later one wins, see the module comment). Errors become `{ name, message }`. Throws
   * RedactionDepthError past `MAX_REDACT_DEPTH` levels.
   */
  redactValue<T>(value: T): T {
    return redactJson(value, (s) => this.redact(s));
  }

  /**
   * For a stream: `done` is the redacted part of `text` that no later text can change, `rest`
   * the raw tail (shorter than the longest registered form) to prepend to the next chunk.
   * At the end of the stream, `redact(rest)` flushes it.
   */
  redactStream(text: string): { done: string; rest: string } {
    const c = this.compile();
    if (!c) return { done: text, rest: '' };
    let cut = text.length - (c.longest - 1);
    // Never split a surrogate pair between what is written now and what is held.
    if (cut > 0 && cut < text.length && isHighSurrogate(text.charCodeAt(cut - 1))) cut--;
    if (cut <= 0) return { done: '', rest: text };
    const { out, end } = c.all.pass(text, cut);
    return { done: this.settle(out, c), rest: text.slice(end) };
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
