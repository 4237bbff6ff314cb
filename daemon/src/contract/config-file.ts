/**
 * fleetd's config file (/etc/fleetd/config.json), written by the launch template's user data
 * (infra/) or by the local stack. Environment variables (FLEET_ENV) override single fields.
 * Unknown keys are rejected so a typo is an error at boot, not a silent default.
 */
import * as z from 'zod';
import { TERMINATION_HOOK_NAME } from './deployment';
import { ARTIFACT_DEFAULTS } from './logs';
import { DEFAULT_TAG_PREFIX, TAG_PREFIX_PATTERN } from './tags';
import { parseWith, type Parsed } from './validation';

/**
 * Where fleetd serves per-task credentials (ECS-compatible container credentials endpoint). The
 * AMI adds this address to `lo` (packer/files/host-isolation.sh); the SDKs accept plain http
 * for AWS_CONTAINER_CREDENTIALS_FULL_URI only on loopback and this link-local address.
 */
export const DEFAULT_CREDENTIALS_HOST = '169.254.170.2';
export const DEFAULT_CREDENTIALS_PORT = 80;

/** STS session tags on every task's credentials (IAM policies read `aws:PrincipalTag/<key>`). */
export const TASK_SESSION_TAG_KEYS = { taskId: 'task-id', repo: 'repo' } as const;

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
  /**
   * The fleet's KMS HMAC key (ARN or alias). When set, fleetd runs only records whose seal
   * verifies with it (contract/seal.ts, docs/security.md); when absent, seals are not checked.
   */
  sealKeyId: z.string().min(1).max(2048).optional(),
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
      instanceHeartbeatSeconds: z.number().optional(),
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
  /**
   * Where the engine cannot bound a task's disk (no xfs project quotas; docs/security.md
   * "Confinement"), 'loop' gives each task's /fleet/output a `disk_mb` file system of its own
   * (a sparse file, mkfs.ext4, a loop mount: root and loop devices, outside the systemd
   * sandbox; ~0.15 s per task). 'off': the output directory is plain, and fleetd says once that
   * it is unbounded. @default 'off'
   */
  outputDisks: z.enum(['loop', 'off']).default('off'),
  /**
   * Per-task credentials endpoint bind address and port (`port: 0` picks a free port; tests).
   * @default { host: '169.254.170.2', port: 80 }
   */
  credentialsEndpoint: z
    .strictObject({
      host: z.ipv4({ error: 'expected an IPv4 address, e.g. 169.254.170.2' }).default(DEFAULT_CREDENTIALS_HOST),
      port: z.int().min(0).max(65535).default(DEFAULT_CREDENTIALS_PORT),
    })
    .prefault({}),
  /** Lifetime asked of STS for a task's credentials (role chaining caps it at 1 h). @default 3600 */
  taskCredentialsSeconds: z.int().min(900).max(43_200).default(3600),
  /** Termination lifecycle hook fleetd heartbeats and completes. @default TERMINATION_HOOK_NAME ('fleetd-drain', as infra/ creates it) */
  lifecycleHookName: z.string().min(1).max(255).default(TERMINATION_HOOK_NAME),
  /**
   * The launch lifecycle hook fleetd completes at every boot and at every change of the target
   * lifecycle state between `Warmed:*` and `InService` (infra/ writes READINESS_HOOK_NAME,
   * 'fleetd-ready', when it creates the hook). Unset: fleetd completes READINESS_HOOK_NAME only
   * when IMDS says `Pending:Wait` or `Warmed:Pending:Wait` (docs/lifecycle.md "Readiness").
   */
  readinessHookName: z.string().min(1).max(255).optional(),
  /**
   * How long readiness may retry a failing prepull before the hook is completed with ABANDON
   * (keep it below the hook's heartbeat timeout, 15 min in infra/). @default 600
   */
  readinessTimeoutSeconds: z.number().min(1).max(7200).default(600),
  /**
   * The fleet's agent images (by tag or digest, subject to allowedRegistries), pulled before the
   * readiness hook is completed and refreshed every `prepullRefreshSeconds` (±10 % jitter), so a
   * task finds the newest digest already on the engine. @default []
   */
  prepullImages: z.array(z.string().min(1).max(512)).max(32).default([]),
  /** Interval of the prepull refresh; 0 turns the refresh off. @default 1800 */
  prepullRefreshSeconds: z.number().min(0).max(7 * 86400).default(1800),
  /** RecordLifecycleActionHeartbeat interval while draining; keep it well below the hook's heartbeat timeout. @default 60 */
  lifecycleHeartbeatSeconds: z.number().min(1).max(3600).default(60),
  /**
   * Scheduled Docker and file prune: stopped fleetd containers no live run owns, dangling
   * images, images fleetd used last more than `afterHours` ago (never-used images, e.g. baked
   * into the AMI, stay), task logs and leftover task files older than that.
   * `intervalSeconds: 0` turns it off. @default { intervalSeconds: 3600, afterHours: 24 }
   */
  prune: z
    .strictObject({
      intervalSeconds: z.number().min(0).max(7 * 86400).default(3600),
      afterHours: z.number().min(0).max(24 * 365).default(24),
    })
    .prefault({}),
  /**
   * The fleet's task log group in CloudWatch Logs: each attempt's output (redacted, as the local
   * log file has it) goes to the stream `<task_id>/<attempt>` (docs/logs.md). Unset: no shipping.
   */
  logGroup: z.string().min(1).max(512).regex(/^[.\-_/#A-Za-z0-9]+$/, { error: 'expected a CloudWatch Logs group name' }).optional(),
  /**
   * Caps on the artifacts uploaded from /fleet/output after the container exits (docs/logs.md).
   * @default ARTIFACT_DEFAULTS: 100 files, 100 MiB per file, 1 GiB in all
   */
  artifacts: z
    .strictObject({
      maxFiles: z.int().min(0).max(10_000).default(ARTIFACT_DEFAULTS.maxFiles),
      maxFileBytes: z.int().min(0).max(5 * 1024 ** 3).default(ARTIFACT_DEFAULTS.maxFileBytes),
      maxTotalBytes: z.int().min(0).max(50 * 1024 ** 3).default(ARTIFACT_DEFAULTS.maxTotalBytes),
    })
    .prefault({}),
  /** Mirror heartbeats into an ABCA TaskTable (agent_heartbeat_at, only while status = RUNNING). */
  abcaTaskTable: z.string().min(3).max(255).optional(),
});
export type FleetdConfigFile = z.output<typeof FleetdConfigFileSchema>;
export type FleetdConfigFileInput = z.input<typeof FleetdConfigFileSchema>;

export function parseFleetdConfigFile(input: unknown): Parsed<FleetdConfigFile> {
  return parseWith(FleetdConfigFileSchema, input, 'config');
}
