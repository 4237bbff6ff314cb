/**
 * What a task run needs before its container exists, read from the record and checked: the
 * spec (valid, within the fleet's caps), its seal (docs/architecture.md, "sealed specs"), the
 * payload (inline, or from the task's own prefix in the payload bucket), the container's env
 * and declared secrets (allowed ARN prefix only, each registered with the redactor before use).
 * Every refusal is a PrepareError whose message is safe to record; KMS being unreachable is a
 * SealUnverifiedError (the instance's trouble, not the task's).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { sdk } from './aws';
import type { FleetdConfig } from './config';
import { LIMITS, parseTaskSpec, payloadKey, type TaskRecord, type TaskSpec } from './contract';
import type { Redactor } from './log';
import { CONTAINER_OUTPUT_DIR, CONTAINER_PAYLOAD_PATH } from './confinement';
import { MAX_ENV_PAYLOAD_BYTES } from './runner';
import { sealedFieldsOf, type SpecSealer } from './seal';

/** A task-level failure with a reason that is safe to record (never contains a secret). */
export class PrepareError extends Error {
  override readonly name = 'PrepareError';
}

/** KMS could not be asked whether the seal holds (an outage, a denied call): the instance's trouble, not the task's. */
export class SealUnverifiedError extends Error {
  override readonly name = 'SealUnverifiedError';
}

export interface TaskInputsOptions {
  readonly config: FleetdConfig;
  readonly s3: S3Client;
  readonly secrets: SecretsManagerClient;
  readonly sealer?: SpecSealer;
  readonly redactor: Redactor;
  /** The task run's retry (the one policy, logged). */
  readonly retry: <T>(what: string, fn: () => Promise<T>) => Promise<T>;
}

export class TaskInputs {
  /** Secret values registered with the redactor for this run, to unregister at its end. */
  readonly secretValues: string[] = [];

  constructor(
    private readonly o: TaskInputsOptions,
    private readonly taskId: string,
    private readonly attempt: number,
    private readonly record: TaskRecord,
  ) {}

  /** The record's spec, valid and within this fleet's caps. */
  spec(): TaskSpec {
    const parsed = parseTaskSpec(this.record.spec);
    if (!parsed.ok) throw new PrepareError(`invalid spec: ${parsed.problems.join('; ')}`);
    if (parsed.value.timeout_s > this.o.config.timings.maxTaskTimeoutSeconds) {
      throw new PrepareError(`spec.timeout_s ${parsed.value.timeout_s} exceeds this fleet's cap of ${this.o.config.timings.maxTaskTimeoutSeconds} s`);
    }
    return parsed.value;
  }

  /** The record's seal, verified with the fleet's key over what the record holds now. */
  async checkSeal(): Promise<void> {
    const sealer = this.o.sealer;
    if (!sealer) return;
    const fields = sealedFieldsOf(this.record);
    let verdict;
    try {
      verdict = await this.o.retry('verifying the seal', () => sealer.verify(fields, this.record.seal));
    } catch (err) {
      throw new SealUnverifiedError(`the seal could not be verified with ${sealer.keyId}: ${(err as Error).name}: ${(err as Error).message}`, { cause: err });
    }
    if (!verdict.valid) throw new PrepareError(`not run: ${verdict.reason}`);
  }

  /** The payload as JSON text: inline, or read from the task's own prefix in the payload bucket. */
  async payloadJson(spec: TaskSpec): Promise<string> {
    if (spec.payload_ref) {
      if (spec.payload_ref.bucket !== this.o.config.payloadBucket) {
        throw new PrepareError(`payload_ref bucket ${spec.payload_ref.bucket} is not this fleet's payload bucket (${this.o.config.payloadBucket})`);
      }
      // A task reads only its own payload: another task's key is refused, however it was named.
      const ownPrefix = payloadKey(this.taskId).slice(0, payloadKey(this.taskId).lastIndexOf('/') + 1);
      if (!spec.payload_ref.key.startsWith(ownPrefix) || spec.payload_ref.key.includes('..')) {
        throw new PrepareError(`payload_ref key ${spec.payload_ref.key} is not under this task's own prefix ${ownPrefix}`);
      }
      try {
        const res = await this.o.s3.send(new (sdk.s3().GetObjectCommand)({ Bucket: spec.payload_ref.bucket, Key: spec.payload_ref.key }));
        if ((res.ContentLength ?? 0) > LIMITS.maxPayloadBytes) throw new PrepareError(`payload is ${res.ContentLength} bytes, over the ${LIMITS.maxPayloadBytes}-byte cap`);
        const text = (await res.Body?.transformToString('utf8')) ?? '';
        JSON.parse(text);
        return text;
      } catch (err) {
        if (err instanceof PrepareError) throw err;
        throw new PrepareError(`payload s3://${spec.payload_ref.bucket}/${spec.payload_ref.key} could not be read as JSON: ${(err as Error).message}`);
      }
    }
    return JSON.stringify(spec.payload ?? {});
  }

  /** The container contract's variables and the spec's env. */
  baseEnv(payload: string, spec: TaskSpec): string[] {
    const env = [
      `TASK_ID=${this.taskId}`,
      `FLEET_TASK_ID=${this.taskId}`,
      `FLEET_ATTEMPT=${this.attempt}`,
      `FLEET_PAYLOAD_FILE=${CONTAINER_PAYLOAD_PATH}`,
      `FLEET_OUTPUT_DIR=${CONTAINER_OUTPUT_DIR}`,
    ];
    if (Buffer.byteLength(payload) <= MAX_ENV_PAYLOAD_BYTES) env.push(`AGENT_PAYLOAD=${payload}`);
    for (const [k, v] of Object.entries(spec.env)) env.push(`${k}=${v}`);
    return env;
  }

  /** Declared secrets as env entries; each value is registered with the redactor first. */
  async secretEnv(spec: TaskSpec): Promise<string[]> {
    const out: string[] = [];
    for (const [name, arn] of Object.entries(spec.secrets)) {
      const prefix = this.o.config.secretArnPrefix;
      if (!prefix || !arn.startsWith(prefix)) {
        throw new PrepareError(`secret ${name}: ARN ${arn} is outside this fleet's allowed prefix (${prefix ?? 'no secrets allowed'})`);
      }
      let value: string | undefined;
      try {
        value = (await this.o.secrets.send(new (sdk.secrets().GetSecretValueCommand)({ SecretId: arn }))).SecretString;
      } catch (err) {
        throw new PrepareError(`secret ${name}: reading ${arn} failed: ${(err as Error).name}`);
      }
      if (value === undefined) throw new PrepareError(`secret ${name}: ${arn} has no string value`);
      if (value.length < 4) throw new PrepareError(`secret ${name}: values shorter than 4 characters cannot be redacted reliably; refused`);
      this.o.redactor.add(value);
      this.secretValues.push(value);
      out.push(`${name}=${value}`);
    }
    return out;
  }
}
