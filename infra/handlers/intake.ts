/**
 * The intake Lambda: an SQS event source on the fleet's intake queue (ReportBatchItemFailures).
 * The logic is scripts/lib/intake.ts, the same code the local stack's intake runner calls:
 * validate, create the record through the store, seal, enqueue; a bad message goes to the
 * intake dead-letter queue with its reason. Only AWS trouble makes a batch item failure.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { IntakeProcessor, intakeNamesFromEnv, type IntakeSqsRecord } from '../../scripts/lib/intake';

/** The part of Lambda's SQS event the intake reads. */
export interface SqsEvent {
  readonly Records: readonly IntakeSqsRecord[];
}

export interface SqsBatchResponse {
  readonly batchItemFailures: { itemIdentifier: string }[];
}

let processor: IntakeProcessor | undefined;

export async function handler(event: SqsEvent): Promise<SqsBatchResponse> {
  processor ??= new IntakeProcessor(
    {
      sqs: new SQSClient({ maxAttempts: 4 }),
      ddb: DynamoDBDocumentClient.from(new DynamoDBClient({ maxAttempts: 4 }), { marshallOptions: { removeUndefinedValues: true } }),
      s3: new S3Client({ maxAttempts: 4 }),
      kms: new KMSClient({ maxAttempts: 4 }),
    },
    intakeNamesFromEnv(process.env),
  );
  const { batchItemFailures, outcomes } = await processor.processBatch(event.Records);
  const count = (kind: string) => outcomes.filter((o) => o.kind === kind).length;
  console.log(JSON.stringify({ level: batchItemFailures.length > 0 ? 'error' : 'info', event: 'intake.batch', messages: outcomes.length, submitted: count('submitted'), rejected: count('rejected'), failed: count('failed') }));
  return { batchItemFailures };
}
