/**
 * ABCA's compute backend for `compute_type: 'ec2'`: a class shaped like ABCA's
 * `ComputeStrategy` (startSession / pollSession / stopSession) over the fleet's client library.
 *
 * - startSession submits the orchestrator's payload as a fleet task. The idempotency key is
 *   derived from ABCA's task id, so an orchestrator retry returns the same fleet task instead of
 *   starting a second agent. The ABCA task id also travels as the spec label
 *   ABCA_TASK_ID_LABEL, which is what fleetd's heartbeat mirror (daemon/src/abca-mirror.ts)
 *   writes `agent_heartbeat_at` against.
 * - pollSession reports the fleet record mechanically (running / completed / failed); it never
 *   guesses: an unknown task is failed with the reason, an AWS error is thrown for the
 *   orchestrator's retry.
 * - stopSession is the fleet's cancel (a queued task never starts; a running one gets the
 *   SIGTERM → grace → SIGKILL ladder, pushed through SSM, pulled by the heartbeat otherwise).
 *
 * docs/abca.md shows how to wire it into ABCA's resolveComputeStrategy.
 */
import { ABCA_TASK_ID_LABEL } from '../../daemon/src/abca-mirror';
import { TaskStatus, type TaskSpecInput } from '../../daemon/src/contract';
import { FleetClientError, TaskNotFoundError, type CancelResult, type FleetClient } from './client';

export const EC2_COMPUTE_TYPE = 'ec2';

/** The part of ABCA's BlueprintConfig this backend reads (ABCA passes its whole object). */
export interface AbcaBlueprintConfig {
  readonly compute_type: string;
  readonly [key: string]: unknown;
}

/** ABCA's SessionHandle variant for this backend: `sessionId` is the fleet task id. */
export interface Ec2SessionHandle {
  readonly sessionId: string;
  readonly strategyType: typeof EC2_COMPUTE_TYPE;
  readonly fleetTaskId: string;
}

/** ABCA's SessionStatus (this backend never reports `suspended`). */
export type AbcaSessionStatus =
  | { readonly status: 'running'; readonly reason?: string }
  | { readonly status: 'completed'; readonly reason?: string }
  | { readonly status: 'failed'; readonly error: string; readonly reason?: string };

export interface StartSessionInput {
  /** ABCA's task id (TaskTable `task_id`). */
  readonly taskId: string;
  /** Accepted for the interface; the fleet has no per-user runtime identity. */
  readonly userId: string;
  /** The orchestrator's payload: the agent gets it as AGENT_PAYLOAD and /fleet/payload.json. */
  readonly payload: Record<string, unknown>;
  readonly blueprintConfig: AbcaBlueprintConfig;
  readonly readOnly?: boolean;
}

export interface Ec2ComputeStrategyOptions {
  readonly client: FleetClient;
  /** The agent image (from a registry the fleet allows), or a choice per blueprint. */
  readonly image: string | ((blueprint: AbcaBlueprintConfig) => string);
  /**
   * The image's one-shot batch entry point, as argv (ABCA's agent image starts its HTTP server
   * by default). @default the image's own command
   */
  readonly command?: readonly string[];
  /** @default the spec default (1) */
  readonly cpus?: number;
  /** @default the spec default (2048) */
  readonly memoryMb?: number;
  /** @default the spec default (2 h) */
  readonly timeoutSeconds?: number;
  /** Extra environment for the agent (names FLEET_*, AWS_*, TASK_ID, AGENT_PAYLOAD are reserved). */
  readonly env?: Readonly<Record<string, string>>;
  /** NAME → Secrets Manager ARN, resolved by fleetd (under its allowed prefix). */
  readonly secrets?: Readonly<Record<string, string>>;
}

export class AbcaAdapterError extends FleetClientError {
  override readonly name = 'AbcaAdapterError';
}

/** STS session tag values allow only these characters; other repos are simply not tagged. */
const SESSION_TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+@-]{1,256}$/u;

function assertHandle(handle: { strategyType?: unknown; sessionId?: unknown }, method: string): asserts handle is Ec2SessionHandle {
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

export class Ec2ComputeStrategy {
  readonly type = EC2_COMPUTE_TYPE;

  constructor(private readonly o: Ec2ComputeStrategyOptions) {}

  async startSession(input: StartSessionInput): Promise<Ec2SessionHandle> {
    if (input.blueprintConfig?.compute_type !== EC2_COMPUTE_TYPE) {
      throw new AbcaAdapterError(`startSession: blueprint compute_type is ${String(input.blueprintConfig?.compute_type)}, this strategy runs "${EC2_COMPUTE_TYPE}"`);
    }
    const image = typeof this.o.image === 'function' ? this.o.image(input.blueprintConfig) : this.o.image;
    const repo = typeof input.payload.repo_url === 'string' && SESSION_TAG_VALUE.test(input.payload.repo_url) ? input.payload.repo_url : undefined;
    const spec: TaskSpecInput & Record<string, unknown> = {
      image,
      ...(this.o.command ? { command: [...this.o.command] } : {}),
      payload: input.payload as TaskSpecInput['payload'],
      env: { ...this.o.env },
      secrets: { ...this.o.secrets },
      ...(this.o.cpus !== undefined ? { cpus: this.o.cpus } : {}),
      ...(this.o.memoryMb !== undefined ? { memory_mb: this.o.memoryMb } : {}),
      ...(this.o.timeoutSeconds !== undefined ? { timeout_s: this.o.timeoutSeconds } : {}),
      idempotency_key: abcaIdempotencyKey(input.taskId),
      labels: { [ABCA_TASK_ID_LABEL]: input.taskId },
      ...(repo ? { repo } : {}),
    };
    const res = await this.o.client.submitTask(spec);
    return { sessionId: res.taskId, strategyType: EC2_COMPUTE_TYPE, fleetTaskId: res.taskId };
  }

  async pollSession(handle: Ec2SessionHandle): Promise<AbcaSessionStatus> {
    assertHandle(handle, 'pollSession');
    try {
      return sessionStatusOf(await this.o.client.getTask(handle.fleetTaskId));
    } catch (err) {
      if (err instanceof TaskNotFoundError) return { status: 'failed', error: `fleet task ${handle.fleetTaskId} not found` };
      throw err;
    }
  }

  /** Cancels the fleet task; a finished or unknown task is nothing to stop (not an error). */
  async stopSession(handle: Ec2SessionHandle): Promise<CancelResult | undefined> {
    assertHandle(handle, 'stopSession');
    try {
      return await this.o.client.cancelTask(handle.fleetTaskId, { by: 'abca-orchestrator' });
    } catch (err) {
      if (err instanceof TaskNotFoundError) return undefined;
      throw err;
    }
  }

  /** ABCA's optional lifecycle hooks: a fleet task cannot be suspended. */
  async suspendSession(handle: Ec2SessionHandle): Promise<{ supported: false }> {
    assertHandle(handle, 'suspendSession');
    return { supported: false };
  }

  async resumeSession(handle: Ec2SessionHandle): Promise<{ supported: false }> {
    assertHandle(handle, 'resumeSession');
    return { supported: false };
  }
}
