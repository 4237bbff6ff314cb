/**
 * ABCA's `ec2` compute strategy over the fleet: a class assignable, unchanged, to ABCA's
 * `ComputeStrategy` as PR #32 and main declare it (scripts/lib/abca/types-*.ts; proven by
 * test/types/abca-compat.ts), built from the environment by `createFleetComputeStrategy()`.
 *
 * - startSession submits the orchestrator's payload as one fleet task. The idempotency key is
 *   derived from ABCA's task id, so a retried startSession returns the same fleet task instead
 *   of starting a second agent. ABCA's task id travels as the spec label ABCA_TASK_ID_LABEL:
 *   fleetd's ABCA mirror (daemon/src/abca-mirror.ts) writes ABCA's record against it (heartbeat,
 *   cancel, failure). The agent gets the env ABCA's agent reads (agentEnvFor).
 * - At most once: the task's attempt cap is 1 by default (`maxAttempts`) and fleetd never gives
 *   a started ABCA task with cap 1 another attempt: an interruption ends ABCA's task FAILED
 *   ("interrupted: …"). A cap above 1 is for agents that resume.
 * - pollSession reports the fleet record mechanically; stopSession is the fleet's cancel.
 *
 * docs/abca.md lists the upstream edits that wire it in.
 */
import { ABCA_TASK_ID_LABEL } from '../../daemon/src/abca-mirror';
import { createAwsClients } from '../../daemon/src/aws';
import { DEFAULT_TIMINGS, LIMITS, TaskStatus, artifactsPrefix, payloadKey, taskIdForIdempotencyKey, taskLogStreamName, type TaskSpecInput } from '../../daemon/src/contract';
import { fleetNamesFromEnv } from '../cli/config';
import { FleetClient, FleetClientError, TaskNotFoundError } from './client';

export const EC2_COMPUTE_TYPE = 'ec2';

/**
 * fleetd's AGENT_PAYLOAD limit (daemon/src/runner.ts MAX_ENV_PAYLOAD_BYTES, restated so this
 * module, which runs in ABCA's orchestrator, does not load the container runner; a unit test
 * keeps the two equal).
 */
export const FLEETD_ENV_PAYLOAD_BYTES = 96 * 1024;

/**
 * The part of ABCA's BlueprintConfig this strategy reads. ABCA passes its whole object; every
 * version's BlueprintConfig is assignable to this (no index signature on purpose: ABCA declares
 * an interface).
 */
export interface AbcaBlueprintConfig {
  readonly compute_type: string;
  readonly github_token_secret_arn?: string;
  readonly model_id?: string;
}

/**
 * PR #32's `ec2` SessionHandle variant, filled with the fleet's names:
 * - `sessionId`: the fleet task id (what ABCA stores as `TaskRecord.session_id`).
 * - `instanceId`: the instance running the task once one claimed it; `''` before (the usual
 *   case: startSession returns before any instance has claimed the task). Informational only.
 * - `commandId`: the fleet task id again, so PR #32's `compute_metadata.commandId` names
 *   something real. PR #32's cancel-task hands it to `ssm:CancelCommand`, which answers
 *   InvalidCommandId (logged by ABCA as a warning); the cancel itself reaches the fleet through
 *   ABCA's CANCELLED record, which fleetd's mirror reads on every heartbeat.
 */
export interface Ec2SessionHandle {
  readonly sessionId: string;
  readonly strategyType: typeof EC2_COMPUTE_TYPE;
  readonly instanceId: string;
  readonly commandId: string;
}

/** ABCA's SessionStatus (both versions); `reason` is extra (the fleet status), ABCA ignores it. */
export type AbcaSessionStatus =
  | { readonly status: 'running'; readonly reason?: string }
  | { readonly status: 'completed'; readonly reason?: string }
  | { readonly status: 'failed'; readonly error: string; readonly reason?: string };

/** startSession's input as either version passes it (PR #32: no userId, no readOnly). */
export interface StartSessionInput {
  /** ABCA's task id (TaskTable `task_id`). */
  readonly taskId: string;
  /** main passes the Cognito sub; the fleet has no per-user runtime identity. */
  readonly userId?: string;
  /** The orchestrator's payload: AGENT_PAYLOAD (or AGENT_PAYLOAD_S3_URI) and /fleet/payload.json. */
  readonly payload: Record<string, unknown>;
  readonly blueprintConfig: AbcaBlueprintConfig;
  /** main: a read-only workflow; runs on the smaller `readOnlyResources`. */
  readonly readOnly?: boolean;
}

