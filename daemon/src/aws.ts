/**
 * AWS SDK clients, configured only through the SDK's standard settings (AWS_REGION,
 * AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, the default credential chain). A local stack
 * is then nothing but environment variables. One place, so retries and timeouts agree.
 */
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECRClient } from '@aws-sdk/client-ecr';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

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
  return {
    region,
    sqs: new SQSClient(base),
    ddb: DynamoDBDocumentClient.from(new DynamoDBClient(base), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    s3: new S3Client({ ...base, forcePathStyle: customS3 }),
    ec2: new EC2Client(base),
    autoscaling: new AutoScalingClient(base),
    secrets: new SecretsManagerClient(base),
    ssm: new SSMClient(base),
    sts: new STSClient(base),
    ecr: new ECRClient(base),
    cloudwatch: new CloudWatchClient(base),
    kms: new KMSClient(base),
  };
}

/** The error's AWS name (`ConditionalCheckFailedException`, ...), or undefined. */
export function awsErrorName(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'name' in err ? String((err as { name: unknown }).name) : undefined;
}

export function isConditionalCheckFailed(err: unknown): boolean {
  return awsErrorName(err) === 'ConditionalCheckFailedException';
}
