/**
 * The engine's own history of a container (its `kill` events), read to tell a stop from
 * outside fleetd from the task's own end. Moved out of runner.ts unchanged.
 */
import type Docker from 'dockerode';
import type { Logger } from './log';
import { isEngineUnreachable } from './engine-errors';

/**
 * Why a container that died by a signal fleetd did not send was stopped, when it was stopped
 * from outside: a `kill` event in the engine's history since `sinceMs` (dockerd stopping its
 * containers on shutdown, or someone's `docker stop` / `docker kill`), or an engine that no
 * longer answers (it is going down). Undefined when the process died by its own signal
 * (a crash such as SIGSEGV, or the kernel's OOM killer): that outcome is the task's.
 */
export async function stoppedFromOutside(docker: Docker, container: Docker.Container, sinceMs: number, log: Logger): Promise<string | undefined> {
  const since = Math.floor(sinceMs / 1000) - 1;
  const until = Math.ceil(Date.now() / 1000) + 1;
  let text: string;
  try {
    // Bounded by `until`: the engine sends the matching history, then ends the stream.
    const stream = (await docker.getEvents({ since, until, filters: { container: [container.id], type: ['container'], event: ['kill'] } })) as NodeJS.ReadableStream;
    text = await new Promise<string>((resolve, reject) => {
      let buf = '';
      stream.on('data', (c: Buffer) => (buf += c.toString('utf8')));
      stream.once('end', () => resolve(buf));
      stream.once('close', () => resolve(buf));
      stream.once('error', reject);
    });
  } catch (err) {
    if (isEngineUnreachable(err)) return 'the Docker engine stopped answering as the container exited';
    log.warn('reading the engine events failed; taking the exit as the task outcome', { container: container.id, error: err });
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const ev = JSON.parse(line) as { Action?: string; Actor?: { Attributes?: Record<string, string> } };
      if (ev.Action === 'kill') return `the engine killed it with signal ${ev.Actor?.Attributes?.signal ?? '?'} (dockerd shutting down, or docker stop/kill)`;
    } catch {
      // a partial line: ignore
    }
  }
  return undefined;
}
