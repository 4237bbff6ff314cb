/**
 * Where the CLI finds its fleet. The fleet's names come from the FLEET_* variables (FLEET_ENV,
 * the same ones fleetd reads; the CDK stack outputs them); AWS settings from the SDK's standard
 * variables (AWS_REGION, AWS_ENDPOINT_URL, the credential chain). Two conveniences:
 * - `--env-file FILE`: KEY=VALUE lines that take precedence over the environment;
 * - with no FLEET_QUEUE_URL set and a local stack running (.fleet/local.env), that file is
 *   loaded, so `npx fleet …` in a checkout talks to the local stack.
 */
import * as fs from 'node:fs';
import { parseEnv } from 'node:util';
import { createAwsClients } from '../../daemon/src/aws';
import { FLEET_ENV } from '../../daemon/src/contract';
import { FleetClient, type FleetNames } from '../lib/client';
import { localStackEnvFile } from '../lib/local-env-file';
import { UsageError } from './errors';

const REQUIRED: Array<[keyof FleetNames, string]> = [
  ['queueUrl', FLEET_ENV.queueUrl],
  ['dlqUrl', FLEET_ENV.dlqUrl],
  ['tasksTable', FLEET_ENV.tasksTable],
  ['eventsTable', FLEET_ENV.eventsTable],
  ['instancesTable', FLEET_ENV.instancesTable],
  ['payloadBucket', FLEET_ENV.payloadBucket],
];

/** Applies --env-file (wins over the environment) or the local stack's file (fills gaps only). Returns what was loaded. */
export function loadEnvironment(envFile: string | undefined, env: NodeJS.ProcessEnv = process.env, localEnvFile = localStackEnvFile()): string | undefined {
  if (envFile !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(envFile, 'utf8');
    } catch (err) {
      throw new UsageError(`--env-file ${envFile}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'give a file of KEY=VALUE lines, like the one "npm run local -- up" writes to .fleet/local.env');
    }
    for (const [k, v] of Object.entries(parseEnv(text))) if (v !== undefined) env[k] = v;
    return envFile;
  }
  if (!env[FLEET_ENV.queueUrl] && fs.existsSync(localEnvFile)) {
    for (const [k, v] of Object.entries(parseEnv(fs.readFileSync(localEnvFile, 'utf8')))) if (v !== undefined && env[k] === undefined) env[k] = v;
    return localEnvFile;
  }
  return undefined;
}

/** The fleet's names from FLEET_* variables; every missing one is named in one message. */
export function fleetNamesFromEnv(env: NodeJS.ProcessEnv = process.env): FleetNames {
  const missing = REQUIRED.filter(([, name]) => !env[name]).map(([, name]) => name);
  if (missing.length > 0) {
    throw new UsageError(
      `no fleet configured: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set`,
      'export the fleet\'s FLEET_* variables (the CDK stack outputs them), pass --env-file FILE, or start the local stack with "npm run local -- up"',
    );
  }
  const names = Object.fromEntries(REQUIRED.map(([field, name]) => [field, env[name]!])) as Record<string, string>;
  return {
    ...(names as unknown as FleetNames),
    ...(env[FLEET_ENV.cancelDocument] ? { cancelDocument: env[FLEET_ENV.cancelDocument] } : {}),
    ...(env[FLEET_ENV.sealKeyId] ? { sealKeyId: env[FLEET_ENV.sealKeyId] } : {}),
    ...(env[FLEET_ENV.fleetName] ? { fleetName: env[FLEET_ENV.fleetName] } : {}),
    ...(env[FLEET_ENV.tagPrefix] ? { tagPrefix: env[FLEET_ENV.tagPrefix] } : {}),
  };
}

export interface CliContext {
  readonly client: FleetClient;
  readonly names: FleetNames;
}

export function createContext(options: { envFile?: string }): CliContext {
  loadEnvironment(options.envFile);
  const names = fleetNamesFromEnv();
  if (!process.env.AWS_REGION && !process.env.AWS_DEFAULT_REGION) {
    throw new UsageError('no AWS region: AWS_REGION is not set', 'export AWS_REGION=us-east-1 (or the fleet\'s region)');
  }
  return { client: new FleetClient(createAwsClients(), names), names };
}
