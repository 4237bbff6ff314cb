/**
 * KMS side of sealed specs (the encoding is the contract's, contract/seal.ts): the client
 * library seals at submit (kms:GenerateMac, granted only to submitters), fleetd verifies before
 * it pulls or runs anything (kms:VerifyMac, granted to the instance role).
 */
import type { KMSClient } from '@aws-sdk/client-kms';
import { sdk } from './aws';
import { SEAL_MAC_ALGORITHM, SEAL_VERSION, sealMessage, type Seal, type SealedFields, type TaskRecord } from './contract';

export type SealVerdict =
  | { readonly valid: true }
  /** Why the record may not run: no seal, or one that does not match what the record holds now. */
  | { readonly valid: false; readonly reason: string };

/** How long an early verification waits to be used before it is dropped (a claim lost the race). */
const EARLY_VERDICT_TTL_MS = 60_000;

export class SpecSealer {
  /** Verifications begun by `verifyEarly`, keyed by MAC and message, each used at most once. */
  private readonly early = new Map<string, Promise<SealVerdict>>();

  constructor(
    /** The client, or how to get it on the first seal (fleetd: the KMS SDK loads with the first task, not at boot). */
    private readonly kmsClient: KMSClient | (() => KMSClient),
    /** The fleet's HMAC key: the only key fleetd verifies with, whatever a record names. */
    readonly keyId: string,
  ) {}

  private get kms(): KMSClient {
    return typeof this.kmsClient === 'function' ? this.kmsClient() : this.kmsClient;
  }

  async seal(fields: SealedFields): Promise<Seal> {
    const out = await this.kms.send(new (sdk.kms().GenerateMacCommand)({ KeyId: this.keyId, MacAlgorithm: SEAL_MAC_ALGORITHM, Message: sealMessage(fields) }));
    if (!out.Mac) throw new Error(`KMS GenerateMac on ${this.keyId} returned no MAC`);
    return { v: SEAL_VERSION, key_id: this.keyId, mac: Buffer.from(out.Mac).toString('base64') };
  }

  /**
   * Valid only when the seal verifies with the fleet's key over what the record holds now.
   * KMS answers a MAC that does not match with KMSInvalidMacException (a verdict); any other
   * error (throttling, an outage, a denied call) is thrown for the caller's retry policy.
   */
  async verify(fields: SealedFields, seal: Seal | undefined): Promise<SealVerdict> {
    const key = seal && earlyKey(fields, seal);
    const begun = key && this.early.get(key);
    if (begun) {
      // Same MAC over the same message: the answer KMS gives now. Used once; a failure is
      // thrown to the caller's retry, whose next call asks KMS again.
      this.early.delete(key);
      return begun;
    }
    return this.ask(fields, seal);
  }

  /**
   * Starts `verify` for a record that is about to be claimed, so the KMS round trip runs beside
   * the claim's conditional write instead of after it (issue #18, dispatch). Nothing runs on it:
   * the task's own `verify` call, after the claim, still decides, over the fields of the record
   * it claimed (a different spec or seal is a different key and is asked afresh).
   */
  verifyEarly(record: TaskRecord): void {
    const { seal } = record;
    if (!seal) return;
    const fields = sealedFieldsOf(record);
    const key = earlyKey(fields, seal);
    if (this.early.has(key)) return;
    const verdict = this.ask(fields, seal);
    verdict.catch(() => undefined); // an unused early check's failure is nobody's error
    this.early.set(key, verdict);
    setTimeout(() => this.early.get(key) === verdict && this.early.delete(key), EARLY_VERDICT_TTL_MS).unref();
  }

  private async ask(fields: SealedFields, seal: Seal | undefined): Promise<SealVerdict> {
    if (!seal) return { valid: false, reason: 'the record has no seal: it was not written by a submitter holding the fleet key (sealed specs, docs/security.md)' };
    try {
      const out = await this.kms.send(new (sdk.kms().VerifyMacCommand)({ KeyId: this.keyId, MacAlgorithm: SEAL_MAC_ALGORITHM, Message: sealMessage(fields), Mac: Buffer.from(seal.mac, 'base64') }));
      if (out.MacValid) return { valid: true };
    } catch (err) {
      if ((err as { name?: string }).name !== 'KMSInvalidMacException') throw err;
    }
    return { valid: false, reason: "the record's seal does not match its task id, spec and attempt cap: the record was changed after it was submitted" };
  }
}

function earlyKey(fields: SealedFields, seal: Seal): string {
  return `${seal.mac} ${Buffer.from(sealMessage(fields)).toString('base64')}`;
}

/** What a record's seal covers. */
export function sealedFieldsOf(record: TaskRecord): SealedFields {
  return { task_id: record.task_id, spec: record.spec, max_attempts: record.max_attempts };
}
