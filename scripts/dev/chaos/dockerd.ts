/**
 * The one destructive step of a chaos run: restart the local stack's own dockerd while tasks
 * run. Only a dockerd the stack started (its pid in .fleet/stack.json, its command line carrying
 * DOCKERD_MARKER) is ever touched; it is started again at once through the stack's own
 * ensureDockerEngine, and the state file gets the new pid so `npm run local -- down` still
 * stops it. Other engineers' containers on the shared engine die too: keep this to one short
 * window per run (the short test inside `npm test` never calls it).
 */
import * as fs from 'node:fs';
import { DOCKERD_MARKER, OWN_DOCKER_HOST, ensureDockerEngine } from '../local/docker-engine';
import { STATE_FILE } from '../local/paths';
import { isOurProcess, stopProcess } from '../local/processes';
import { readState } from '../local/stack';

export class DockerRestartRefused extends Error {
  override readonly name = 'DockerRestartRefused';
}

/** Whether this machine's engine is one the stack started (and so may be restarted). */
export function canRestartDockerd(): boolean {
  const state = readState();
  return state.docker?.host === OWN_DOCKER_HOST && isOurProcess(state.docker.pid, DOCKERD_MARKER);
}

/** Stops our dockerd (SIGTERM, 30 s, then SIGKILL) and starts it again; returns ms it was down. */
export async function restartDockerd(onStopped: () => void): Promise<{ downMs: number; newPid?: number }> {
  const state = readState();
  if (state.docker?.host !== OWN_DOCKER_HOST || !isOurProcess(state.docker.pid, DOCKERD_MARKER)) {
    throw new DockerRestartRefused('the Docker engine was not started by the local stack (external DOCKER_HOST): not restarting it');
  }
  const t0 = Date.now();
  await stopProcess(state.docker.pid, DOCKERD_MARKER, 30_000);
  onStopped();
  const savedHost = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = OWN_DOCKER_HOST;
  try {
    const engine = await ensureDockerEngine();
    const fresh = readState();
    fresh.docker = engine;
    fs.writeFileSync(STATE_FILE, `${JSON.stringify(fresh, null, 2)}\n`);
    return { downMs: Date.now() - t0, newPid: engine.pid };
  } finally {
    process.env.DOCKER_HOST = savedHost;
  }
}
