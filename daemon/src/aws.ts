/**
 * AWS SDK clients, configured only through the SDK's standard settings (AWS_REGION,
 * AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, the default credential chain). A local stack
 * is then nothing but environment variables. One place, so retries and timeouts agree.
 */
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
}

export function createAwsClients(options: AwsClientOptions = {}): AwsClients {
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new Error('no AWS region: set AWS_REGION (fleetd reads it from IMDS on an instance)');
  }
  const base = { region, maxAttempts: options.maxAttempts ?? 4 };
  // A custom endpoint (LocalStack, moto) has no virtual-host DNS for buckets.
  const customS3 = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
  // Each client, and its SDK package, is loaded when first used: a CLI command pays only for
  // the services it calls (`fleet list`: DynamoDB), and nothing is loaded for what a process
  // never touches. `require` (not `import`) so the load is synchronous and lazy, in the esbuild
  // bundles too (a bundled require runs its module when called).
  /* eslint-disable @typescript-eslint/no-require-imports */
  const makers: { [K in Exclude<keyof AwsClients, 'region'>]: () => AwsClients[K] } = {
    sqs: () => new (require('@aws-sdk/client-sqs') as typeof import('@aws-sdk/client-sqs')).SQSClient(base),
    ddb: () => {
      const { DynamoDBClient } = require('@aws-sdk/client-dynamodb') as typeof import('@aws-sdk/client-dynamodb');
      const { DynamoDBDocumentClient: Doc } = require('@aws-sdk/lib-dynamodb') as typeof import('@aws-sdk/lib-dynamodb');
      return Doc.from(new DynamoDBClient(base), { marshallOptions: { removeUndefinedValues: true } });
    },
    s3: () => new (require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3')).S3Client({ ...base, forcePathStyle: customS3 }),
    ec2: () => new (require('@aws-sdk/client-ec2') as typeof import('@aws-sdk/client-ec2')).EC2Client(base),
    autoscaling: () => new (require('@aws-sdk/client-auto-scaling') as typeof import('@aws-sdk/client-auto-scaling')).AutoScalingClient(base),
    secrets: () => new (require('@aws-sdk/client-secrets-manager') as typeof import('@aws-sdk/client-secrets-manager')).SecretsManagerClient(base),
    ssm: () => new (require('@aws-sdk/client-ssm') as typeof import('@aws-sdk/client-ssm')).SSMClient(base),
    sts: () => new (require('@aws-sdk/client-sts') as typeof import('@aws-sdk/client-sts')).STSClient(base),
    ecr: () => new (require('@aws-sdk/client-ecr') as typeof import('@aws-sdk/client-ecr')).ECRClient(base),
    cloudwatch: () => new (require('@aws-sdk/client-cloudwatch') as typeof import('@aws-sdk/client-cloudwatch')).CloudWatchClient(base),
    kms: () => new (require('@aws-sdk/client-kms') as typeof import('@aws-sdk/client-kms')).KMSClient(base),
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
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