/** Any version's SessionHandle union is assignable to this; the methods check `strategyType`. */
export interface AnySessionHandle {
  readonly sessionId: string;
  readonly strategyType: string;
}

export interface ResourceProfile {
  readonly cpus: number;
  readonly memoryMb: number;
}

/** ABCA's resources the agent writes to or reads, passed to it as ABCA's ECS task definition does. */
export interface AbcaAgentResources {
  /** TASK_TABLE_NAME: the agent writes RUNNING / terminal / heartbeats itself. */
  readonly taskTable?: string;
  /** TASK_EVENTS_TABLE_NAME: progress events. */
  readonly taskEventsTable?: string;
  /** USER_CONCURRENCY_TABLE_NAME */
  readonly userConcurrencyTable?: string;
  /** LOG_GROUP_NAME: the agent's logs URL and telemetry. */
  readonly logGroup?: string;
  /** GITHUB_TOKEN_SECRET_ARN when neither the blueprint nor the payload names one. */
  readonly githubTokenSecretArn?: string;
  /** Extra env ABCA's ECS task definition sets (e.g. MEMORY_ID, ARTIFACTS_BUCKET_NAME). */
  readonly extraEnv?: Readonly<Record<string, string>>;
}

export interface Ec2ComputeStrategyOptions {
  readonly client: FleetClient;
  /** The agent image (from a registry the fleet allows), or a choice per blueprint. */
  readonly image: string | ((blueprint: AbcaBlueprintConfig) => string);
  /** The image's one-shot batch entry point, as argv. @default the image's own command */
  readonly command?: readonly string[];
  /** @default 4 vCPU / 16 GiB (ABCA's ECS build task) */
  readonly resources?: ResourceProfile;
  /** For `readOnly` sessions. @default 2 vCPU / 8 GiB (ABCA's ECS planning task) */
  readonly readOnlyResources?: ResourceProfile;
  /** @default 8 h (ABCA's orchestrator polls ~8.5 h); at most the fleet's cap (11 h) */
  readonly timeoutSeconds?: number;
  /**
   * Attempts the fleet may make. @default 1: a started ABCA session never runs twice (an
   * interruption ends ABCA's task FAILED "interrupted: …"). More only for agents that resume.
   */
  readonly maxAttempts?: number;
  readonly abca?: AbcaAgentResources;
  /** Extra environment (names FLEET_*, AWS_*, TASK_ID, AGENT_PAYLOAD are reserved). */
  readonly env?: Readonly<Record<string, string>>;
  /** NAME → Secrets Manager ARN, resolved by fleetd (under its allowed prefix). */
  readonly secrets?: Readonly<Record<string, string>>;
}

export const DEFAULT_RESOURCES: ResourceProfile = { cpus: 4, memoryMb: 16 * 1024 };
export const DEFAULT_READ_ONLY_RESOURCES: ResourceProfile = { cpus: 2, memoryMb: 8 * 1024 };
export const DEFAULT_ABCA_TIMEOUT_SECONDS = 8 * 3600;
export const DEFAULT_ABCA_MAX_ATTEMPTS = 1;

export class AbcaAdapterError extends FleetClientError {
  override readonly name = 'AbcaAdapterError';
}

/** STS session tag values allow only these characters; other repos are simply not tagged. */
const SESSION_TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+@-]{1,256}$/u;

function assertHandle(handle: AnySessionHandle, method: string): asserts handle is Ec2SessionHandle {
  if (handle?.strategyType !== EC2_COMPUTE_TYPE || typeof handle.sessionId !== 'string') {
    throw new AbcaAdapterError(`${method} called with a non-ec2 session handle (strategyType ${String(handle?.strategyType)})`);
  }
}

/** The idempotency key of an ABCA task: one fleet task per ABCA task, however often it is started. */
export function abcaIdempotencyKey(abcaTaskId: string): string {
  return `abca:${abcaTaskId}`;
}

