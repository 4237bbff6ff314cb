/**
 * Reads of task records: `getTask` (one consistent GetItem) and `listTasks` (by status, newest
 * first, paged). FleetClient delegates to this class; `fleet status` and `fleet list` use it
 * alone (scripts/cli/read-context.ts) so that they load the DynamoDB client and nothing else of
 * the SDK (issue #18: docs/benchmarks.md, "CLI start-up"). Keep its imports to DynamoDB, the
 * contract and this folder's small modules.
 */
import { GetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isTaskId } from '../../daemon/src/contract/ids';
import { parseTaskRecord, type TaskRecord } from '../../daemon/src/contract/record';
import { ALL_STATUSES, type TaskStatus } from '../../daemon/src/contract/states';
import { TASKS_TABLE } from '../../daemon/src/contract/tables';
import { FleetClientError, InvalidTaskIdError, TaskNotFoundError, call } from './errors';
import { decodeCursor, encodeCursor, hasMore, mergeNewestFirst, nextPositions, startKey, type PartitionHead, type Positions } from './task-pages';

export interface ListTasksOptions {
  /** Statuses to list. @default every status */
  readonly statuses?: readonly TaskStatus[];
  /** Tasks per page, 1..1000. @default 20 */
  readonly limit?: number;
  /** `nextCursor` of the previous page (for the same statuses). */
  readonly cursor?: string;
}

export interface TaskPage {
  readonly tasks: TaskRecord[];
  /** Present when more tasks follow: pass it back as `cursor`. */
  readonly nextCursor?: string;
  /** Items of the page that were not valid task records (written by another tool). */
  readonly skipped: number;
}

/** What `fleet status` and `fleet list` need of a client (FleetClient has both). */
export interface TaskReads {
  getTask(taskId: string): Promise<TaskRecord>;
  listTasks(options?: ListTasksOptions): Promise<TaskPage>;
}

const MAX_LIST_LIMIT = 1000;

export function assertTaskId(taskId: string): void {
  if (!isTaskId(taskId)) throw new InvalidTaskIdError(String(taskId));
}

export class TaskReader implements TaskReads {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly tasksTable: string,
  ) {}

  async getTask(taskId: string): Promise<TaskRecord> {
    assertTaskId(taskId);
    const res = await call(`reading task ${taskId}`, () =>
      this.ddb.send(new GetCommand({ TableName: this.tasksTable, Key: { task_id: taskId }, ConsistentRead: true })));
    if (!res.Item) throw new TaskNotFoundError(taskId);
    const parsed = parseTaskRecord(res.Item);
    if (!parsed.ok) throw new FleetClientError(`task ${taskId} has an invalid record: ${parsed.problems.join('; ')}`);
    return parsed.value;
  }

  /**
   * Tasks of the given statuses, newest first, one page at a time (task-pages.ts explains the
   * merge across the by-status index's partitions and why pages are exact).
   */
  async listTasks(options: ListTasksOptions = {}): Promise<TaskPage> {
    const limit = options.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw new FleetClientError(`limit: got ${limit}, expected an integer from 1 to ${MAX_LIST_LIMIT}`);
    const statuses = options.statuses?.length ? ALL_STATUSES.filter((s) => options.statuses!.includes(s)) : [...ALL_STATUSES];
    const positions: Positions = options.cursor ? decodeCursor(options.cursor, statuses) : {};
    const heads = await Promise.all(statuses.filter((s) => positions[s] !== 'done').map((s) => this.statusHead(s, limit, positions)));
    const { page, consumed } = mergeNewestFirst(heads, limit);
    const next = nextPositions(positions, heads, consumed);
    const tasks: TaskRecord[] = [];
    let skipped = 0;
    for (const { item } of page) {
      const parsed = parseTaskRecord(item);
      if (parsed.ok) tasks.push(parsed.value);
      else skipped++;
    }
    return { tasks, skipped, ...(hasMore(statuses, next) ? { nextCursor: encodeCursor(statuses, next) } : {}) };
  }

  /** Up to `limit` newest items of one status after its position (reads on past short pages). */
  private async statusHead(status: TaskStatus, limit: number, positions: Positions): Promise<PartitionHead> {
    const si = TASKS_TABLE.statusIndex;
    const items: Record<string, unknown>[] = [];
    let start = startKey(status, positions[status]);
    do {
      const res = await call(`listing ${status} tasks`, () => this.ddb.send(new QueryCommand({
        TableName: this.tasksTable,
        IndexName: si.name,
        KeyConditionExpression: '#s = :s',
        ExpressionAttributeNames: { '#s': si.partitionKey },
        ExpressionAttributeValues: { ':s': status },
        ScanIndexForward: false,
        Limit: limit - items.length,
        ExclusiveStartKey: start,
      })));
      items.push(...(res.Items ?? []));
      start = res.LastEvaluatedKey;
    } while (start && items.length < limit);
    return { status, items, more: start !== undefined };
  }
}
