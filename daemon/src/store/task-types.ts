/** The shapes of the task store's API: a daemon's lease, the outcomes of its writes, the store's options. */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ArtifactsSummary, DispatchTimings, TaskRecord, TaskStatus, Timings } from '../contract';

/** The claim a daemon holds: every later write is conditioned on exactly these. */
export interface Lease {
  readonly taskId: string;
  readonly instanceId: string;
  /** The fencing token. */
  readonly attempt: number;
}

export type ClaimOutcome =
  /** We hold the task now. `takeover`: it was leased by an instance whose lease expired. */
  | { kind: 'claimed'; lease: Lease; record: TaskRecord; takeover: boolean }
  /** No record: the message points at nothing (bogus, or the record expired). */
  | { kind: 'missing' }
  /** The record is not a valid task record; `problems` says why. */
  | { kind: 'invalid-record'; problems: string[] }
  /** Already finished or cancelled: the message is stale. */
  | { kind: 'terminal'; record: TaskRecord }
  /** Another live lease (another instance, or a duplicate delivery to us). */
  | { kind: 'leased'; record: TaskRecord }
  /** We ended it instead of claiming: attempts exhausted (FAILED) or cancel with no live lease (CANCELLED). */
  | { kind: 'ended'; status: TaskStatus; reason: string; record: TaskRecord }
  /** The record kept changing under us; the message stays for a later receive. */
  | { kind: 'contended' };

export type HeartbeatOutcome = { kind: 'ok'; status: TaskStatus } | { kind: 'fenced'; record?: TaskRecord };

/**
 * What an attempt learns only once its RUNNING write is out (the write goes beside the
 * container's creation: task-run.ts): its container and its dispatch timings. They ride on the
 * attempt's next write, the first heartbeat or the terminal write, whichever comes first.
 */
export interface StartFacts {
  readonly container_id?: string;
  readonly dispatch?: DispatchTimings;
}

export interface TerminalFields extends StartFacts {
  readonly exit_code?: number;
  readonly oom_killed?: boolean;
  readonly duration_ms?: number;
  readonly result?: Record<string, unknown>;
  readonly result_error?: string;
  readonly log_tail?: string;
  readonly reason?: string;
  readonly artifacts?: ArtifactsSummary;
  readonly artifacts_error?: string;
}

/**
 * 'sent': the message went out and the record says when. 'sent-without-event': the same, but the
 * MESSAGE_RESENT event row could not be appended (history lacks one row; nothing to send again).
 * 'raced': the record changed since it was read (nothing sent); 'ended': it is terminal (nothing to send).
 */
export type ResendOutcome = 'sent' | 'sent-without-event' | 'raced' | 'ended';

/** The outcomes in which a message was sent. */
export function messageWasSent(outcome: ResendOutcome): boolean {
  return outcome === 'sent' || outcome === 'sent-without-event';
}

export interface TaskStoreOptions {
  readonly ddb: DynamoDBDocumentClient;
  readonly tasksTable: string;
  readonly eventsTable: string;
  /** Lease length for claims and heartbeats (fleetd's). Not needed by the client or the reconciler. */
  readonly timings?: Pick<Timings, 'leaseSeconds'>;
  /** The task queue, for `resend` (the client and the reconciler). */
  readonly queue?: { readonly sqs: SQSClient; readonly queueUrl: string };
  /** Epoch ms. @default Date.now */
  readonly now?: () => number;
  /**
   * Applied to every value this store SETs on a record and to every event row's detail before
   * it is written (fleetd: `(v) => log.secrets.redactValue(v)`, so no secret reaches a record
   * or an event). Not applied to the fields fencing and the state machine compare
   * (`UNREDACTED_FIELDS`): a secret that happens to equal a status or an instance id must not
   * corrupt them. @default no redaction
   */
  readonly redact?: (value: unknown) => unknown;
}

/** Written as they are: fleetd's own identifiers, which fencing and the state machine compare. */
export const UNREDACTED_FIELDS = new Set(['status', 'instance_id', 'attempt', 'container_id']);
