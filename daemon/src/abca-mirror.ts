/**
 * fleetd keeps ABCA's TaskTable honest about the tasks the ABCA adapter submitted (config
 * `abcaTaskTable`; a task is ABCA's when its spec carries the label ABCA_TASK_ID_LABEL).
 * docs/architecture.md, "ABCA", says what is written where and why.
 *
 * - Heartbeat (every heartbeat tick): read ABCA's `status` (GetItem, projection `status` only).
 *   RUNNING: SET `agent_heartbeat_at` (ISO 8601, UTC, to the second, as ABCA's agent writes it),
 *   conditional on RUNNING: batch-mode agents write a single heartbeat (upstream #45, #491).
 *   CANCELLED: ABCA's cancel (a plain conditional UpdateItem by cancel-task) is answered with the
 *   fleet's own cancel: the task run records CANCEL_REQUESTED through the store and stops the
 *   container with the usual ladder. Best effort: never delays or fails the lease.
 * - End (after fleetd's terminal write, or a release that ends an at-most-once task): an outcome
 *   ABCA must hear about is written as FAILED with `error_message` (≤ 1,000 characters, ABCA's
 *   limit), `completed_at` and `status_created_at`, conditional on one of ABCA's non-terminal
 *   statuses, so it never overwrites what the agent or ABCA wrote (an agent that wrote
 *   COMPLETED and exited 0 is left alone).
 *
 * The instance role may touch only those attributes (infra/abca-integration.ts).
 */
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { awsErrorName, isConditionalCheckFailed } from './aws';
import type { Logger } from './log';
import { TaskStatus } from './contract';
import { isTransient } from './retry';

/** Spec label naming the ABCA task a fleet task serves (set by scripts/lib/abca-adapter.ts). */
export const ABCA_TASK_ID_LABEL = 'abca.task-id';
/** ABCA's TaskTable status while its agent runs. */
export const ABCA_RUNNING_STATUS = 'RUNNING';
/** ABCA's statuses: the ones fleetd acts on or may end. */
export const ABCA_STATUS = { running: 'RUNNING', cancelled: 'CANCELLED', failed: 'FAILED' } as const;
/**
 * ABCA's non-terminal statuses a session can be in (SUBMITTED → HYDRATING → RUNNING ⇄
 * AWAITING_APPROVAL → FINALIZING): fleetd's FAILED is written only over one of these.
 */
export const ABCA_ACTIVE_STATUSES = ['SUBMITTED', 'HYDRATING', 'RUNNING', 'AWAITING_APPROVAL', 'FINALIZING'] as const;
/** ABCA truncates `error_message` to this many characters (its agent's write_terminal). */
export const ABCA_ERROR_MESSAGE_MAX = 1000;
/** The attributes fleetd reads or writes on ABCA's records, and nothing else (the IAM condition). */
export const ABCA_MIRROR_ATTRIBUTES = ['task_id', 'status', 'agent_heartbeat_at', 'error_message', 'completed_at', 'status_created_at'] as const;
/** ABCA task ids are ULIDs/UUIDs; anything else in the label is not mirrored. */
const ABCA_TASK_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export type MirrorOutcome = 'mirrored' | 'not-running' | 'cancelled' | 'failed';

/** How a fleet attempt ended, as the mirror needs it. */
export interface FleetEnd {
  /** The fleet's terminal status, or RELEASED (INTERRUPTED: handed back). */
  readonly status: TaskStatus | 'RELEASED';
  readonly reason?: string;
  readonly exitCode?: number;
  /** A release only: true when this task gets no other attempt (at most once). */
  readonly final?: boolean;
}

/**
 * The error_message ABCA gets for a fleet outcome, or undefined when ABCA must not be told
 * anything (a release of a task that resumes: another attempt follows).
 */
export function abcaFailureFor(end: FleetEnd): string | undefined {
  const exit = end.exitCode !== undefined ? ` (exit code ${end.exitCode})` : '';
  switch (end.status) {
    case TaskStatus.COMPLETED:
      return `the agent exited 0 without reporting: its container ended but it never wrote a terminal status to the TaskTable (fleet task COMPLETED${exit})`;
    case TaskStatus.FAILED:
    case TaskStatus.TIMED_OUT:
    case TaskStatus.CANCELLED:
      return `fleet task ${end.status}: ${end.reason ?? 'no reason recorded'}${exit}`;
    case 'RELEASED':
      return end.final ? `interrupted: ${end.reason || 'the instance gave the task back'}; not run again (an ABCA session runs at most once)` : undefined;
    default:
      return undefined;
  }
}

/** A fleet task that may run at most once once started: an ABCA task with an attempt cap of 1. */
export function abcaAtMostOnce(record: { spec: unknown; max_attempts?: number }): boolean {
  return abcaTaskIdOf(record.spec) !== undefined && record.max_attempts === 1;
}

/** The ABCA task id a (raw, unvalidated) spec names through its label, if a valid one. */
export function abcaTaskIdOf(spec: unknown): string | undefined {
  const labels = (spec as { labels?: unknown } | null)?.labels;
  if (typeof labels !== 'object' || labels === null) return undefined;
  const id = (labels as Record<string, unknown>)[ABCA_TASK_ID_LABEL];
  return typeof id === 'string' && ABCA_TASK_ID.test(id) ? id : undefined;
}

/** `2026-11-28T10:00:01Z`: the format ABCA's agent writes. */
export function abcaTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface AbcaHeartbeatMirrorOptions {
  readonly ddb: DynamoDBDocumentClient;
  /** ABCA's TaskTable (partition key `task_id`). */
  readonly table: string;
  readonly log: Logger;
  readonly now?: () => number;
}

export class AbcaHeartbeatMirror {
  constructor(private readonly o: AbcaHeartbeatMirrorOptions) {}

