/**
 * Where the CLI finds its fleet. The fleet's names come from the FLEET_* variables (FLEET_ENV,
 * the same ones fleetd reads; the CDK stack outputs them); AWS settings from the SDK's standard
 * variables (AWS_REGION, AWS_ENDPOINT_URL, the credential chain). Two conveniences:
 * - `--env-file FILE`: KEY=VALUE lines that take precedence over the environment;
 * - with no FLEET_QUEUE_URL set, in an agent-fleet checkout whose local stack runs
 *   (.fleet/local.env), that file is loaded and stderr says so, so `npx fleet …` in a checkout
 *   talks to the local stack. Outside a checkout, or without the file, nothing is guessed.
 * No AWS SDK here: config.ts (every command's context) and read-context.ts (status, list) build
 * on it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseEnv } from 'node:util';
import { FLEET_ENV } from '../../daemon/src/contract/environment';
import type { FleetNames } from '../lib/client';
import { isCheckout, localStackEnvFile } from '../lib/local-env-file';
import { UsageError } from './errors';

const REQUIRED: Array<[keyof FleetNames, string]> = [
  ['queueUrl', FLEET_ENV.queueUrl],
  ['dlqUrl', FLEET_ENV.dlqUrl],
  ['tasksTable', FLEET_ENV.tasksTable],
  ['eventsTable', FLEET_ENV.eventsTable],
  ['instancesTable', FLEET_ENV.instancesTable],
  ['payloadBucket', FLEET_ENV.payloadBucket],
];

/** Where the local stack's environment would come from, and whether this is a checkout at all. */
export interface LocalStackSource {
  readonly file: string;
  readonly inCheckout: boolean;
}

/** Says on stderr which stack a command targets when nobody said (see loadEnvironment). */
export type Notice = (line: string) => void;

const NOTHING_CONFIGURED_HINT = 'export the fleet\'s FLEET_* variables (the CDK stack outputs them) or pass --env-file FILE';

/**
 * Applies --env-file (wins over the environment) or, with no FLEET_QUEUE_URL, the local stack's
 * file (fills gaps only), saying so through `notice`. The local file is used only in an
 * agent-fleet checkout; outside one, or when the file is missing, nothing is guessed: a
 * UsageError says to export FLEET_* or pass --env-file. Returns the file loaded.
 */
export function loadEnvironment(
  envFile: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  local: LocalStackSource = { file: localStackEnvFile(), inCheckout: isCheckout() },
  notice: Notice = (line) => process.stderr.write(`${line}\n`),
): string | undefined {
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
  if (env[FLEET_ENV.queueUrl]) return undefined;
  if (!local.inCheckout) {
    throw new UsageError(`no fleet configured: ${FLEET_ENV.queueUrl} is not set (and outside an agent-fleet checkout no local stack is assumed)`, NOTHING_CONFIGURED_HINT);
  }
  if (!fs.existsSync(local.file)) {
    throw new UsageError(
      `no fleet configured: ${FLEET_ENV.queueUrl} is not set and the local stack's ${displayPath(local.file)} does not exist`,
      `${NOTHING_CONFIGURED_HINT}, or start the local stack with "npm run local -- up"`,
    );
  }
  for (const [k, v] of Object.entries(parseEnv(fs.readFileSync(local.file, 'utf8')))) if (v !== undefined && env[k] === undefined) env[k] = v;
  notice(`fleet: using the local stack's environment from ${displayPath(local.file)} (${FLEET_ENV.queueUrl} is not set)`);
  return local.file;
}

/** Relative to the working directory when inside it, else absolute. */
function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

/** The fleet's names from FLEET_* variables; every missing one is named in one message. */
export function fleetNamesFromEnv(env: NodeJS.ProcessEnv = process.env): FleetNames {
  const missing = REQUIRED.filter(([, name]) => !env[name]).map(([, name]) => name);
  if (missing.length > 0) {
    throw new UsageError(
      `no fleet configured: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set`,
      NOTHING_CONFIGURED_HINT,
    );
  }
  const names = Object.fromEntries(REQUIRED.map(([field, name]) => [field, env[name]!])) as Record<string, string>;
  return {
    ...(names as unknown as FleetNames),
    ...(env[FLEET_ENV.cancelDocument] ? { cancelDocument: env[FLEET_ENV.cancelDocument] } : {}),
    ...(env[FLEET_ENV.sealKeyId] ? { sealKeyId: env[FLEET_ENV.sealKeyId] } : {}),
    ...(env[FLEET_ENV.fleetName] ? { fleetName: env[FLEET_ENV.fleetName] } : {}),
    ...(env[FLEET_ENV.tagPrefix] ? { tagPrefix: env[FLEET_ENV.tagPrefix] } : {}),
    ...(env[FLEET_ENV.logGroup] ? { logGroup: env[FLEET_ENV.logGroup] } : {}),
  };
}

/** The region every command needs (the SDK's AWS_REGION or AWS_DEFAULT_REGION); a usage error without one. */
export function requireRegion(env: NodeJS.ProcessEnv = process.env): void {
  if (!env.AWS_REGION && !env.AWS_DEFAULT_REGION) {
    throw new UsageError('no AWS region: AWS_REGION is not set', 'export AWS_REGION=us-east-1 (or the fleet\'s region)');
  }
}
