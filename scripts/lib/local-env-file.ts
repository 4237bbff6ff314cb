/**
 * Where a checkout's local stack writes its environment (`npm run local -- up`): the one path the
 * shipped CLI knows about the dev tooling, so that `npx fleet …` in a checkout reaches the local
 * stack. scripts/dev/local/paths.ts builds on it; nothing here imports dev tooling.
 */
import * as path from 'node:path';

/** The checkout this file belongs to (two levels above scripts/lib). */
export const CHECKOUT_ROOT = path.resolve(__dirname, '..', '..');

/** The local stack's state folder: `$FLEET_LOCAL_DIR`, else `.fleet` in the checkout. */
export function localStackDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLEET_LOCAL_DIR ?? path.join(CHECKOUT_ROOT, '.fleet');
}

/** KEY=VALUE lines of the running local stack (AWS endpoint, DOCKER_HOST, the fleet's names). */
export function localStackEnvFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(localStackDir(env), 'local.env');
}
