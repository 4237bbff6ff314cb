/** fleetd's public shapes: what it is built from, what it emits, how it is stopped. */
import type Docker from 'dockerode';
import type { AwsClients } from './aws';
import type { FleetdConfig } from './config';
import type { ImdsClient, InstanceIdentity } from './imds';
import type { InstanceTags } from './instance-tags';
import type { StartupTimer } from './startup-timing';
import type { Interruption, SelfTermination } from './lifecycle';
import type { Logger } from './log';
import type { TaskRunResult } from './task-run';

export interface FleetdDeps {
  readonly config: FleetdConfig;
  readonly clients: AwsClients;
  readonly docker: Docker;
  readonly imds: ImdsClient;
  readonly log: Logger;
  /** The instance's EC2 tag calls. @default in this process, on `clients.ec2` (main.ts gives fleetd the helper process, instance-tags.ts) */
  readonly tags?: InstanceTags;
  /** Start-up steps so far (main.ts: from the process's start); Fleetd marks its own. @default from the Fleetd's construction */
  readonly startup?: StartupTimer;
}

export class BootError extends Error {
  override readonly name = 'BootError';
}

export interface FleetdEvents {
  ready: [identity: InstanceIdentity];
  /** Prepared in the warm pool (target lifecycle state `Warmed:*`); claims nothing until InService. */
  warm: [targetState: string];
  'task-started': [taskId: string, attempt: number];
  'task-ended': [result: TaskRunResult];
  'message-rejected': [reason: string];
  interrupted: [interruption: Interruption];
  'idle-check': [outcome: SelfTermination | { terminated: false; reason: string }];
  /** Nothing left to do: drained, the lifecycle action completed, servers closed. */
  stopped: [];
}

export interface StopOptions {
  /** Release running tasks at once instead of giving them the drain budget (spot notice). */
  readonly abort?: boolean;
  readonly reason?: string;
  /** @default config.drainBudgetSeconds */
  readonly budgetSeconds?: number;
}
