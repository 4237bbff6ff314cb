/** Where the local stack keeps its state: one git-ignored folder in the project. */
import * as path from 'node:path';
import { CHECKOUT_ROOT, localStackDir, localStackEnvFile } from '../../lib/local-env-file';

export const PROJECT_ROOT = CHECKOUT_ROOT;
export const FLEET_DIR = localStackDir();
export const STATE_FILE = path.join(FLEET_DIR, 'stack.json');
/** The one file the CLI, the daemon and the tests read (KEY=VALUE, `process.loadEnvFile`). */
export const ENV_FILE = localStackEnvFile();
export const LOG_DIR = path.join(FLEET_DIR, 'logs');
export const DOCKER_DIR = path.join(FLEET_DIR, 'docker');
export const RUN_DIR = path.join(FLEET_DIR, 'run');

/** Per-instance runtime folder of a local daemon (control socket, task files). */
export function instanceDir(instanceId: string): string {
  return path.join(RUN_DIR, instanceId);
}
