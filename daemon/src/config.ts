/**
 * fleetd's configuration: the config file (FLEETD_CONFIG or /etc/fleetd/config.json), then
 * single fields from the environment (FLEET_ENV), validated together at start. Every problem is
 * reported, one line each, before fleetd does anything.
 */
import * as fs from 'node:fs';
import {
  DEFAULT_CONFIG_PATH,
  DEFAULT_SOCKET_PATH,
  DEFAULT_TIMINGS,
  DEFAULT_WORK_DIR,
  FLEET_ENV,
  parseFleetdConfigFile,
  validateTimings,
  type FleetdConfigFile,
  type Timings,
} from './contract';

export interface FleetdConfig extends Omit<FleetdConfigFile, 'timings' | 'workDir' | 'socketPath'> {
  readonly timings: Timings;
  readonly workDir: string;
  readonly socketPath: string;
  /** Where the file came from, for the boot log. */
  readonly source: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The merged file + environment values, when they could be read (to report the failure). */
  readonly raw?: Record<string, unknown>;
  constructor(
    readonly problems: string[],
    options?: { cause?: unknown; raw?: Record<string, unknown> },
  ) {
    super(`fleetd config is invalid:\n  - ${problems.join('\n  - ')}`, options);
    this.raw = options?.raw;
  }
}

/** FLEET_ENV variable → config field, for the single-field overrides. */
const ENV_OVERRIDES: Array<[string, keyof FleetdConfigFile, (v: string) => unknown]> = [
  [FLEET_ENV.fleetName, 'fleetName', String],
  [FLEET_ENV.queueUrl, 'queueUrl', String],
  [FLEET_ENV.dlqUrl, 'dlqUrl', String],
  [FLEET_ENV.tasksTable, 'tasksTable', String],
  [FLEET_ENV.eventsTable, 'eventsTable', String],
  [FLEET_ENV.instancesTable, 'instancesTable', String],
  [FLEET_ENV.payloadBucket, 'payloadBucket', String],
  [FLEET_ENV.cancelDocument, 'cancelDocument', String],
  [FLEET_ENV.asgName, 'asgName', String],
  [FLEET_ENV.tagPrefix, 'tagPrefix', String],
  [FLEET_ENV.slots, 'slots', Number],
  [FLEET_ENV.allowedRegistries, 'allowedRegistries', (v) => v.split(',').map((s) => s.trim()).filter(Boolean)],
  [FLEET_ENV.secretArnPrefix, 'secretArnPrefix', String],
  [FLEET_ENV.taskRoleArn, 'taskRoleArn', String],
  [FLEET_ENV.sealKeyId, 'sealKeyId', String],
  [FLEET_ENV.workDir, 'workDir', String],
  [FLEET_ENV.logGroup, 'logGroup', String],
  [FLEET_ENV.socket, 'socketPath', String],
];

export function loadConfig(env: NodeJS.ProcessEnv = process.env, explicitPath?: string): FleetdConfig {
  const path = explicitPath ?? env[FLEET_ENV.config] ?? DEFAULT_CONFIG_PATH;
  let fromFile: Record<string, unknown> = {};
  let source = path;
  if (fs.existsSync(path)) {
    try {
      const parsed: unknown = JSON.parse(fs.readFileSync(path, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('expected a JSON object');
      fromFile = parsed as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError([`${path}: ${(err as Error).message}`], { cause: err });
    }
  } else if (explicitPath ?? env[FLEET_ENV.config]) {
    throw new ConfigError([`config file ${path} does not exist (set ${FLEET_ENV.config} to the right path)`]);
  } else {
    source = 'environment only';
  }
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [name, field, convert] of ENV_OVERRIDES) {
    const v = env[name];
    if (v !== undefined && v !== '') merged[field] = convert(v);
  }
  const parsed = parseFleetdConfigFile(merged);
  if (!parsed.ok) throw new ConfigError(parsed.problems, { raw: merged });
  const file = parsed.value;
  const timings: Timings = { ...DEFAULT_TIMINGS, ...file.timings };
  const timingProblems = validateTimings(timings);
  if (timingProblems.length) throw new ConfigError(timingProblems.map((p) => `timings.${p}`), { raw: merged });
  return {
    ...file,
    timings,
    workDir: file.workDir ?? DEFAULT_WORK_DIR,
    socketPath: file.socketPath ?? DEFAULT_SOCKET_PATH,
    source,
  };
}