  get table(): string {
    return this.o.table;
  }

  /**
   * One heartbeat: read ABCA's status; RUNNING: mirror the heartbeat; CANCELLED: tell the
   * caller (it cancels the fleet task). Never throws.
   */
  async beat(abcaTaskId: string): Promise<MirrorOutcome> {
    const at = abcaTimestamp((this.o.now ?? Date.now)());
    try {
      const status = await this.statusOf(abcaTaskId);
      if (status === ABCA_STATUS.cancelled) {
        this.o.log.info('the ABCA task was cancelled: cancelling the fleet task', { abca_task_id: abcaTaskId, table: this.o.table });
        return 'cancelled';
      }
      if (status !== ABCA_STATUS.running) {
        this.o.log.debug('abca heartbeat not mirrored: the ABCA task is not RUNNING', { abca_task_id: abcaTaskId, table: this.o.table, abca_status: status ?? 'none' });
        return 'not-running';
      }
      // Timeline: ABCA's orchestrator moves the task RUNNING → a terminal or waiting state
      // between our read and this write: the condition fails and nothing is written.
      await this.o.ddb.send(new UpdateCommand({
        TableName: this.o.table,
        Key: { task_id: abcaTaskId },
        UpdateExpression: 'SET agent_heartbeat_at = :at',
        ConditionExpression: '#s = :running',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':at': at, ':running': ABCA_STATUS.running },
        ReturnValues: 'NONE',
      }));
      return 'mirrored';
    } catch (err) {
      if (isConditionalCheckFailed(err)) {
        this.o.log.debug('abca heartbeat not mirrored: the ABCA task is not RUNNING', { abca_task_id: abcaTaskId, table: this.o.table });
        return 'not-running';
      }
      this.o.log.warn('abca heartbeat mirror failed (the fleet task is unaffected)', { abca_task_id: abcaTaskId, table: this.o.table, error: awsErrorName(err) ?? 'Error', detail: (err as Error).message });
      return 'failed';
    }
  }

  /** ABCA's status of a task (GetItem, consistent, projection `status` only); undefined: no record. */
  async statusOf(abcaTaskId: string): Promise<string | undefined> {
    const res = await this.o.ddb.send(new GetCommand({
      TableName: this.o.table,
      Key: { task_id: abcaTaskId },
      ProjectionExpression: '#s',
      ExpressionAttributeNames: { '#s': 'status' },
      ConsistentRead: true,
    }));
    const s = res.Item?.status;
    return typeof s === 'string' ? s : undefined;
  }

  /**
   * After a fleet attempt ended: writes ABCA FAILED with the reason when the outcome calls for
   * it (abcaFailureFor), conditional on ABCA's non-terminal statuses. A few tries on transient
   * errors, then one warn line; never throws.
   */
  async ended(abcaTaskId: string, end: FleetEnd): Promise<'written' | 'not-active' | 'nothing-to-write' | 'failed'> {
    const message = abcaFailureFor(end);
    if (message === undefined) return 'nothing-to-write';
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.fail(abcaTaskId, message)) ? 'written' : 'not-active';
      } catch (err) {
        if (attempt < 3 && isTransient(err)) {
          await new Promise((r) => setTimeout(r, 500 * attempt));
          continue;
        }
        this.o.log.warn('writing the fleet outcome into ABCA\'s TaskTable failed', { abca_task_id: abcaTaskId, table: this.o.table, error: awsErrorName(err) ?? 'Error', detail: (err as Error).message, error_message: message });
        return 'failed';
      }
    }
  }

  /**
   * ABCA FAILED with `error_message`, `completed_at`, `status_created_at` (`FAILED#<at>`, the
   * sort key ABCA's writers keep in step), only over a non-terminal status. False: ABCA's record
   * is terminal already (the agent or ABCA wrote it), or absent.
   */
  async fail(abcaTaskId: string, message: string): Promise<boolean> {
    const at = abcaTimestamp((this.o.now ?? Date.now)());
    const active = Object.fromEntries(ABCA_ACTIVE_STATUSES.map((s, i) => [`:a${i}`, s]));
    try {
      // Timeline: the agent writes COMPLETED / FAILED, or ABCA writes CANCELLED / FAILED, before
      // this write: the condition fails and their outcome stands.
      await this.o.ddb.send(new UpdateCommand({
        TableName: this.o.table,
        Key: { task_id: abcaTaskId },
        UpdateExpression: 'SET #s = :failed, error_message = :err, completed_at = :at, status_created_at = :sca',
        ConditionExpression: `#s IN (${Object.keys(active).join(', ')})`,
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':failed': ABCA_STATUS.failed, ':err': message.slice(0, ABCA_ERROR_MESSAGE_MAX), ':at': at, ':sca': `${ABCA_STATUS.failed}#${at}`, ...active },
        ReturnValues: 'NONE',
      }));
      this.o.log.info('the ABCA task was marked FAILED with the fleet outcome', { abca_task_id: abcaTaskId, table: this.o.table, error_message: message.slice(0, ABCA_ERROR_MESSAGE_MAX) });
      return true;
    } catch (err) {
      if (isConditionalCheckFailed(err)) {
        this.o.log.info('the ABCA task is already terminal: left as it is', { abca_task_id: abcaTaskId, table: this.o.table });
        return false;
      }
      throw err;
    }
  }
}

/** The mirror fleetd's config asks for, or undefined when `abcaTaskTable` is not set. */
export function abcaMirrorFor(config: { readonly abcaTaskTable?: string }, ddb: DynamoDBDocumentClient, log: Logger): AbcaHeartbeatMirror | undefined {
  return config.abcaTaskTable ? new AbcaHeartbeatMirror({ ddb, table: config.abcaTaskTable, log }) : undefined;
}