/** A fleet record's status as ABCA's SessionStatus (mechanical: the orchestrator interprets). */
export function sessionStatusOf(record: { status: TaskStatus; reason?: string; exit_code?: number }): AbcaSessionStatus {
  switch (record.status) {
    case TaskStatus.COMPLETED:
      return { status: 'completed' };
    case TaskStatus.FAILED:
    case TaskStatus.TIMED_OUT:
    case TaskStatus.CANCELLED: {
      const exit = record.exit_code !== undefined ? ` (exit code ${record.exit_code})` : '';
      return { status: 'failed', error: `fleet task ${record.status}: ${record.reason ?? 'no reason recorded'}${exit}`, reason: record.status };
    }
    default:
      // QUEUED, CLAIMED, RUNNING, CANCEL_REQUESTED, INTERRUPTED: the fleet still owes an outcome.
      return { status: 'running', reason: record.status };
  }
}

/**
 * The environment ABCA's agent reads, as ABCA's ECS task definition and strategy set it. The
 * payload itself is fleetd's AGENT_PAYLOAD (up to FLEETD_ENV_PAYLOAD_BYTES); above that the agent
 * gets AGENT_PAYLOAD_S3_URI, the object the client library uploaded to the fleet's payload
 * bucket (the per-task role may read its own task's object: infra/abca-integration.ts).
 */
export function agentEnvFor(
  input: Pick<StartSessionInput, 'payload' | 'blueprintConfig'>,
  abca: AbcaAgentResources,
  payloadObject: { bucket: string; fleetTaskId: string },
): Record<string, string> {
  const github = input.blueprintConfig.github_token_secret_arn ?? (typeof input.payload.github_token_secret_arn === 'string' ? input.payload.github_token_secret_arn : undefined) ?? abca.githubTokenSecretArn;
  const bytes = Buffer.byteLength(JSON.stringify(input.payload));
  return {
    ...abca.extraEnv,
    CLAUDE_CODE_USE_BEDROCK: '1',
    ...(abca.taskTable ? { TASK_TABLE_NAME: abca.taskTable } : {}),
    ...(abca.taskEventsTable ? { TASK_EVENTS_TABLE_NAME: abca.taskEventsTable } : {}),
    ...(abca.userConcurrencyTable ? { USER_CONCURRENCY_TABLE_NAME: abca.userConcurrencyTable } : {}),
    ...(abca.logGroup ? { LOG_GROUP_NAME: abca.logGroup } : {}),
    ...(github ? { GITHUB_TOKEN_SECRET_ARN: github } : {}),
    ...(input.blueprintConfig.model_id ? { ANTHROPIC_MODEL: input.blueprintConfig.model_id } : {}),
    ...(bytes > FLEETD_ENV_PAYLOAD_BYTES ? { AGENT_PAYLOAD_S3_URI: `s3://${payloadObject.bucket}/${payloadKey(payloadObject.fleetTaskId)}` } : {}),
  };
}

export class Ec2ComputeStrategy {
  readonly type = EC2_COMPUTE_TYPE;
  private readonly timeoutSeconds: number;
  private readonly maxAttempts: number;

  constructor(private readonly o: Ec2ComputeStrategyOptions) {
    this.timeoutSeconds = o.timeoutSeconds ?? DEFAULT_ABCA_TIMEOUT_SECONDS;
    if (!Number.isInteger(this.timeoutSeconds) || this.timeoutSeconds < 1 || this.timeoutSeconds > DEFAULT_TIMINGS.maxTaskTimeoutSeconds) {
      throw new AbcaAdapterError(`timeoutSeconds: ${this.timeoutSeconds} is outside 1..${DEFAULT_TIMINGS.maxTaskTimeoutSeconds} (the fleet's task timeout cap)`);
    }
    this.maxAttempts = o.maxAttempts ?? DEFAULT_ABCA_MAX_ATTEMPTS;
    if (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 1) throw new AbcaAdapterError(`maxAttempts: ${this.maxAttempts} is not a positive integer`);
  }

