/**
 * The one writer of the instances table: fleetd's row about its own instance (status, running
 * tasks, heartbeat, boot failure), rewritten whole on every change and every instance
 * heartbeat, so a row stops being rewritten only when its instance is gone, and then expires.
 */
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { INSTANCE_ROW_RETENTION_DAYS, retentionExpiresAt, type InstanceRecord } from '../contract';
import { StoreError } from './dynamo';

export class InstanceStore {
  constructor(private readonly options: { readonly ddb: DynamoDBDocumentClient; readonly instancesTable: string }) {}

  /** Writes the whole row; `expires_at` follows the TTL rule from `row.updated_at`. */
  async put(row: Omit<InstanceRecord, 'expires_at'>): Promise<void> {
    try {
      await this.options.ddb.send(new PutCommand({
        TableName: this.options.instancesTable,
        Item: { ...row, expires_at: retentionExpiresAt(row.updated_at, INSTANCE_ROW_RETENTION_DAYS) },
      }));
    } catch (err) {
      throw new StoreError(`writing the row of instance ${row.instance_id}`, { cause: err });
    }
  }
}
