/**
 * The primitives every write of the tasks and events tables goes through (TaskStore's base):
 * a consistent read, one conditional update with its event row in one transaction, a conditional
 * update without an event, the fencing condition of a held lease, and the redact hook applied to
 * every value written. A lost condition is `false`; any other failure a StoreError.
 */
import { GetCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TASKS_TABLE, parseTaskRecord, type EventType, type TaskRecord, type TaskStatus } from '../contract';
import { buildUpdate, isConditionFailure, StoreError, type Condition, type UpdateSpec } from './dynamo';
import { eventRow, type EventFields } from './events';
import { UNREDACTED_FIELDS, type Lease, type TaskStoreOptions } from './task-types';

export abstract class TaskWrites {
  protected readonly ddb: DynamoDBDocumentClient;
  readonly now: () => number;

  constructor(protected readonly options: TaskStoreOptions) {
    this.ddb = options.ddb;
    this.now = options.now ?? Date.now;
  }

  async get(taskId: string): Promise<{ record?: TaskRecord; problems?: string[] }> {
    let item: Record<string, unknown> | undefined;
    try {
      item = (await this.ddb.send(new GetCommand({ TableName: this.options.tasksTable, Key: { [TASKS_TABLE.partitionKey]: taskId }, ConsistentRead: true }))).Item;
    } catch (err) {
      throw new StoreError(`reading task ${taskId}`, { cause: err });
    }
    if (!item) return {};
    const parsed = parseTaskRecord(item);
    return parsed.ok ? { record: parsed.value } : { problems: parsed.problems };
  }

  protected leaseUntil(now: number): number {
    const lease = this.options.timings?.leaseSeconds;
    if (lease === undefined) throw new StoreError('computing a lease', { cause: new Error('this TaskStore was built without timings') });
    return now + lease * 1000;
  }

  /**
   * One conditional update of the task plus its event row, atomically. False when the
   * condition failed (someone else changed the task first).
   */
  protected async transition(taskId: string, update: UpdateSpec, condition: Condition, event: EventFields & { type: EventType; at: number }): Promise<boolean> {
    try {
      await this.ddb.send(new TransactWriteCommand({
        TransactItems: [
          { Update: { TableName: this.options.tasksTable, Key: { [TASKS_TABLE.partitionKey]: taskId }, ...buildUpdate(this.redactUpdate(update), condition) } },
          { Put: { TableName: this.options.eventsTable, Item: eventRow(taskId, this.redactEvent(event)) } },
        ],
      }));
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw new StoreError(`writing ${event.type} for task ${taskId}`, { cause: err });
    }
  }

  /** A conditional update with no event (heartbeat bookkeeping, send times). False: the condition failed. */
  protected async update(taskId: string, update: UpdateSpec, condition: Condition, during: string): Promise<boolean> {
    try {
      await this.ddb.send(new UpdateCommand({ TableName: this.options.tasksTable, Key: { [TASKS_TABLE.partitionKey]: taskId }, ...buildUpdate(this.redactUpdate(update), condition) }));
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw new StoreError(`${during} of task ${taskId}`, { cause: err });
    }
  }

  /** `fields` with `options.redact` applied to each value, but for UNREDACTED_FIELDS. */
  private redactFields<T extends Record<string, unknown>>(fields: T): T {
    const redact = this.options.redact;
    if (!redact) return fields;
    return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, UNREDACTED_FIELDS.has(k) ? v : redact(v)])) as T;
  }

  private redactUpdate(update: UpdateSpec): UpdateSpec {
    return this.options.redact && update.set ? { ...update, set: this.redactFields(update.set) } : update;
  }

  protected redactEvent<E extends EventFields>(event: E): E {
    return this.options.redact && event.detail ? { ...event, detail: this.redactFields(event.detail) } : event;
  }

  /** Fenced condition: we still own this attempt and the task is in one of `statuses`. */
  protected fenced(lease: Lease, statuses: readonly TaskStatus[]): Condition {
    const values: Record<string, unknown> = { ':me': lease.instanceId, ':attempt': lease.attempt };
    statuses.forEach((s, i) => (values[`:st${i}`] = s));
    return {
      expr: `#inst = :me AND #attempt = :attempt AND #s IN (${statuses.map((_, i) => `:st${i}`).join(', ')})`,
      names: { '#inst': 'instance_id', '#attempt': 'attempt', '#s': 'status' },
      values,
    };
  }
}
