/**
 * The local stack's Docker Engine: DOCKER_HOST when it answers, else a dockerd of our own with
 * its data under .fleet/docker (Debian's docker.io, installed when missing).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dockerAnswers, dockerClient } from '../../../daemon/src/docker';
import { DOCKER_DIR } from './paths';
import { isOurProcess, logFile, spawnDetached, waitUntil } from './processes';

export interface DockerEngineState {
  readonly host: string;
  /** Set when the local stack started this dockerd (and so `down` stops it). */
  readonly pid?: number;
}

export const OWN_DOCKER_SOCKET = path.join(DOCKER_DIR, 'docker.sock');
export const OWN_DOCKER_HOST = `unix://${OWN_DOCKER_SOCKET}`;
/** What identifies our dockerd in /proc/<pid>/cmdline. */
export const DOCKERD_MARKER = `--data-root ${path.join(DOCKER_DIR, 'root')}`;

function onPath(binary: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', binary], { stdio: 'ignore' }).status === 0;
}

/** apt-get install, once per call, with a clear error when not root. */
export function aptInstall(packages: string[]): void {
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${packages.join(', ')}: install with "sudo apt-get install -y ${packages.join(' ')}" (the local stack installs it itself only as root)`);
  }
  console.error(`[local] installing ${packages.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  if (update.status !== 0) throw new Error('apt-get update failed');
  const install = spawnSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit', env });
  if (install.status !== 0) throw new Error(`apt-get install ${packages.join(' ')} failed`);
}

export async function ensureDockerEngine(previous?: DockerEngineState): Promise<DockerEngineState> {
  const external = process.env.DOCKER_HOST;
  if (external && external !== OWN_DOCKER_HOST && (await dockerAnswers(dockerClient(external)))) {
    return { host: external };
  }
  if (await dockerAnswers(dockerClient(OWN_DOCKER_HOST))) {
    // Ours from an earlier `up` whose state was lost: dockerd's own pidfile says which.
    const pidFile = path.join(DOCKER_DIR, 'dockerd.pid');
    const pid = previous?.pid ?? (fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').trim()) : undefined);
    return { host: OWN_DOCKER_HOST, pid: isOurProcess(pid, DOCKERD_MARKER) ? pid : undefined };
  }
  if (isOurProcess(previous?.pid, DOCKERD_MARKER)) {
    throw new Error(`dockerd (pid ${previous.pid}) runs but does not answer on ${OWN_DOCKER_SOCKET}; see ${logFile('dockerd')} or run "npm run local -- down" and try again`);
  }
  if (!onPath('dockerd')) aptInstall(['docker.io']);
  fs.mkdirSync(DOCKER_DIR, { recursive: true });
  fs.rmSync(OWN_DOCKER_SOCKET, { force: true });
  const pid = spawnDetached('dockerd', 'dockerd', [
    '--host', OWN_DOCKER_HOST,
    '--data-root', path.join(DOCKER_DIR, 'root'),
    '--exec-root', path.join(DOCKER_DIR, 'exec'),
    '--pidfile', path.join(DOCKER_DIR, 'dockerd.pid'),
  ]);
  await waitUntil(`dockerd to answer on ${OWN_DOCKER_SOCKET} (log: ${logFile('dockerd')})`, () => dockerAnswers(dockerClient(OWN_DOCKER_HOST)), 60_000, 200);
  return { host: OWN_DOCKER_HOST, pid };
}
