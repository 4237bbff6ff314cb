/**
 * Every command's context: the fleet's names and a FleetClient on the AWS clients (lazy, one
 * SDK package per service on first use). Where the names come from: env.ts. `fleet status` and
 * `fleet list` use the lighter read-context.ts instead.
 */
import { createAwsClients } from '../../daemon/src/aws';
import { extraCaHttpsAgent } from './deferred-ca';
import { FleetClient, type FleetNames } from '../lib/client';
import { fleetNamesFromEnv, loadEnvironment, requireRegion } from './env';

export { fleetNamesFromEnv, loadEnvironment, type LocalStackSource, type Notice } from './env';

export interface CliContext {
  readonly client: FleetClient;
  readonly names: FleetNames;
  /** The --env-file given, for hints that repeat the command (list's "more: … --cursor"). */
  readonly envFile?: string;
}

export function createContext(options: { envFile?: string }): CliContext {
  loadEnvironment(options.envFile);
  const names = fleetNamesFromEnv();
  requireRegion();
  return { client: new FleetClient(createAwsClients({ httpsAgent: extraCaHttpsAgent() }), names), names, ...(options.envFile !== undefined ? { envFile: options.envFile } : {}) };
}
