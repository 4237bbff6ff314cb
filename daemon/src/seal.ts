/**
 * KMS side of sealed specs (the encoding is the contract's, contract/seal.ts): the client
 * library seals at submit (kms:GenerateMac, granted only to submitters), fleetd verifies before
 * it pulls or runs anything (kms:VerifyMac, granted to the instance role).
 */
import type { KMSClient } from '@aws-sdk/client-kms';
import { sdk } from './aws';
import { SEAL_MAC_ALGORITHM, SEAL_VERSION, sealMessage, type Seal, type SealedFields } from './contract';

export type SealVerdict =
  | { readonly valid: true }
  /** Why the record may not run: no seal, or one that does not match what the record holds now. */
  | { readonly valid: false; readonly reason: string };

export class SpecSealer {
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
