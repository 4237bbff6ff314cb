/**
 * Exit codes and the one place errors become output. A user mistake is one line and a hint on
 * stderr, never a stack trace (FLEET_DEBUG=1 adds the trace for a bug report).
 */
import { CommanderError } from 'commander';
import { oneLine } from '../../daemon/src/contract/validation';
import {
  EnqueueFailedError,
  FleetClientError,
  InvalidCursorError,
  InvalidSpecError,
  InvalidTaskIdError,
  RolloutRefusedError,
  TaskNotFoundError,
} from '../lib/errors';

/** Documented in docs/cli.md; scripts branch on them. */
export const EXIT = {
  ok: 0,
  /** watch / submit --follow: the task ended FAILED, TIMED_OUT or CANCELLED. */
  taskFailed: 1,
  /** reconcile --once: the pass ran, but some reads or repairs failed (each is in the report). */
  passErrors: 1,
  /** Bad arguments or configuration: nothing was done. */
  usage: 2,
  /** The task id is well-formed but no such task exists in this fleet. */
  notFound: 3,
  /** AWS could not be reached or refused (credentials, network, permissions), or a bug. */
  failure: 4,
  /** Ctrl-C while watching: the task itself goes on. */
  interrupted: 130,
} as const;

/** A mistake of the user: exit 2 with the message and a hint. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export interface ErrorReport {
  readonly code: number;
  readonly lines: string[];
}

/** What to print for an error and the exit code; `context` names the fleet for not-found hints. */
export function describeError(err: unknown, context: { tasksTable?: string; command?: string } = {}): ErrorReport {
  const line = (message: string, hint?: string) => [`fleet: ${oneLine(message, 400)}`, ...(hint ? [`  hint: ${oneLine(hint, 400)}`] : [])];
  if (err instanceof CommanderError) {
    // Commander already printed its one-line message and our hint (program.ts); --help and
    // --version exit 0, a bare `fleet` (help shown as an error) and every parse error exit 2.
    return { code: err.exitCode === 0 ? EXIT.ok : EXIT.usage, lines: [] };
  }
  if (err instanceof UsageError) return { code: EXIT.usage, lines: line(err.message, err.hint ?? `"fleet ${context.command ?? ''}${context.command ? ' ' : ''}--help" shows the options and an example`) };
  if (err instanceof InvalidTaskIdError) return { code: EXIT.usage, lines: line(err.message, 'task ids are printed by "fleet submit" and "fleet list"') };
  if (err instanceof InvalidSpecError) {
    return { code: EXIT.usage, lines: ['fleet: the task spec is invalid:', ...err.problems.map((p) => `  - ${oneLine(p, 400)}`), '  hint: "fleet submit --help" lists the options and their forms'] };
  }
  if (err instanceof InvalidCursorError) return { code: EXIT.usage, lines: line(err.message) };
  if (err instanceof TaskNotFoundError) {
    return { code: EXIT.notFound, lines: line(err.message + (context.tasksTable ? ` in table ${context.tasksTable}` : ''), '"fleet list" shows recent tasks; check that FLEET_TASKS_TABLE names the right fleet') };
  }
  if (err instanceof EnqueueFailedError) {
    return { code: EXIT.failure, lines: line(err.message, 'submit again with the same --idempotency-key to repair it, or let the reconciler re-send the message') };
  }
  if (err instanceof RolloutRefusedError) return { code: EXIT.usage, lines: line(err.message, err.hint) };
  if (err instanceof FleetClientError) {
    return { code: EXIT.failure, lines: line(err.message, 'check AWS credentials, AWS_REGION and AWS_ENDPOINT_URL; FLEET_DEBUG=1 prints the details') };
  }
  const e = err as Error;
  return { code: EXIT.failure, lines: line(`unexpected error: ${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`, 'FLEET_DEBUG=1 prints the stack trace; please report it') };
}
