/**
 * How an error from the Docker engine is judged: the engine unreachable (an infrastructure
 * fault: release the task), a 5xx (its own trouble, which may pass), a 4xx (a refusal), and
 * which exit codes mean a signal ended the process.
 */

/**
 * The Docker engine did not answer (stopped, restarting, socket gone): an infrastructure fault,
 * never the task's. The task is released for another attempt rather than failed.
 */
export class EngineUnavailableError extends Error {
  override readonly name = 'EngineUnavailableError';
}

const ENGINE_DOWN_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

/** A connection-level failure talking to the engine (as opposed to an answer from it). */
export function isEngineUnreachable(err: unknown): boolean {
  if (err instanceof EngineUnavailableError) return true;
  const e = err as { code?: unknown; message?: unknown; statusCode?: unknown } | undefined;
  if (!e || typeof e !== 'object' || typeof e.statusCode === 'number') return false;
  return (typeof e.code === 'string' && ENGINE_DOWN_CODES.has(e.code)) || (typeof e.message === 'string' && /socket hang up/i.test(e.message));
}

/** An engine answer with a 5xx status: its own trouble, which may pass (unlike a 4xx refusal). */
export function isEngineServerError(err: unknown): boolean {
  const status = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof status === 'number' && status >= 500;
}

/** Exit codes of a process ended by a signal (128 + n), as Docker and tini report them. */
export function isSignalExit(exitCode: number): boolean {
  return exitCode > 128 && exitCode < 128 + 65;
}
