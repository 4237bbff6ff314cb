/**
 * The boot preflight (docs/lifecycle.md "Boot", step 2): everything a task needs must answer
 * before the instance is advertised idle. First problem wins; the caller reports it (tag
 * unhealthy, instance row, SetInstanceHealth Unhealthy) and exits.
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type Docker from 'dockerode';
import type { AwsClients } from './aws';
import type { FleetdConfig } from './config';
import { startControlServer, type ControlHandler } from './control';
import { CredentialsServer } from './credentials';
import { diskShortage } from './disk';
import { dockerAnswers } from './docker';
import { ensureScaleInProtection } from './lifecycle';
import type { Logger } from './log';
import { BootError } from './fleetd-types';
import type { ImdsClient, InstanceIdentity } from './imds';
import { RETRY_POLICIES, retry, type RetryOptions } from './retry';
import type { StartupTimer } from './startup-timing';

/**
 * The instance's identity, the first boot step. IMDS can be slow to answer on a busy host (seen
 * with several daemons booting at once): RETRY_POLICIES.imds (5 tries, 0.5–4 s) before the boot
 * counts as failed. Any IMDS error is worth another try: without an identity there is nothing
 * else to do.
 */
export async function bootIdentity(imds: ImdsClient): Promise<InstanceIdentity> {
  try {
    return await retry('IMDS identity', () => imds.identity(), { policy: RETRY_POLICIES.imds, retryable: () => true });
  } catch (err) {
    throw new BootError(`preflight: IMDS did not answer after ${RETRY_POLICIES.imds.maxAttempts} tries (${(err as Error).message})`, { cause: err });
  }
}

export interface PreflightDeps {
  readonly config: FleetdConfig;
  readonly clients: AwsClients;
  readonly docker: Docker;
  readonly instanceId: string;
  readonly log: Logger;
  readonly control: ControlHandler;
  /** Retries of transient AWS errors (the boot's policy). */
  readonly retry: Pick<RetryOptions, 'policy' | 'onRetry'>;
  /** Marks each check's end (the "fleetd ready" breakdown). */
  readonly startup?: StartupTimer;
}

/** What the preflight opened (closed by the caller, also after a problem). */
export interface Booted {
  control?: net.Server;
  credentials?: CredentialsServer;
  /** The paths whose free space gates receiving: the work dir and Docker's data root. */
  diskPaths: string[];
}

/** Returns the first problem that makes this instance unable to run a task, if any. */
export async function preflight(d: PreflightDeps, booted: Booted): Promise<string | undefined> {
  const { config, clients, docker } = d;
  const mark = (step: string) => d.startup?.mark(step);
  try {
    booted.control = await startControlServer(config.socketPath, d.control);
  } catch (err) {
    return `the control socket ${config.socketPath} could not be opened: ${(err as Error).message}`;
  }
  mark('control_socket');
  if (!(await dockerAnswers(docker, 5000))) return `the Docker engine does not answer (DOCKER_HOST=${process.env.DOCKER_HOST ?? 'default socket'})`;
  mark('engine.ping');
  // A network blip or a throttled API at boot must not mark the instance unhealthy (the group
  // would replace it): transient errors are retried (retry.ts); a missing queue or table, or a
  // denied call, fails at once.
  try {
    await retry('preflight: AWS', async () => {
      await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: config.queueUrl, AttributeNames: ['QueueArn'] }));
      mark('sqs.GetQueueAttributes');
      await clients.ddb.send(new DescribeTableCommand({ TableName: config.tasksTable }));
      mark('dynamodb.DescribeTable');
    }, d.retry);
  } catch (err) {
    return `AWS is not reachable or the fleet's resources are missing: ${(err as Error).name}: ${(err as Error).message}`;
  }
  try {
    fs.mkdirSync(config.workDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    return `the work directory ${config.workDir} could not be created: ${(err as Error).message}`;
  }
  const dockerRoot = await docker.info().then((i: { DockerRootDir?: string }) => i.DockerRootDir, () => undefined);
  booted.diskPaths = [config.workDir, ...(dockerRoot ? [dockerRoot] : [])];
  const disk = diskShortage(booted.diskPaths, config.minFreeDiskBytes, config.minFreeInodes);
  mark('engine.info + disk');
  if (disk) return disk;
  if (config.asgName) {
    const unprotected = await ensureScaleInProtection(clients.autoscaling, config.asgName, d.instanceId, d.log);
    mark('autoscaling.SetInstanceProtection');
    if (unprotected) return unprotected;
  }
  if (config.taskRoleArn) {
    const creds = new CredentialsServer({
      sts: clients.sts,
      roleArn: config.taskRoleArn,
      host: config.credentialsEndpoint.host,
      port: config.credentialsEndpoint.port,
      durationSeconds: config.taskCredentialsSeconds,
      log: d.log,
    });
    try {
      await creds.start();
    } catch (err) {
      return `the credentials endpoint could not listen on ${config.credentialsEndpoint.host}:${config.credentialsEndpoint.port} (${(err as Error).message}); is ${config.credentialsEndpoint.host}/32 on lo?`;
    }
    booted.credentials = creds;
    try {
      await creds.probe();
    } catch (err) {
      return `the task role ${config.taskRoleArn} cannot be assumed: ${(err as Error).name}: ${(err as Error).message}`;
    }
    mark('credentials endpoint + sts.AssumeRole');
  }
  return undefined;
}
