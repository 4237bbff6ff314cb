/**
 * The task spec: what a submitter asks the fleet to run. Validated at submit time (client
 * library, CLI) and again by fleetd before it runs anything: a record may have been written by
 * another tool, so fleetd trusts nothing it reads.
 */
import * as z from 'zod';
import { ENV_NAME_PATTERN, RESERVED_ENV_NAMES, RESERVED_ENV_PREFIXES, isReservedEnvName } from './env-names';
import { DEFAULT_TIMINGS, LIMITS } from './timings';
import { parseWith, type Parsed } from './validation';

/** Lone UTF-16 surrogates: what invalid UTF-8 decodes to; Docker and DynamoDB reject them. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A string that is well-formed Unicode and carries no NUL (Docker env and argv cannot). */
export const cleanString = (max: number) =>
  z
    .string()
    .max(max, { error: `expected at most ${max} characters` })
    .refine((s) => !s.includes('\0'), { error: 'expected no NUL character' })
    .refine((s) => !LONE_SURROGATE.test(s), { error: 'expected valid Unicode (got a lone surrogate / invalid UTF-8)' });

/**
 * Image reference: `[registry[:port]/]path[:tag][@sha256:digest]`. Registry allow-listing is
 * fleetd's job (config), not the spec's.
 */
export const IMAGE_PATTERN =
  /^(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/**
 * Longest image reference accepted: a bound for the record and the logs, not Docker's exact rule
 * (Docker still checks its own 255-character limit on the name part when it pulls).
 */
export const IMAGE_MAX_LENGTH = 512;

export { ENV_NAME_PATTERN, RESERVED_ENV_NAMES, RESERVED_ENV_PREFIXES, isReservedEnvName } from './env-names';

const envName = z
  .string()
  .regex(ENV_NAME_PATTERN, { error: `expected an environment variable name matching ${ENV_NAME_PATTERN}` })
  .refine((n) => !isReservedEnvName(n), {
    error: `is reserved (fleetd sets ${RESERVED_ENV_NAMES.join(', ')} and ${RESERVED_ENV_PREFIXES.join('*, ')}* itself); choose another name`,
  });

export const SECRET_ARN_PATTERN =
  /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$/;

const labelKey = z.string().regex(/^[a-z0-9][a-z0-9._/-]{0,62}$/, {
  error: 'expected a label key of lower-case letters, digits and . _ / - (at most 63 characters)',
});

const BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export const PayloadRefSchema = z.strictObject({
  bucket: z.string().regex(BUCKET_PATTERN, { error: 'expected an S3 bucket name' }),
  key: cleanString(1024).min(1, { error: 'expected a non-empty S3 key' }),
});
export type PayloadRef = z.output<typeof PayloadRefSchema>;

const jsonObject = z.record(z.string(), z.json());

/**
 * The path to a string or key inside a JSON value that is not well-formed Unicode (the record
 * stores an inline payload in DynamoDB and hands it to Docker, neither of which keeps it as is).
 */
function findLoneSurrogate(value: unknown): { path: PropertyKey[]; text: string } | undefined {
  type Frame = { value: unknown; key?: PropertyKey; parent?: Frame };
  const pathOf = (frame: Frame): PropertyKey[] => {
    const path: PropertyKey[] = [];
    for (let f: Frame | undefined = frame; f?.key !== undefined; f = f.parent) path.push(f.key);
    return path.reverse();
  };
  const stack: Frame[] = [{ value }];
  while (stack.length > 0) {
    const frame = stack.pop() as Frame;
    const v = frame.value;
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) return { path: pathOf(frame), text: v };
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push({ value: item, key: i, parent: frame }));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        const child: Frame = { value: item, key: k, parent: frame };
        if (LONE_SURROGATE.test(k)) return { path: pathOf(child), text: k };
        stack.push(child);
      }
    }
  }
  return undefined;
}

