/**
 * Sealed specs (docs/security.md): at submit, everything that decides what runs is sealed with
 * the fleet's KMS HMAC key; fleetd verifies the seal before it pulls or runs anything. Anyone
 * who may update a record (cancel, redrive, the reconciler, an instance) can change a status,
 * but not what runs: only a holder of kms:GenerateMac on the key can make a seal.
 *
 * What is sealed, in a canonical encoding defined here (every part imports it):
 *   "agent-fleet/seal/v1\n" + canonical JSON of { task_id, spec, max_attempts }
 * where `spec` is the record's spec as stored (image, command, env, secret ARNs, payload or
 * payload_ref, limits, timeout, …) and canonical JSON sorts object keys at every level and
 * writes no whitespace. KMS MACs at most 4,096 bytes of message, so the MAC is taken over the
 * SHA-256 digest of that text.
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';

export const SEAL_VERSION = 1;
export const SEAL_MAC_ALGORITHM = 'HMAC_SHA_256';
const DOMAIN = `agent-fleet/seal/v${SEAL_VERSION}\n`;

/** The record's `seal` attribute. */
export const SealSchema = z.object({
  v: z.literal(SEAL_VERSION),
  /** The KMS key that made the MAC (ARN or alias), as the submitter named it. */
  key_id: z.string().min(1).max(2048),
  /** Base64 of the MAC. */
  mac: z.string().min(1).max(1024),
});
export type Seal = z.output<typeof SealSchema>;

/** What a seal covers. */
export interface SealedFields {
  readonly task_id: string;
  readonly spec: Record<string, unknown>;
  /** Absent on records written before the cap was recorded. */
  readonly max_attempts?: number;
}

/** JSON with object keys sorted at every level, no whitespace; `undefined` members are left out as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`canonicalJson: ${typeof value} has no JSON form`);
    return text;
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The bytes handed to KMS GenerateMac / VerifyMac: the SHA-256 digest of the canonical text. */
export function sealMessage(fields: SealedFields): Uint8Array {
  const text = DOMAIN + canonicalJson({ task_id: fields.task_id, spec: fields.spec, max_attempts: fields.max_attempts });
  return createHash('sha256').update(text, 'utf8').digest();
}
