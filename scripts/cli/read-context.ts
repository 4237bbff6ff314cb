/**
 * The context of `fleet status` and `fleet list`: a TaskReader (scripts/lib/task-reads.ts) on a
 * DynamoDB document client, and nothing else. These two commands are the ones an operator (or a
 * script polling a task) runs most; through FleetClient they would load every AWS client the
 * library can use (aws.ts bundles each behind a lazy `require`, which esbuild inlines into the
 * chunk that holds it, so all of them are read and compiled) before the one GetItem or Query.
 * Here only @aws-sdk/client-dynamodb and lib-dynamodb are imported (issue #18; figures in
 * docs/benchmarks.md, "CLI start-up"). The client is configured as daemon/src/aws.ts configures
 * its `ddb`: the SDK's standard settings, 4 attempts, undefined values removed.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { connectionConfig } from '../../daemon/src/aws-connection';
import type { FleetNames } from '../lib/client';
import { TaskReader, type TaskReads } from '../lib/task-reads';
import { extraCaHttpsAgent } from './deferred-ca';
import { fleetNamesFromEnv, loadEnvironment, requireRegion } from './env';

export interface ReadContext {
  readonly client: TaskReads;
  readonly names?: FleetNames;
  /** The --env-file given, for hints that repeat the command (list's "more: … --cursor"). */
  readonly envFile?: string;
}

export function createReadContext(options: { envFile?: string }): ReadContext {
  loadEnvironment(options.envFile);
  const names = fleetNamesFromEnv();
  requireRegion();
  const region = (process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION)!;
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ region, maxAttempts: 4, ...connectionConfig(extraCaHttpsAgent()) }), { marshallOptions: { removeUndefinedValues: true } });
  return { client: new TaskReader(ddb, names.tasksTable), names, ...(options.envFile !== undefined ? { envFile: options.envFile } : {}) };
}
