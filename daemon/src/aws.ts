/**
 * AWS SDK clients, configured only through the SDK's standard settings (AWS_REGION,
 * AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, the default credential chain). A local stack
 * is then nothing but environment variables. One place, so retries and timeouts agree.
 */
import type { Agent as HttpsAgent } from 'node:https';
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ECRClient } from '@aws-sdk/client-ecr';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { STSClient } from '@aws-sdk/client-sts';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { connectionConfig } from './aws-connection';

export { connectionConfig } from './aws-connection';

/**
 * The SDK packages, each required on first use. A module that sends a command takes the
 * command class from here at the call (`const { GetObjectCommand } = sdk.s3()`), never from a
 * top-level `import`: in the esbuild bundle a top-level import runs the whole package at
 * start-up, and each package costs megabytes of heap whether or not it is ever called (issue
 * #18; docs/benchmarks.md "Idle memory"). `import type` is free. A CLI command then pays only
 * for the services it calls, and fleetd at idle only for SQS, DynamoDB and Auto Scaling.
 * `require` (not `import()`) so the load is synchronous, in the bundles too (a bundled require
 * runs its module when called).
 */
/* eslint-disable @typescript-eslint/no-require-imports */
export const sdk = {
  sqs: () => require('@aws-sdk/client-sqs') as typeof import('@aws-sdk/client-sqs'),
  dynamodb: () => require('@aws-sdk/client-dynamodb') as typeof import('@aws-sdk/client-dynamodb'),
  dynamodbDocument: () => require('@aws-sdk/lib-dynamodb') as typeof import('@aws-sdk/lib-dynamodb'),
  s3: () => require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3'),
  ec2: () => require('@aws-sdk/client-ec2') as typeof import('@aws-sdk/client-ec2'),
  autoscaling: () => require('@aws-sdk/client-auto-scaling') as typeof import('@aws-sdk/client-auto-scaling'),
  secrets: () => require('@aws-sdk/client-secrets-manager') as typeof import('@aws-sdk/client-secrets-manager'),
  ssm: () => require('@aws-sdk/client-ssm') as typeof import('@aws-sdk/client-ssm'),
  sts: () => require('@aws-sdk/client-sts') as typeof import('@aws-sdk/client-sts'),
  ecr: () => require('@aws-sdk/client-ecr') as typeof import('@aws-sdk/client-ecr'),
  cloudwatch: () => require('@aws-sdk/client-cloudwatch') as typeof import('@aws-sdk/client-cloudwatch'),
  kms: () => require('@aws-sdk/client-kms') as typeof import('@aws-sdk/client-kms'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

export interface AwsClients {
  readonly region: string;
  readonly sqs: SQSClient;
  readonly ddb: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly ec2: EC2Client;
  readonly autoscaling: AutoScalingClient;
  readonly secrets: SecretsManagerClient;
  readonly ssm: SSMClient;
  readonly sts: STSClient;
  readonly ecr: ECRClient;
  readonly cloudwatch: CloudWatchClient;
  readonly kms: KMSClient;
}

export interface AwsClientOptions {
  readonly region?: string;
  /** SDK-level retry attempts (standard mode, exponential backoff with jitter). @default 4 */
  readonly maxAttempts?: number;
  /** The agent for HTTPS connections (the CLI's: scripts/cli/deferred-ca.ts). @default the SDK's own */
  readonly httpsAgent?: HttpsAgent;
}

export function createAwsClients(options: AwsClientOptions = {}): AwsClients {
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new Error('no AWS region: set AWS_REGION (fleetd reads it from IMDS on an instance)');
  }
  const base = { region, maxAttempts: options.maxAttempts ?? 4, ...connectionConfig(options.httpsAgent) };
  // A custom endpoint (LocalStack, moto) has no virtual-host DNS for buckets.
  const customS3 = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
  // SQS and KMS (calls on every task: receive, delete, the seal's VerifyMac): the SDK resolves
  // each command class's middleware stack once instead of per request (its `cacheMiddleware`;
  // issue #18). Nothing adds middleware to these clients. Not DynamoDB: lib-dynamodb's document
  // client refuses the option.
  const cached = { ...base, cacheMiddleware: true };
  // Each client, and its SDK package, is loaded when first used (`sdk` above).
  const makers: { [K in Exclude<keyof AwsClients, 'region'>]: () => AwsClients[K] } = {
    sqs: () => new (sdk.sqs().SQSClient)(cached),
    ddb: () => sdk.dynamodbDocument().DynamoDBDocumentClient.from(new (sdk.dynamodb().DynamoDBClient)(base), { marshallOptions: { removeUndefinedValues: true } }),
    s3: () => new (sdk.s3().S3Client)({ ...base, forcePathStyle: customS3 }),
    ec2: () => new (sdk.ec2().EC2Client)(base),
    autoscaling: () => new (sdk.autoscaling().AutoScalingClient)(base),
    secrets: () => new (sdk.secrets().SecretsManagerClient)(base),
    ssm: () => new (sdk.ssm().SSMClient)(base),
    sts: () => new (sdk.sts().STSClient)(base),
    ecr: () => new (sdk.ecr().ECRClient)(base),
    cloudwatch: () => new (sdk.cloudwatch().CloudWatchClient)(base),
    kms: () => new (sdk.kms().KMSClient)(cached),
  };
  const clients = { region } as AwsClients;
  for (const [name, make] of Object.entries(makers)) {
    let made: unknown;
    Object.defineProperty(clients, name, { enumerable: true, get: () => (made ??= make()) });
  }
  return clients;
}

/** The error's AWS name (`ConditionalCheckFailedException`, ...), or undefined. */
export function awsErrorName(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'name' in err ? String((err as { name: unknown }).name) : undefined;
}

export function isConditionalCheckFailed(err: unknown): boolean {
  return awsErrorName(err) === 'ConditionalCheckFailedException';
}
