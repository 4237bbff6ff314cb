/**
 * The store's DynamoDB vocabulary: one update-expression builder, one condition builder, one
 * condition-failure classifier and one typed error. Only the store module uses these; nothing
 * outside daemon/src/store/ builds an update expression for a fleet table.
 */
import type { TaskStatus } from '../contract';

/** `SET a = :a, … REMOVE b ADD c :n` with every name and value aliased. */
export interface UpdateSpec {
  readonly set?: Record<string, unknown>;
  readonly remove?: readonly string[];
  readonly add?: Record<string, number>;
}

/** A condition with its placeholders. Placeholder names must not start with `#u`/`:u` (the update's). */
export interface Condition {
  readonly expr: string;
  readonly names?: Record<string, string>;
  readonly values?: Record<string, unknown>;
}

export interface BuiltExpression {
  readonly UpdateExpression: string;
  readonly ConditionExpression?: string;
  readonly ExpressionAttributeNames: Record<string, string>;
  readonly ExpressionAttributeValues?: Record<string, unknown>;
}

export function buildUpdate(update: UpdateSpec, condition?: Condition): BuiltExpression {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets = Object.entries(update.set ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v], i) => {
      names[`#u${i}`] = k;
      values[`:u${i}`] = v;
      return `#u${i} = :u${i}`;
    });
  const removes = (update.remove ?? []).map((k, i) => {
    names[`#ur${i}`] = k;
    return `#ur${i}`;
  });
  const adds = Object.entries(update.add ?? {}).map(([k, v], i) => {
    names[`#ua${i}`] = k;
    values[`:ua${i}`] = v;
    return `#ua${i} :ua${i}`;
  });
  const clauses = [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : '', adds.length ? `ADD ${adds.join(', ')}` : ''];
  const allValues = { ...values, ...condition?.values };
  return {
    UpdateExpression: clauses.filter(Boolean).join(' '),
    ...(condition ? { ConditionExpression: condition.expr } : {}),
    ExpressionAttributeNames: { ...names, ...condition?.names },
    ...(Object.keys(allValues).length ? { ExpressionAttributeValues: allValues } : {}),
  };
}

/** `#s = :seenStatus AND attempt = :seenAttempt`: the record is still what we read. */
export function unchangedSince(seen: { status: TaskStatus; attempt: number }): Condition {
  return {
    expr: '#s = :seenStatus AND #attempt = :seenAttempt',
    names: { '#s': 'status', '#attempt': 'attempt' },
    values: { ':seenStatus': seen.status, ':seenAttempt': seen.attempt },
  };
}

/** Both conditions must hold. */
export function and(a: Condition, b: Condition): Condition {
  return { expr: `${a.expr} AND ${b.expr}`, names: { ...a.names, ...b.names }, values: { ...a.values, ...b.values } };
}

/** `lease_expires_at` has passed (or was never set) at `now`: nobody holds a live lease. */
export function leaseExpired(now: number): Condition {
  return { expr: '(attribute_not_exists(#lease) OR #lease < :leaseNow)', names: { '#lease': 'lease_expires_at' }, values: { ':leaseNow': now } };
}

/**
 * A write lost its condition: someone else acted first. This is an answer, not an error. A
 * transaction is also cancelled for other reasons (a conflicting transaction, throttling);
 * those carry other codes in CancellationReasons (DynamoDB and moto list one reason per item)
 * and are not a lost condition: they are thrown, and the retry policy judges them.
 */
export function isConditionFailure(err: unknown): boolean {
  const e = err as { name?: unknown; CancellationReasons?: Array<{ Code?: string } | undefined> } | null;
  if (e?.name === 'ConditionalCheckFailedException') return true;
  return e?.name === 'TransactionCanceledException' && (e.CancellationReasons ?? []).some((r) => r?.Code === 'ConditionalCheckFailed');
}

/** A store write or read failed for a reason other than a lost condition; the AWS error is `cause`. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    /** What the store was doing: `claim t-…`, `terminal write of t-…`. */
    readonly during: string,
    options: { cause: unknown },
  ) {
    const cause = options.cause as { name?: string; message?: string } | undefined;
    super(`${during} failed: ${cause?.name ?? 'Error'}: ${cause?.message ?? String(options.cause)}`, options);
  }

  /** The AWS error's name (`ValidationException`, …). */
  get awsName(): string | undefined {
    return (this.cause as { name?: string } | undefined)?.name;
  }
}