  async startSession(input: StartSessionInput): Promise<Ec2SessionHandle> {
    if (input.blueprintConfig?.compute_type !== EC2_COMPUTE_TYPE) {
      throw new AbcaAdapterError(`startSession: blueprint compute_type is ${String(input.blueprintConfig?.compute_type)}, this strategy runs "${EC2_COMPUTE_TYPE}"`);
    }
    const image = typeof this.o.image === 'function' ? this.o.image(input.blueprintConfig) : this.o.image;
    const repo = typeof input.payload.repo_url === 'string' && SESSION_TAG_VALUE.test(input.payload.repo_url) ? input.payload.repo_url : undefined;
    const size = input.readOnly ? (this.o.readOnlyResources ?? DEFAULT_READ_ONLY_RESOURCES) : (this.o.resources ?? DEFAULT_RESOURCES);
    const idempotencyKey = abcaIdempotencyKey(input.taskId);
    const fleetTaskId = taskIdForIdempotencyKey(idempotencyKey);
    if (Buffer.byteLength(JSON.stringify(input.payload)) > LIMITS.maxPayloadBytes) {
      throw new AbcaAdapterError(`startSession: the payload is over the fleet's ${LIMITS.maxPayloadBytes}-byte cap`);
    }
    const spec: TaskSpecInput & Record<string, unknown> = {
      image,
      ...(this.o.command ? { command: [...this.o.command] } : {}),
      payload: input.payload as TaskSpecInput['payload'],
      env: { ...agentEnvFor(input, this.o.abca ?? {}, { bucket: this.o.client.names.payloadBucket, fleetTaskId }), ...this.o.env },
      secrets: { ...this.o.secrets },
      cpus: size.cpus,
      memory_mb: size.memoryMb,
      timeout_s: this.timeoutSeconds,
      idempotency_key: idempotencyKey,
      labels: { [ABCA_TASK_ID_LABEL]: input.taskId },
      ...(repo ? { repo } : {}),
    };
    const res = await this.o.client.submitTask(spec, { maxAttempts: this.maxAttempts });
    return { sessionId: res.taskId, strategyType: EC2_COMPUTE_TYPE, instanceId: res.record.instance_id ?? '', commandId: res.taskId };
  }

  async pollSession(handle: AnySessionHandle): Promise<AbcaSessionStatus> {
    assertHandle(handle, 'pollSession');
    try {
      return sessionStatusOf(await this.o.client.getTask(handle.sessionId));
    } catch (err) {
      if (err instanceof TaskNotFoundError) return { status: 'failed', error: `fleet task ${handle.sessionId} not found` };
      throw err;
    }
  }

  /**
   * Where the session's output is (docs/logs.md): the attempt's CloudWatch Logs stream (what ABCA
   * shows as the task's logs; a console URL for its logs link) and the S3 prefix of the files the
   * agent left under /fleet/output. The attempt is the record's current one.
   */
  async outputs(handle: AnySessionHandle): Promise<SessionOutputs> {
    assertHandle(handle, 'outputs');
    const record = await this.o.client.getTask(handle.sessionId);
    return sessionOutputs(this.o.client.names, this.o.client.clients.region, record.task_id, Math.max(1, record.attempt));
  }

  /** Cancels the fleet task; a finished or unknown task is nothing to stop (not an error). */
  async stopSession(handle: AnySessionHandle): Promise<void> {
    assertHandle(handle, 'stopSession');
    try {
      await this.o.client.cancelTask(handle.sessionId, { by: 'abca-orchestrator' });
    } catch (err) {
      if (err instanceof TaskNotFoundError) return;
      throw err;
    }
  }
}

/** Where one fleet task attempt's output is: the log stream and the artifacts (see Ec2ComputeStrategy.outputs). */
export interface SessionOutputs {
  /** The fleet's task log group; undefined when the fleet does not ship task logs. */
  readonly logGroup?: string;
  readonly logStream: string;
  /** The stream in the CloudWatch console (ABCA's logs link). */
  readonly logsUrl?: string;
  /** `s3://<payload bucket>/artifacts/<task_id>/<attempt>/`. */
  readonly artifactsUri: string;
}

/** The console spells a path segment encoded twice, with `%` written as `$`. */
const consoleSegment = (s: string) => encodeURIComponent(encodeURIComponent(s)).replace(/%/g, '$');

export function sessionOutputs(names: { readonly logGroup?: string; readonly payloadBucket: string }, region: string, taskId: string, attempt: number): SessionOutputs {
  const logStream = taskLogStreamName(taskId, attempt);
  return {
    ...(names.logGroup
      ? {
          logGroup: names.logGroup,
          logsUrl: `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#logsV2:log-groups/log-group/${consoleSegment(names.logGroup)}/log-events/${consoleSegment(logStream)}`,
        }
      : {}),
    logStream,
    artifactsUri: `s3://${names.payloadBucket}/${artifactsPrefix(taskId, attempt)}`,
  };
}

