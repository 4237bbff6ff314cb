/**
 * Where a task's output leaves the instance (docs/logs.md): one CloudWatch Logs stream per
 * attempt in the fleet's task log group, and the files the agent left under /fleet/output in
 * the payload bucket under `artifacts/<task_id>/<attempt>/`. fleetd writes both; the CLI, the
 * client library, the ABCA adapter and infra/ (IAM scopes, lifecycle rule) read these names.
 */
import * as z from 'zod';

/** Key prefix of every artifact in the payload bucket (infra/ scopes PutObject and the lifecycle rule to it). */
export const ARTIFACTS_KEY_PREFIX = 'artifacts/';

/** `artifacts/<task_id>/<attempt>/`: where one attempt's artifacts are. */
export function artifactsPrefix(taskId: string, attempt: number): string {
  return `${ARTIFACTS_KEY_PREFIX}${taskId}/${attempt}/`;
}

/** The CloudWatch Logs stream of one attempt's output, in the fleet's task log group. */
export function taskLogStreamName(taskId: string, attempt: number): string {
  return `${taskId}/${attempt}`;
}

/** The task log group's default name for a fleet: `<prefix>/task-logs` (infra/logs.ts, the local stack). */
export function defaultTaskLogGroupName(prefix: string): string {
  return `${prefix}/task-logs`;
}

/**
 * Caps on what fleetd uploads from /fleet/output after the container exits (config
 * `artifacts` overrides each). Files beyond a cap are skipped and the summary says `truncated`.
 */
export const ARTIFACT_DEFAULTS = {
  /** Files uploaded per attempt. */
  maxFiles: 100,
  /** Largest file uploaded (bytes); a larger one is skipped. 100 MiB. */
  maxFileBytes: 100 * 1024 * 1024,
  /** Bytes uploaded per attempt in all. 1 GiB. */
  maxTotalBytes: 1024 * 1024 * 1024,
} as const;

/** The record's summary of an attempt's uploaded artifacts (written with the terminal status). */
export const ArtifactsSummarySchema = z.object({
  /** Key prefix in the payload bucket: `artifacts/<task_id>/<attempt>/`. */
  prefix: z.string(),
  /** Files uploaded. */
  count: z.number().int().nonnegative(),
  /** Bytes uploaded. */
  bytes: z.number().int().nonnegative(),
  /** True when a cap, a symlink or a non-regular file left something out. */
  truncated: z.boolean(),
});
export type ArtifactsSummary = z.output<typeof ArtifactsSummarySchema>;
