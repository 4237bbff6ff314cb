/**
 * Typed errors of the client library (Powertools style: a `name` to branch on, the AWS error
 * as `cause`). Each message says what happened and what to do next; the CLI prints it as is.
 */
import { TASK_ID_PATTERN_SOURCE } from '../../daemon/src/contract/ids';
import { quote } from '../../daemon/src/contract/validation';

export class FleetClientError extends Error {
  override readonly name: string = 'FleetClientError';
}

export class InvalidSpecError extends FleetClientError {
  override readonly name = 'InvalidSpecError';
  constructor(readonly problems: string[]) {
    super(`invalid task spec: ${problems.join('; ')}`);
  }
}

/** A task id that cannot be one (refused before any AWS call: ids never reach a shell or a query unchecked). */
export class InvalidTaskIdError extends FleetClientError {
  override readonly name = 'InvalidTaskIdError';
  constructor(readonly taskId: string) {
    super(`invalid task id ${quote(taskId)}${taskId.length > 40 ? ` (${taskId.length} characters)` : ''}: expected ${TASK_ID_PATTERN_SOURCE}, like t-01jd8x5k2m3n4p5q6r7s8t9v0w`);
  }
}

export class TaskNotFoundError extends FleetClientError {
  override readonly name = 'TaskNotFoundError';
  constructor(readonly taskId: string) {
    super(`no task ${taskId}`);
  }
}

/** The record was written but the message was not: repair with resendMessage(taskId). */
export class EnqueueFailedError extends FleetClientError {
  override readonly name = 'EnqueueFailedError';
  constructor(readonly taskId: string, cause: unknown) {
    super(`task ${taskId} is recorded as QUEUED but its message could not be sent (${(cause as Error).message}); retry with resendMessage("${taskId}") or let the reconciler re-send it`, { cause });
  }
}

/** A `listTasks` cursor that was not produced by listTasks for the same statuses. */
export class InvalidCursorError extends FleetClientError {
  override readonly name = 'InvalidCursorError';
}

/** An AWS call of the client failed for a reason other than the ones above (network, permissions, throttling). */
export class FleetRequestError extends FleetClientError {
  override readonly name = 'FleetRequestError';
  constructor(readonly during: string, cause: unknown) {
    super(`${during} failed: ${(cause as Error)?.name ?? 'Error'}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** The task record kept changing under a conditional write (every retry lost its condition). */
export class TaskContendedError extends FleetClientError {
  override readonly name = 'TaskContendedError';
  constructor(readonly taskId: string, what: string) {
    super(`task ${taskId} kept changing while ${what}; try again`);
  }
}

/** waitForTerminal / watchTask gave up before the task ended. */
export class WaitTimeoutError extends FleetClientError {
  override readonly name = 'WaitTimeoutError';
  constructor(readonly taskId: string, readonly lastStatus: string, timeoutMs: number) {
    super(`task ${taskId} still ${lastStatus} after ${Math.round(timeoutMs / 1000)} s`);
  }
}

/** A rollout cannot be done as asked (no rollout under way, another one is, no such version); `hint` says what to do. */
export class RolloutRefusedError extends FleetClientError {
  override readonly name = 'RolloutRefusedError';
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** An AWS call of a rollout failed; `cause` is the AWS error. */
export class RolloutAwsError extends FleetClientError {
  override readonly name = 'RolloutAwsError';
}

/** Runs one AWS call; anything but our own errors becomes a FleetRequestError naming the step. */
export async function call<T>(during: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof FleetClientError) throw err;
    throw new FleetRequestError(during, err);
  }
}
