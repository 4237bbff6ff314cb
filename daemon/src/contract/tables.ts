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

/** Terminal task records and their events are kept this long, then expire by TTL. */
export const RECORD_RETENTION_DAYS = 30;

/** The TTL value (`expires_at`, epoch seconds) for a terminal record or event written at `nowMs`. */
export function retentionExpiresAt(nowMs: number): number {
  return Math.floor(nowMs / 1000) + RECORD_RETENTION_DAYS * 24 * 3600;
}

export const QUEUE_DEFAULTS = {
  /** Receives before SQS moves a message to the dead-letter queue (poison messages). */
  maxReceiveCount: 10,
  /** Dead-letter retention: the SQS maximum, 14 days. */
  dlqRetentionSeconds: 14 * 24 * 3600,
  /** Task queue retention: also the maximum, so a long outage loses nothing. */
  retentionSeconds: 14 * 24 * 3600,
} as const;

/** S3 key of an uploaded payload. */
export function payloadKey(taskId: string): string {
  return `tasks/${taskId}/payload.json`;
}

/** Message attribute carrying why fleetd sent a message to the dead-letter queue. */
export const DLQ_REASON_ATTRIBUTE = 'fleet-rejection-reason';
