/**
 * Gives an integration test a fresh, isolated fleet on the running local stack: its own queue,
 * dead-letter queue, tables, bucket, secret, cancel document and Auto Scaling group, under a
 * unique name, so test files can run in parallel against one moto without a reset.
 */
import '../../../daemon/src/quiet-sdk-warning';
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { createAwsClients, type AwsClients } from '../../../daemon/src/aws';
import { dockerClient } from '../../../daemon/src/docker';
import { fleetEnvironment, provisionFleet, type FleetResources, type ProvisionOptions } from '../local/provision';
import { readEnvFile } from '../local/stack';

export interface TestFleet {
  readonly resources: FleetResources;
  readonly clients: AwsClients;
  readonly docker: Docker;
  /** The local stack's environment (AWS endpoint, DOCKER_HOST, IMDS) plus this fleet's names. */
  readonly env: Record<string, string>;
  /** IMDS base URL of the local stack; `${imdsUrl}/${instanceId}/` answers as that instance. */
  readonly imdsUrl: string;
  readonly demoImage: string;
}

/** The running local stack's environment, applied to this process (SDK standard variables). */
export function stackEnv(): Record<string, string> {
  const env = readEnvFile();
  if (!env) throw new Error('the local stack is not running: run "npm run local -- up" (jest global setup normally does)');
  Object.assign(process.env, env);
  return env;
}

export function uniqueName(prefix = 't'): string {
  return `${prefix}${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

export async function freshFleet(options: ProvisionOptions = {}): Promise<TestFleet> {
  const base = stackEnv();
  const clients = createAwsClients();
  const resources = await provisionFleet(clients, uniqueName(), options);
  return {
    resources,
    clients,
    docker: dockerClient(base.DOCKER_HOST),
    env: { ...base, ...fleetEnvironment(resources), AWS_EC2_METADATA_SERVICE_ENDPOINT: `${base.FLEET_LOCAL_IMDS_URL}/${resources.instanceIds[0]}/` },
    imdsUrl: base.FLEET_LOCAL_IMDS_URL,
    demoImage: base.FLEET_LOCAL_DEMO_IMAGE,
  };
}
