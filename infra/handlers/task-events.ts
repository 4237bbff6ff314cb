/**
 * The task-events Lambda: a DynamoDB event source on the tasks table's stream
 * (NEW_AND_OLD_IMAGES, ParallelizationFactor 1, ReportBatchItemFailures). Every transition
 * becomes an EventBridge "Agent Fleet Task State Change" event, and tasks submitted with a Step
 * Functions task token get their callbacks. The logic is scripts/lib/task-events.ts, the same
 * code the local stack's runner calls.
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SFNClient } from '@aws-sdk/client-sfn';
import { TaskEventPublisher, taskEventsConfigFromEnv, type StreamRecordLike } from '../../scripts/lib/task-events';

/** The part of Lambda's DynamoDB stream event the publisher reads. */
export interface DynamoDbStreamEvent {
  readonly Records: readonly StreamRecordLike[];
}

export interface StreamBatchResponse {
  readonly batchItemFailures: { itemIdentifier: string }[];
}

let publisher: TaskEventPublisher | undefined;

export async function handler(event: DynamoDbStreamEvent): Promise<StreamBatchResponse> {
  publisher ??= new TaskEventPublisher({ eventbridge: new EventBridgeClient({ maxAttempts: 4 }), sfn: new SFNClient({ maxAttempts: 4 }) }, taskEventsConfigFromEnv(process.env));
  const result = await publisher.processBatch(event.Records);
  console.log(JSON.stringify({ level: result.batchItemFailures.length > 0 ? 'error' : 'info', event: 'task-events.batch', records: event.Records.length, ...result }));
  return { batchItemFailures: result.batchItemFailures };
}
