/**
 * fleetd's config file (/etc/fleetd/config.json), written by the launch template's user data
 * (infra/) or by the local stack. Environment variables (FLEET_ENV) override single fields.
 * Unknown keys are rejected so a typo is an error at boot, not a silent default.
 */
import { z } from 'zod';
import { DEFAULT_TAG_PREFIX, TAG_PREFIX_PATTERN } from './tags';
import { parseWith, type Parsed } from './validation';

export const FleetdConfigFileSchema = z.strictObject({
  fleetName: z.string().min(1).max(64).optional(),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { error: 'expected an AWS region like "us-east-1"' }).optional(),
  queueUrl: z.url({ error: 'expected the task queue URL' }),
  dlqUrl: z.url({ error: 'expected the dead-letter queue URL' }),
  tasksTable: z.string().min(3).max(255),
  eventsTable: z.string().min(3).max(255),
  instancesTable: z.string().min(3).max(255),
  payloadBucket: z.string().min(3).max(63),
  cancelDocument: z.string().min(3).max(128).optional(),
  asgName: z.string().min(1).max(255).optional(),
  tagPrefix: z.string().regex(TAG_PREFIX_PATTERN).default(DEFAULT_TAG_PREFIX),
  /** Concurrent tasks on this instance. */
  slots: z.int().min(1).max(64).default(1),
  /**
   * Registries images may come from (host[:port], or `local` for images already on the engine
   * with no registry part). Empty means: only images already present locally.
   */
  allowedRegistries: z.array(z.string().min(1).max(255)).default([]),
  /** Secrets Manager ARN prefix a task may read secrets under; empty forbids all secrets. */
  secretArnPrefix: z.string().startsWith('arn:', { error: 'expected an ARN prefix starting with "arn:"' }).optional(),
  /** Role fleetd assumes per task to serve the container's credentials (none: no credentials). */
  taskRoleArn: z.string().startsWith('arn:', { error: 'expected a role ARN' }).optional(),
  /** Per-task files (payload, output) and per-task logs. @default /var/lib/fleetd */
  workDir: z.string().startsWith('/', { error: 'expected an absolute path' }).optional(),
  /** Root-only control socket. @default /run/fleetd/fleetd.sock */
  socketPath: z.string().startsWith('/', { error: 'expected an absolute path' }).optional(),
  /** Overrides of the timing defaults (DEFAULT_TIMINGS), checked together by validateTimings. */
  timings: z
    .strictObject({
      longPollSeconds: z.number().optional(),
      heartbeatSeconds: z.number().optional(),
      leaseSeconds: z.number().optional(),
      cancelGraceSeconds: z.number().optional(),
      maxAttempts: z.int().optional(),
      idleBeforeTerminateSeconds: z.number().optional(),
      defaultTaskTimeoutSeconds: z.number().optional(),
      maxTaskTimeoutSeconds: z.number().optional(),
      scalerTickSeconds: z.number().optional(),
    })
    .default({}),
  /** On SIGTERM / lifecycle termination: how long running tasks may finish before release. @default 600 */
  drainBudgetSeconds: z.number().min(0).max(7200).default(600),
  /** Claiming stops below this much free disk in workDir and Docker's data root. @default 5 GiB */
  minFreeDiskBytes: z.int().min(0).default(5 * 1024 ** 3),
  /** Claiming stops below this many free inodes. @default 250000 */
  minFreeInodes: z.int().min(0).default(250_000),
  /** Mirror heartbeats into an ABCA TaskTable (agent_heartbeat_at, only while status = RUNNING). */
  abcaTaskTable: z.string().min(3).max(255).optional(),
});
export type FleetdConfigFile = z.output<typeof FleetdConfigFileSchema>;
export type FleetdConfigFileInput = z.input<typeof FleetdConfigFileSchema>;

export function parseFleetdConfigFile(input: unknown): Parsed<FleetdConfigFile> {
  return parseWith(FleetdConfigFileSchema, input, 'config');
}
