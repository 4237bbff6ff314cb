/**
 * The scaler's configuration and where it comes from: the Lambda's environment, which the
 * AgentFleet construct sets (and the local stack can set the same way for `fleet scale --once`).
 * No AWS SDK or aws-cdk-lib import here: the construct and the Lambda bundle both use this file.
 */
import { FLEET_ENV } from '../../daemon/src/contract';
import { FLEET_METRICS_NAMESPACE, METRICS_NAMESPACE_ENV } from '../metrics';

/** How often EventBridge starts a scaler invocation (each then ticks every scalerTickSeconds). */
export const SCALER_SCHEDULE_SECONDS = 60;
/** Scaler Lambda timeout: one schedule period of ticks plus room for the slowest AWS calls. */
export const SCALER_TIMEOUT_SECONDS = 90;

/**
 * The scaler's own variable; the shared ones (queue, group, table, fleet name, slots per
 * instance = fleetd's `slots`) are the contract's FLEET_ENV names.
 */
export const SCALER_ENV = {
  buffer: 'FLEET_SCALING_BUFFER',
} as const;

export interface ScalerConfig {
  readonly fleetName: string;
  readonly queueUrl: string;
  readonly asgName: string;
  /** Tasks table: its `by-status` index gives the age of the oldest unclaimed task. */
  readonly tasksTable: string;
  readonly slotsPerInstance: number;
  /** Warm instances kept above demand while there is any demand. */
  readonly buffer: number;
  readonly metricsNamespace: string;
}

export class ScalerConfigError extends Error {
  override readonly name = 'ScalerConfigError';
}

/** Reads and checks the configuration; each problem names the variable, what it got and what it expects. */
export function scalerConfigFromEnv(env: NodeJS.ProcessEnv): ScalerConfig {
  const problems: string[] = [];
  const text = (name: string, what: string): string => {
    const value = env[name];
    if (value === undefined || value.trim() === '') {
      problems.push(`${name} is not set; expected ${what}`);
      return '';
    }
    return value.trim();
  };
  const integer = (name: string, what: string, min: number, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) {
      problems.push(`${name}: got ${JSON.stringify(raw)}, expected ${what} (an integer >= ${min})`);
      return fallback;
    }
    return value;
  };
  const config: ScalerConfig = {
    fleetName: text(FLEET_ENV.fleetName, 'the fleet name'),
    queueUrl: text(FLEET_ENV.queueUrl, 'the task queue URL'),
    asgName: text(FLEET_ENV.asgName, 'the Auto Scaling group name'),
    tasksTable: text(FLEET_ENV.tasksTable, 'the tasks table name'),
    slotsPerInstance: integer(FLEET_ENV.slots, 'the concurrent tasks per instance', 1, 1),
    buffer: integer(SCALER_ENV.buffer, 'the warm-instance buffer', 0, 0),
    metricsNamespace: env[METRICS_NAMESPACE_ENV]?.trim() || FLEET_METRICS_NAMESPACE,
  };
  if (problems.length > 0) {
    throw new ScalerConfigError(
      `scaler configuration: ${problems.join('; ')}. The AgentFleet construct sets these on the Lambda; for a local run export them.`,
    );
  }
  return config;
}

/** The inverse, for the construct: the environment that yields `config`. */
export function scalerEnvironment(config: ScalerConfig): Record<string, string> {
  return {
    [FLEET_ENV.fleetName]: config.fleetName,
    [FLEET_ENV.queueUrl]: config.queueUrl,
    [FLEET_ENV.asgName]: config.asgName,
    [FLEET_ENV.tasksTable]: config.tasksTable,
    [FLEET_ENV.slots]: String(config.slotsPerInstance),
    [SCALER_ENV.buffer]: String(config.buffer),
    [METRICS_NAMESPACE_ENV]: config.metricsNamespace,
  };
}
