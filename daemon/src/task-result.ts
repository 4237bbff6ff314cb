/**
 * A task's result.json, read after its container exited: a size-capped JSON object, anything
 * else recorded as a result_error. Moved out of runner.ts unchanged.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LIMITS } from './contract';
import { MAX_REDACT_DEPTH, RedactionDepthError, redactJson } from './redact';

/**
 * result.json: size-capped JSON object; anything else is recorded as a result_error.
 * Parsed first, then redacted as a structure: `redact` is applied to every string and every
 * key of the parsed value (redact.ts `redactJson`), so a secret JSON-escaped in the file
 * (`pa\"ss\\word`, a PEM key's `\n`, `\u00e9`) is redacted as the text it decodes to. Keys
 * that become equal once redacted keep the later key's value (redact.ts). A parse error's
 * message quotes the file, so it is redacted too.
 */
export function readTaskResult(outputDir: string, redact: (s: string) => string): { result?: Record<string, unknown>; result_error?: string } {
  const file = path.join(outputDir, 'result.json');
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch {
    return {};
  }
  if (!stat.isFile()) return { result_error: 'result.json is not a regular file; not recorded' };
  if (stat.size > LIMITS.resultBytes) return { result_error: `result.json is ${stat.size} bytes, over the ${LIMITS.resultBytes}-byte cap; not recorded` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    return { result_error: redact(`result.json is not valid JSON (${(err as Error).message.slice(0, 200)}); not recorded`) };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { result_error: 'result.json is valid JSON but not an object; not recorded' };
  try {
    return { result: redactJson(parsed as Record<string, unknown>, redact) };
  } catch (err) {
    if (err instanceof RedactionDepthError) return { result_error: `result.json nests deeper than ${MAX_REDACT_DEPTH} levels; not recorded` };
    throw err;
  }
}
