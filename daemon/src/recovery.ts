/**
 * Recovery: what fleetd does with containers it finds rather than starts, all through the one
 * sweep (containers.ts). docs/lifecycle.md "Boot" (steps 3 and 4) and "Docker engine outages".
 * - After a restart: a container whose lease we still hold is re-adopted (its credentials served
 *   again, supervised to the end); any other is removed. No orphan keeps running.
 * - After an engine outage: a container no task run supervises is removed (its run was released
 *   while the engine was down, so it could not remove it).
 * - After a failed boot: every container of this instance is removed (nothing can heartbeat it).
 */
import type Docker from 'dockerode';
import { TaskStatus, type TaskRecord } from './contract';
import { containerTask, sweepContainers } from './containers';
import type { CredentialsServer } from './credentials';
import type { Lease, TaskStore } from './store';
import type { Logger } from './log';
import { retry, type RetryOptions } from './retry';
import type { ContainerRunner } from './runner';
import type { TaskRun, TaskRunResult } from './task-run';

export interface RecoveryDeps {
  readonly docker: Docker;
  readonly instanceId: string;
  readonly log: Logger;
}

export interface AdoptionDeps extends RecoveryDeps {
  readonly store: TaskStore;
  readonly runner: ContainerRunner;
  readonly credentials?: CredentialsServer;
  /** Retries for reading a task record (the boot's policy). */
  readonly retry: Pick<RetryOptions, 'policy' | 'onRetry'>;
  readonly newRun: (lease: Lease, record: TaskRecord, receiptHandle: string | undefined) => TaskRun;
  readonly taskEnded: (result: TaskRunResult) => void;
  readonly taskError: (msg: string, extra: Record<string, unknown>) => void;
}

/**
 * A boot that failed cannot heartbeat the containers an earlier fleetd left on this instance:
 * their leases expire and another instance takes the tasks over while they still run (the
 * chaos suite saw exactly that overlap, docs/reliability.md). So they are removed before fleetd
 * exits; a crash-looping fleetd never leaves a task running twice. Best effort: when Docker
 * does not answer, there is nothing to stop.
 */
export async function removeAfterFailedBoot(d: RecoveryDeps, problem: string): Promise<void> {
  await sweepContainers({
    docker: d.docker,
    instanceId: d.instanceId,
    log: d.log,
    message: 'boot failed: removing a container no fleetd can supervise',
    extra: { problem },
    onListError: 'none',
    unsupervised: () => 'the boot failed: nothing will heartbeat its lease',
  });
}

/**
 * After a restart: containers this instance started are re-adopted when we still hold their
 * lease (the task goes on), and removed otherwise. The supervisions of the re-adopted ones are
 * pushed to `adopted` as they start (they end with their task; a drain waits for them).
 */
export async function adoptOrRemoveContainers(d: AdoptionDeps, adopted: Promise<unknown>[]): Promise<void> {
  await sweepContainers({
    docker: d.docker,
    instanceId: d.instanceId,
    log: d.log,
    message: 'removing a container from an attempt we no longer own',
    unsupervised: async (info) => {
      const { taskId, attempt } = containerTask(info);
      // Retried through an AWS blip: a boot that gave up here would leave the container
      // unsupervised until systemd's next restart.
      const { record } = taskId ? await retry('recovering a container: reading its task', () => d.store.get(taskId), d.retry) : {};
      const ours =
        taskId &&
        record &&
        record.instance_id === d.instanceId &&
        record.attempt === attempt &&
        [TaskStatus.RUNNING, TaskStatus.CANCEL_REQUESTED].includes(record.status as 'RUNNING') &&
        (record.lease_expires_at ?? 0) > Date.now();
      if (!ours) {
        return `the task record is ${record ? `${record.status}, attempt ${record.attempt} on ${record.instance_id ?? 'no instance'}` : 'missing'}`;
      }
      adopted.push((await adopt(d, info, taskId, attempt, record)).supervised);
      return undefined;
    },
    afterRemove: (info) => {
      const { taskId } = containerTask(info);
      if (taskId) d.runner.removeFiles(taskId);
    },
  });
}

/** Serves its credentials again and starts supervising; resolves once the run is registered. */
async function adopt(d: AdoptionDeps, info: Docker.ContainerInfo, taskId: string, attempt: number, record: TaskRecord): Promise<{ supervised: Promise<unknown> }> {
  d.log.info('re-adopting a container whose lease we still hold', { task_id: taskId, attempt, container_id: info.Id, state: info.State });
  const container = d.docker.getContainer(info.Id);
  if (d.credentials) {
    const env = await container.inspect().then((i) => i.Config?.Env ?? [], () => []);
    const served = await d.credentials.adopt(taskId, attempt, env, repoOf(record)).catch((err: Error) => {
      d.log.warn('credentials of a re-adopted container could not be served again', { task_id: taskId, error: err });
      return false;
    });
    if (!served) d.log.warn('re-adopted container has no credentials endpoint of this server', { task_id: taskId });
  }
  const run = d.newRun({ taskId, instanceId: d.instanceId, attempt }, record, undefined);
  const supervised = run.adopt(container).then(
    (r: TaskRunResult) => d.taskEnded(r),
    (err: Error) => d.taskError('supervising a re-adopted container failed', { task_id: taskId, error: err }),
  );
  return { supervised };
}

/**
 * After an engine outage: a container of this instance that no task run supervises must not
 * keep running while another attempt of its task runs elsewhere. With live-restore such a
 * container survives the engine's restart; without it the engine has already stopped it, and
 * this only removes it.
 */
export async function sweepUnsupervised(d: RecoveryDeps, runs: ReadonlyMap<string, TaskRun>): Promise<void> {
  const supervised = new Set([...runs.values()].map((r) => r.containerId).filter((id): id is string => Boolean(id)));
  await sweepContainers({
    docker: d.docker,
    instanceId: d.instanceId,
    log: d.log,
    message: 'removing a container no task run supervises (left by an engine outage)',
    onListError: 'none',
    unsupervised: (info) => {
      if (supervised.has(info.Id)) return undefined;
      // A run still preparing has no container id yet; its container's labels carry the task.
      const { taskId } = containerTask(info);
      if (taskId && runs.has(taskId) && !runs.get(taskId)!.containerId) return undefined;
      return 'no task run supervises it';
    },
  });
}

/** The spec's repo (an STS session tag), when the record carries one. */
export function repoOf(record: TaskRecord): string | undefined {
  return typeof record.spec.repo === 'string' ? record.spec.repo : undefined;
}
