/**
 * What a task run (task-run.ts) is given and why it stops: its dependencies and stop reasons.
 * Moved out of task-run.ts unchanged.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { AbcaHeartbeatMirror } from './abca-mirror';
import type { FleetdConfig } from './config';
import type { LeaseFiles } from './lease-guard';
import type { LogShipper } from './log-shipper';
import type { Logger } from './log';
import type { RetryPolicy } from './retry';
import type { ContainerRunner } from './runner';
import type { SpecSealer } from './seal';
import type { Lease, TaskStore } from './store';

export type StopReason = 'cancel' | 'timeout' | 'release' | 'lease-lost';

export interface TaskRunDeps {
  readonly store: TaskStore;
  readonly runner: ContainerRunner;
  readonly sqs: SQSClient;
  readonly s3: S3Client;
  readonly secrets: SecretsManagerClient;
  readonly config: FleetdConfig;
  readonly log: Logger;
  /** Extra env (e.g. the per-task credentials endpoint) added by the daemon. */
  readonly extraEnv?: (lease: Lease) => Promise<string[]>;
  readonly onTaskEnd?: (lease: Lease) => void;
  /** The attempt's container runs (started, or adopted after a restart). */
  readonly onContainerStarted?: (lease: Lease) => void;
  /** Local copies of each renewed lease, for the lease guard (lease-guard.ts). */
  readonly leaseFiles?: LeaseFiles;
  /** Told when the Docker engine stopped answering, so the daemon stops claiming until it is back. */
  readonly onEngineTrouble?: (problem: string) => void;
  /** Mirrors each heartbeat into ABCA's TaskTable (config `abcaTaskTable`; abca-mirror.ts). */
  readonly abcaMirror?: AbcaHeartbeatMirror;
  /** Verifies each record's seal before anything runs (config `sealKeyId`); absent: seals are not checked. */
  readonly sealer?: SpecSealer;
  /** Ships each attempt's output to the fleet's log group (config `logGroup`); absent: the local file only. */
  readonly shipper?: LogShipper;
  /** How the terminal write and the release retry. @default RETRY_POLICIES.taskStep */
  readonly writeRetry?: RetryPolicy;
}
