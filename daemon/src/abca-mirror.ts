/**
 * Mirrors fleetd's heartbeats into an ABCA TaskTable (config `abcaTaskTable`), which gives
 * batch-mode agents the liveness signal they lack (upstream #45, #491: a single heartbeat, then
 * health checks fail tasks that are fine). On every heartbeat tick of a task submitted through
 * the ABCA adapter (it carries the label ABCA_TASK_ID_LABEL), fleetd writes
 * `agent_heartbeat_at` (ISO 8601, UTC, to the second, as ABCA's own agent writes it) on that
 * ABCA task, conditional on ABCA's `status = RUNNING`: fleetd never revives a task ABCA has
 * finished, cancelled or not yet started. The mirror is best effort: a failure is logged and
 * never touches the task's lease.
 */
import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { awsErrorName, isConditionalCheckFailed } from './aws';
import type { Logger } from './log';

/** Spec label naming the ABCA task a fleet task serves (set by scripts/lib/abca-adapter.ts). */
export const ABCA_TASK_ID_LABEL = 'abca.task-id';
/** ABCA's TaskTable status while its agent runs. */
export const ABCA_RUNNING_STATUS = 'RUNNING';
/** ABCA task ids are ULIDs/UUIDs; anything else in the label is not mirrored. */
const ABCA_TASK_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export type MirrorOutcome = 'mirrored' | 'not-running' | 'failed';

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

  /** One mirrored heartbeat. Never throws. */
  async beat(abcaTaskId: string): Promise<MirrorOutcome> {
    const at = abcaTimestamp((this.o.now ?? Date.now)());
    try {
      // Timeline: ABCA's orchestrator moves the task RUNNING → a terminal or waiting state at
      // t1; a beat of ours after t1 fails its condition and writes nothing (not an error).
      await this.o.ddb.send(new UpdateCommand({
        TableName: this.o.table,
        Key: { task_id: abcaTaskId },
        UpdateExpression: 'SET agent_heartbeat_at = :at',
        ConditionExpression: '#s = :running',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':at': at, ':running': ABCA_RUNNING_STATUS },
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
}

/** The mirror fleetd's config asks for, or undefined when `abcaTaskTable` is not set. */
export function abcaMirrorFor(config: { readonly abcaTaskTable?: string }, ddb: DynamoDBDocumentClient, log: Logger): AbcaHeartbeatMirror | undefined {
  return config.abcaTaskTable ? new AbcaHeartbeatMirror({ ddb, table: config.abcaTaskTable, log }) : undefined;
}
