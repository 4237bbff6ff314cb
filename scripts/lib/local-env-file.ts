/**
 * Where a checkout's local stack writes its environment (`npm run local -- up`): the one path the
 * shipped CLI knows about the dev tooling, so that `npx fleet …` in a checkout reaches the local
 * stack. scripts/dev/local/paths.ts builds on it; nothing here imports dev tooling.
 */
import * as fs from 'node:fs';
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

/**
 * Whether `root` is an agent-fleet checkout (its package.json is named agent-fleet). The CLI
 * uses the local stack's file only there: a bundle copied elsewhere has a CHECKOUT_ROOT two
 * levels above wherever it lies, whose `.fleet/local.env` would be a guess.
 */
export function isCheckout(root: string = CHECKOUT_ROOT): boolean {
  try {
    return (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name?: unknown }).name === 'agent-fleet';
  } catch {
    return false;
  }
}