export const TaskSpecSchema = z
  .strictObject({
    image: z
      .string()
      .max(IMAGE_MAX_LENGTH, { error: `expected at most ${IMAGE_MAX_LENGTH} characters`, abort: true })
      .regex(IMAGE_PATTERN, {
      error: 'expected an image reference like "123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:1.2" or "agent-fleet/demo-agent:latest"',
    }),
    /** Overrides the image's command: an argv array, never a shell string. */
    command: z.array(cleanString(4096)).min(1).max(256).optional(),
    /** The agent payload, inline (small) ... */
    payload: jsonObject.optional(),
    /** ... or a pointer to it in S3 (large). Exactly one of the two, or neither. */
    payload_ref: PayloadRefSchema.optional(),
    env: z.record(envName, cleanString(32 * 1024)).default({}),
    /** ENV_NAME → Secrets Manager ARN, resolved by fleetd (under its allowed prefix only). */
    secrets: z
      .record(envName, z.string().regex(SECRET_ARN_PATTERN, { error: 'expected a Secrets Manager secret ARN' }))
      .default({}),
    cpus: z.number().min(0.1, { error: 'expected at least 0.1 CPUs' }).max(192).default(1),
    memory_mb: z.int().min(64, { error: 'expected at least 64 MiB' }).max(1024 * 1024).default(2048),
    pids: z.int().min(16).max(65536).default(1024),
    /**
     * Disk the task may fill, in MiB: its writable layer (when the engine supports a size
     * limit) and, separately, its /fleet/output directory. Sealed with the rest of the spec.
     */
    disk_mb: z
      .int()
      .min(LIMITS.minDiskMb, { error: `expected at least ${LIMITS.minDiskMb} MiB` })
      .max(LIMITS.maxDiskMb, { error: `expected at most ${LIMITS.maxDiskMb} MiB` })
      .default(LIMITS.defaultDiskMb),
    timeout_s: z
      .int()
      .min(1)
      .max(DEFAULT_TIMINGS.maxTaskTimeoutSeconds, {
        error: `expected at most ${DEFAULT_TIMINGS.maxTaskTimeoutSeconds} s (11 h: SQS allows 12 h of total visibility)`,
      })
      .default(DEFAULT_TIMINGS.defaultTaskTimeoutSeconds),
    idempotency_key: cleanString(128).min(1).optional(),
    labels: z.record(labelKey, cleanString(256)).default({}),
    /** The repository the agent works on, when known: becomes an STS session tag. */
    repo: cleanString(256).optional(),
  })
  .superRefine((spec, ctx) => {
    if (spec.payload !== undefined && spec.payload_ref !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['payload'], message: 'give either payload or payload_ref, not both' });
    }
    if (spec.payload !== undefined) {
      const bytes = Buffer.byteLength(JSON.stringify(spec.payload), 'utf8');
      if (bytes > LIMITS.inlinePayloadBytes) {
        ctx.addIssue({
          code: 'custom',
          path: ['payload'],
          message: `inline payload is ${bytes} bytes, expected at most ${LIMITS.inlinePayloadBytes}; put it in S3 and use payload_ref (the client library does this for you)`,
        });
      } else {
        const bad = findLoneSurrogate(spec.payload);
        if (bad !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['payload', ...bad.path],
            input: bad.text,
            message: 'expected valid Unicode (got a lone surrogate / invalid UTF-8)',
          });
        }
      }
    }
    if (Object.keys(spec.labels).length > 32) {
      ctx.addIssue({ code: 'custom', path: ['labels'], message: 'expected at most 32 labels' });
    }
    const clash = Object.keys(spec.secrets).filter((k) => k in spec.env);
    if (clash.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['secrets'], message: `names also set in env: ${clash.join(', ')}; use each name once` });
    }
  });

/** A validated spec with every default filled in. */
export type TaskSpec = z.output<typeof TaskSpecSchema>;
/** What a submitter may write: defaults optional. */
export type TaskSpecInput = z.input<typeof TaskSpecSchema>;

/** DynamoDB stores documents nested at most 32 levels; the record adds one (spec) above payload. */
export const MAX_PAYLOAD_DEPTH = 30;

/** Nesting depth of a JSON value, computed iteratively (no stack overflow on hostile input). */
export function jsonDepth(value: unknown, stopAt = Infinity): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    max = Math.max(max, d + 1);
    if (max > stopAt) return max;
    for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, d + 1]);
  }
  return max;
}

export function parseTaskSpec(input: unknown): Parsed<TaskSpec> {
  const payload = (input as { payload?: unknown } | null)?.payload;
  if (typeof payload === 'object' && payload !== null) {
    const depth = jsonDepth(payload, MAX_PAYLOAD_DEPTH + 1);
    if (depth > MAX_PAYLOAD_DEPTH) {
      return { ok: false, problems: [`spec.payload: nested more than ${MAX_PAYLOAD_DEPTH} levels deep; DynamoDB cannot store it inline: flatten it, or put it in S3 and use payload_ref`] };
    }
  }
  return parseWith(TaskSpecSchema, input, 'spec');
}
