/**
 * Paging `listTasks` over several statuses, newest first. Each status is one partition of the
 * tasks table's by-status GSI, sorted by created_at; a page is a k-way merge of the partitions'
 * heads, and the cursor records, per status, the last item handed out (the GSI key of that
 * item is exactly DynamoDB's ExclusiveStartKey), or that the status is exhausted.
 *
 * Why the page is exact: every partition is read until it yields `limit` items or ends, so any
 * item of the global newest-`limit` is among its own partition's newest `limit`. The merge takes
 * items in each partition's own order, so what a page consumed is always a prefix of it.
 */
import type { TaskStatus } from '../../daemon/src/contract';
import { TASKS_TABLE } from '../../daemon/src/contract/tables';
import { InvalidCursorError } from './errors';

type Item = Record<string, unknown>;

/** Where the next page of one status starts: after this item, or nothing left. */
export type Position = { readonly taskId: string; readonly createdAt: number } | 'done';
export type Positions = Partial<Record<TaskStatus, Position>>;

export interface PartitionHead {
  readonly status: TaskStatus;
  /** Newest first, as the GSI returned them: up to `limit` items. */
  readonly items: readonly Item[];
  /** The partition has items after `items`. */
  readonly more: boolean;
}

const CURSOR_VERSION = 1;
const MAX_CURSOR_CHARS = 8192;

function createdAt(item: Item): number {
  const v = item[TASKS_TABLE.statusIndex.sortKey];
  return typeof v === 'number' ? v : 0;
}

/** The GSI's ExclusiveStartKey for a position (table key + index keys). */
export function startKey(status: TaskStatus, position: Position | undefined): Item | undefined {
  if (position === undefined || position === 'done') return undefined;
  const si = TASKS_TABLE.statusIndex;
  return { [TASKS_TABLE.partitionKey]: position.taskId, [si.partitionKey]: status, [si.sortKey]: position.createdAt };
}

/** The newest `limit` items of all heads together; each head consumed in its own order. */
export function mergeNewestFirst(heads: readonly PartitionHead[], limit: number): { page: Array<{ status: TaskStatus; item: Item }>; consumed: Map<TaskStatus, number> } {
  const consumed = new Map<TaskStatus, number>(heads.map((h) => [h.status, 0]));
  const page: Array<{ status: TaskStatus; item: Item }> = [];
  while (page.length < limit) {
    let best: PartitionHead | undefined;
    for (const h of heads) {
      const next = h.items[consumed.get(h.status)!];
      if (next === undefined) continue;
      // Ties keep the order of `heads` (stable): deterministic pages.
      if (!best || createdAt(next) > createdAt(best.items[consumed.get(best.status)!])) best = h;
    }
    if (!best) break;
    const i = consumed.get(best.status)!;
    page.push({ status: best.status, item: best.items[i] });
    consumed.set(best.status, i + 1);
  }
  return { page, consumed };
}

/** Positions after a page: advanced where items were handed out, 'done' where a partition ran out. */
export function nextPositions(previous: Positions, heads: readonly PartitionHead[], consumed: Map<TaskStatus, number>): Positions {
  const next: Positions = { ...previous };
  for (const h of heads) {
    const n = consumed.get(h.status) ?? 0;
    if (n === h.items.length && !h.more) next[h.status] = 'done';
    else if (n > 0) {
      const last = h.items[n - 1];
      next[h.status] = { taskId: String(last[TASKS_TABLE.partitionKey]), createdAt: createdAt(last) };
    }
  }
  return next;
}

export function hasMore(statuses: readonly TaskStatus[], positions: Positions): boolean {
  return statuses.some((s) => positions[s] !== 'done');
}

export function encodeCursor(statuses: readonly TaskStatus[], positions: Positions): string {
  const p: Record<string, [string, number] | 0> = {};
  for (const s of statuses) {
    const pos = positions[s];
    if (pos === 'done') p[s] = 0;
    else if (pos) p[s] = [pos.taskId, pos.createdAt];
  }
  return Buffer.from(JSON.stringify({ v: CURSOR_VERSION, s: statuses, p }), 'utf8').toString('base64url');
}

/** Parses a cursor given back by a caller: untrusted input, checked field by field. */
export function decodeCursor(cursor: string, statuses: readonly TaskStatus[]): Positions {
  const bad = (why: string) => new InvalidCursorError(`invalid cursor: ${why}; use the cursor printed by the previous page, with the same --status`);
  if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad('not a cursor of this tool');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad('not a cursor of this tool');
  }
  const c = json as { v?: unknown; s?: unknown; p?: unknown } | null;
  if (c?.v !== CURSOR_VERSION || !Array.isArray(c.s) || typeof c.p !== 'object' || c.p === null) throw bad('not a cursor of this tool');
  if (c.s.length !== statuses.length || c.s.some((s, i) => s !== statuses[i])) throw bad(`it belongs to a list of ${c.s.join(', ')}`);
  const positions: Positions = {};
  for (const [status, value] of Object.entries(c.p as Record<string, unknown>)) {
    if (!statuses.includes(status as TaskStatus)) throw bad(`unknown status ${status}`);
    if (value === 0) positions[status as TaskStatus] = 'done';
    else if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && value[0].length <= 1024 && Number.isSafeInteger(value[1])) {
      positions[status as TaskStatus] = { taskId: value[0], createdAt: value[1] as number };
    } else throw bad(`bad position for ${status}`);
  }
  return positions;
}