/** The environment names createFleetComputeStrategy reads (besides the fleet's FLEET_* names). */
export const ABCA_ADAPTER_ENV = {
  image: 'FLEET_ABCA_IMAGE',
  /** JSON array of strings: the image's batch entry point. */
  command: 'FLEET_ABCA_COMMAND',
  timeoutSeconds: 'FLEET_ABCA_TIMEOUT_SECONDS',
  maxAttempts: 'FLEET_ABCA_MAX_ATTEMPTS',
  /** "4/16384": vCPU / MiB */
  resources: 'FLEET_ABCA_RESOURCES',
  readOnlyResources: 'FLEET_ABCA_READ_ONLY_RESOURCES',
  logGroup: 'FLEET_ABCA_LOG_GROUP_NAME',
} as const;

function profileFrom(value: string | undefined, name: string): ResourceProfile | undefined {
  if (value === undefined || value === '') return undefined;
  const m = /^(\d+(?:\.\d+)?)\/(\d+)$/.exec(value);
  if (!m) throw new AbcaAdapterError(`${name}: expected "<vCPU>/<MiB>", e.g. "4/16384"; got ${JSON.stringify(value)}`);
  return { cpus: Number(m[1]), memoryMb: Number(m[2]) };
}

function intFrom(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new AbcaAdapterError(`${name}: expected an integer; got ${JSON.stringify(value)}`);
  return n;
}

/**
 * The strategy configured from the environment: the fleet's FLEET_* names (the fleet stack's
 * outputs), FLEET_ABCA_* (ABCA_ADAPTER_ENV) and ABCA's own names in its orchestrator's env
 * (TASK_TABLE_NAME, TASK_EVENTS_TABLE_NAME, USER_CONCURRENCY_TABLE_NAME, GITHUB_TOKEN_SECRET_ARN),
 * passed on to the agent. `overrides` win. Wiring it into ABCA is one import and one `case`.
 */
export function createFleetComputeStrategy(overrides: Partial<Ec2ComputeStrategyOptions> = {}, env: NodeJS.ProcessEnv = process.env): Ec2ComputeStrategy {
  const image = overrides.image ?? env[ABCA_ADAPTER_ENV.image];
  if (!image) throw new AbcaAdapterError(`${ABCA_ADAPTER_ENV.image} is not set: the agent image the fleet runs for ABCA`);
  let command: string[] | undefined;
  const rawCommand = env[ABCA_ADAPTER_ENV.command];
  if (rawCommand) {
    const parsed: unknown = JSON.parse(rawCommand);
    if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new AbcaAdapterError(`${ABCA_ADAPTER_ENV.command}: expected a JSON array of strings`);
    command = parsed as string[];
  }
  const resources = profileFrom(env[ABCA_ADAPTER_ENV.resources], ABCA_ADAPTER_ENV.resources);
  const readOnlyResources = profileFrom(env[ABCA_ADAPTER_ENV.readOnlyResources], ABCA_ADAPTER_ENV.readOnlyResources);
  const timeoutSeconds = intFrom(env[ABCA_ADAPTER_ENV.timeoutSeconds], ABCA_ADAPTER_ENV.timeoutSeconds);
  const maxAttempts = intFrom(env[ABCA_ADAPTER_ENV.maxAttempts], ABCA_ADAPTER_ENV.maxAttempts);
  return new Ec2ComputeStrategy({
    client: overrides.client ?? new FleetClient(createAwsClients(), fleetNamesFromEnv(env)),
    image,
    ...(command ? { command } : {}),
    ...(resources ? { resources } : {}),
    ...(readOnlyResources ? { readOnlyResources } : {}),
    ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
    ...(maxAttempts !== undefined ? { maxAttempts } : {}),
    abca: {
      taskTable: env.TASK_TABLE_NAME,
      taskEventsTable: env.TASK_EVENTS_TABLE_NAME,
      userConcurrencyTable: env.USER_CONCURRENCY_TABLE_NAME,
      logGroup: env[ABCA_ADAPTER_ENV.logGroup] ?? env.LOG_GROUP_NAME,
      githubTokenSecretArn: env.GITHUB_TOKEN_SECRET_ARN,
    },
    ...overrides,
  });
}
