/**
 * Event rows: one per transition, written in the same transaction as the transition (and one
 * MESSAGE_RESENT per resend). Every row gets the TTL rule's `expires_at`.
 */
import { newEventId, retentionExpiresAt, type EventType, type TaskEvent, type TaskStatus } from '../contract';

export interface EventFields {
  readonly status?: TaskStatus;
  readonly attempt?: number;
  readonly instance_id?: string;
  readonly detail?: Record<string, string | number | boolean>;
}

export function eventRow(taskId: string, e: EventFields & { type: EventType; at: number }): TaskEvent {
  return {
    task_id: taskId,
    event_id: newEventId(),
    type: e.type,
    at: e.at,
    ...(e.status !== undefined ? { status: e.status } : {}),
    ...(e.attempt !== undefined ? { attempt: e.attempt } : {}),
    ...(e.instance_id !== undefined ? { instance_id: e.instance_id } : {}),
    ...(e.detail !== undefined ? { detail: e.detail } : {}),
    expires_at: retentionExpiresAt(e.at),
  };
}
