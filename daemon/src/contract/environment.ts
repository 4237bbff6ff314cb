/**
 * Environment variable names shared by fleetd's config, the CLI, the local stack and the
 * launch template's user data. AWS endpoints and region use the SDK's own standard variables
 * (AWS_ENDPOINT_URL, AWS_REGION, AWS_EC2_METADATA_SERVICE_ENDPOINT) and Docker uses DOCKER_HOST.
 */
export const FLEET_ENV = {
  fleetName: 'FLEET_NAME',
  queueUrl: 'FLEET_QUEUE_URL',
  dlqUrl: 'FLEET_DLQ_URL',
  tasksTable: 'FLEET_TASKS_TABLE',
  eventsTable: 'FLEET_EVENTS_TABLE',
  instancesTable: 'FLEET_INSTANCES_TABLE',
  payloadBucket: 'FLEET_PAYLOAD_BUCKET',
  cancelDocument: 'FLEET_CANCEL_DOCUMENT',
  asgName: 'FLEET_ASG_NAME',
  tagPrefix: 'FLEET_TAG_PREFIX',
  slots: 'FLEETD_SLOTS',
  allowedRegistries: 'FLEET_ALLOWED_REGISTRIES',
  secretArnPrefix: 'FLEET_SECRET_ARN_PREFIX',
  taskRoleArn: 'FLEET_TASK_ROLE_ARN',
  /** The fleet's KMS HMAC key (ARN or alias) that seals specs at submit and verifies them on the instance. */
  sealKeyId: 'FLEET_SEAL_KEY_ID',
  /** The intake queue: self-contained task messages from any SQS producer (contract/intake.ts). */
  intakeQueueUrl: 'FLEET_INTAKE_QUEUE_URL',
  /** Where the intake puts a message it rejects, with the reason as a message attribute. */
  intakeDlqUrl: 'FLEET_INTAKE_DLQ_URL',
  /** The EventBridge bus task state changes go to (name or ARN). Unset: the account's default bus. */
  eventBusName: 'FLEET_EVENT_BUS_NAME',
  /** Least seconds between two Step Functions heartbeats of one running task (the task-events function). */
  sfnHeartbeatSeconds: 'FLEET_SFN_HEARTBEAT_SECONDS',
  /** The fleet's task log group (CloudWatch Logs): fleetd ships each attempt's output there; `fleet logs` reads it. */
  logGroup: 'FLEET_LOG_GROUP',
  /** ABCA's TaskTable, when the fleet is ABCA's `ec2` compute (the reconciler tells it of the ABCA tasks it ends; fleetd reads `abcaTaskTable` from its config file). */
  abcaTaskTable: 'FLEET_ABCA_TASK_TABLE',
  config: 'FLEETD_CONFIG',
  socket: 'FLEETD_SOCKET',
  workDir: 'FLEETD_WORK_DIR',
} as const;

/** Where fleetd reads its config file by default on an instance. */
export const DEFAULT_CONFIG_PATH = '/etc/fleetd/config.json';
/** Root-only control socket of fleetd on an instance. */
export const DEFAULT_SOCKET_PATH = '/run/fleetd/fleetd.sock';
/** Per-task files and logs on an instance. */
export const DEFAULT_WORK_DIR = '/var/lib/fleetd';

/**
 * The process environment fleetd's systemd unit sets beside the above (packer/files/fleetd.service;
 * packer/check.sh compares), and that the bench and the demo give fleetd too, so what they
 * measure is what runs. glibc returns freed heap to the system above this size instead of
 * keeping it: module loading leaves megabytes of freed parse-time memory (docs/benchmarks.md,
 * "Idle memory").
 */
export const FLEETD_PROCESS_ENV = { MALLOC_TRIM_THRESHOLD_: '131072' } as const;

/**
 * The Node flags fleetd runs with (packer/files/bin/fleetd; packer/check.sh compares), which the
 * bench uses too (docs/benchmarks.md, "Idle memory", measured each):
 * - not `--enable-source-maps`: Node would parse the bundle's map at start and keep it (~2.6 MiB
 *   of idle RSS); main.ts maps stacks through it only when one is formatted (stack-source-map.ts).
 * - `--max-semi-space-size=2` (MiB): V8's young generation grows to 16 MiB semi-spaces under
 *   work and keeps them; capped, RSS after 300 tasks stays within ~5 % of after 30 (was +20 %).
 * - `--expose-gc` and `--compact-on-every-full-gc`: main.ts runs one compacting collection right
 *   after ready, so start-up garbage goes at once instead of when V8's memory reducer gets to it
 *   (8–24 s later; it was the largest idle sample).
 */
export const FLEETD_NODE_FLAGS = ['--max-semi-space-size=2', '--expose-gc', '--compact-on-every-full-gc'] as const;
