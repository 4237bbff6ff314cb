/**
 * Physical schema of the fleet's DynamoDB tables and its SQS queues. The CDK app, the local
 * stack's provisioning and every reader/writer import these names.
 */
export const TASKS_TABLE = {
  partitionKey: 'task_id',
  /** GSI for `fleet list --status S`: newest first. */
  statusIndex: { name: 'by-status', partitionKey: 'status', sortKey: 'created_at' },
  ttlAttribute: 'expires_at',
} as const;

export const EVENTS_TABLE = {
  partitionKey: 'task_id',
  sortKey: 'event_id',
  ttlAttribute: 'expires_at',
} as const;

export const INSTANCES_TABLE = {
  partitionKey: 'instance_id',
  ttlAttribute: 'expires_at',
} as const;

/** Terminal task records and every event row are kept this long, then expire by TTL. */
export const RECORD_RETENTION_DAYS = 30;

/** An instance row no fleetd rewrote for this long (the instance is gone) expires by TTL. */
export const INSTANCE_ROW_RETENTION_DAYS = 7;

/**
 * The one TTL rule (`expires_at`, epoch seconds) for a row written at `nowMs`: every event row
 * (SUBMITTED included) and every terminal task record gets it, instance rows get it with their
 * own retention on every rewrite. Only the store module (daemon/src/store/) calls it.
 */
export function retentionExpiresAt(nowMs: number, retentionDays: number = RECORD_RETENTION_DAYS): number {
  return Math.floor(nowMs / 1000) + retentionDays * 24 * 3600;
}

export const QUEUE_DEFAULTS = {
  /** Receives before SQS moves a message to the dead-letter queue (poison messages). */
  maxReceiveCount: 10,
  /** Dead-letter retention: the SQS maximum, 14 days. */
  dlqRetentionSeconds: 14 * 24 * 3600,
  /** Task queue retention: also the maximum, so a long outage loses nothing. */
  retentionSeconds: 14 * 24 * 3600,
} as const;

/** The intake queue (contract/intake.ts). */
export const INTAKE_QUEUE_DEFAULTS = {
  /** Receives before SQS moves an intake message the intake function keeps failing on to its DLQ (a bad one goes there at once, with a reason). */
  maxReceiveCount: 5,
  /** The intake function's timeout; the queue's visibility is six times it (AWS's advice for SQS event sources). */
  functionTimeoutSeconds: 60,
  /** The local stack's intake queue visibility: a failed message is retried within a test's time. */
  localVisibilitySeconds: 30,
} as const;

/** S3 key of an uploaded payload. */
export function payloadKey(taskId: string): string {
  return `tasks/${taskId}/payload.json`;
}

/** Message attribute carrying why fleetd sent a message to the dead-letter queue. */
export const DLQ_REASON_ATTRIBUTE = 'fleet-rejection-reason';
