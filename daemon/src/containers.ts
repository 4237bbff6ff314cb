/**
 * The one place that finds this instance's containers and removes those nobody supervises.
 * Every sweep goes through here: the failed-boot removal and the re-adoption after a restart
 * (recovery.ts), the sweep after a Docker engine outage (recovery.ts), the lease guard
 * (lease-guard.ts) and the scheduled prune (prune.ts). Containers are found by the labels
 * fleetd sets (CONTAINER_LABELS in the contract); other programs' containers are never listed.
 * Why each sweep exists: docs/lifecycle.md ("Boot", "Docker engine outages", "The lease guard",
 * "Disk").
 */
import type Docker from 'dockerode';
import { CONTAINER_LABELS, CONTAINER_LABEL_MANAGED_BY_VALUE } from './contract';
import type { Logger } from './log';

/** Docker's container states, as the `status` list filter takes them. */
export type ContainerStatus = 'created' | 'restarting' | 'running' | 'removing' | 'paused' | 'exited' | 'dead';

/** The label filter for the containers fleetd started on `instanceId`. */
export function managedLabelFilter(instanceId: string): string[] {
  return [`${CONTAINER_LABELS.managedBy}=${CONTAINER_LABEL_MANAGED_BY_VALUE}`, `${CONTAINER_LABELS.instanceId}=${instanceId}`];
}

/** Containers fleetd started on this instance (any state unless `status` narrows it). */
export function listManagedContainers(docker: Docker, instanceId: string, status?: readonly ContainerStatus[]): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: managedLabelFilter(instanceId), ...(status ? { status: [...status] } : {}) } });
}

/** The task a container ran, from its labels. */
export function containerTask(info: Docker.ContainerInfo): { taskId?: string; attempt: number } {
  return { taskId: info.Labels[CONTAINER_LABELS.taskId] || undefined, attempt: Number(info.Labels[CONTAINER_LABELS.attempt]) };
}

export interface SweptContainer {
  readonly containerId: string;
  /** The container's name without Docker's leading slash (its id when it has none). */
  readonly name: string;
  readonly taskId?: string;
  readonly attempt: number;
  readonly why: string;
  /** `gone`: the engine no longer knew it (404) when we removed it. */
  readonly outcome: 'removed' | 'gone';
}

export interface SweepOptions {
  readonly docker: Docker;
  readonly instanceId: string;
  /** Only containers in these states (default: any). */
  readonly status?: readonly ContainerStatus[];
  /**
   * Why this container must go, or undefined to keep it (it is supervised). Called one container
   * at a time, in order; it may act on a kept container (re-adoption does).
   */
  readonly unsupervised: (info: Docker.ContainerInfo) => string | undefined | Promise<string | undefined>;
  readonly log?: Logger;
  /** When set, logged at warn once per container removed, with the task, container and `why`. */
  readonly message?: string;
  readonly extra?: Record<string, unknown>;
  /** Kill a running container (default). Prune removes stopped ones only: a 409 then keeps it. */
  readonly force?: boolean;
  /** Also remove the container's anonymous volumes (prune). */
  readonly removeVolumes?: boolean;
  /**
   * A removal the engine refuses (anything but 404): `throw` (the lease guard: its pass fails
   * and says so) or `skip` (logged, the sweep goes on; the default).
   */
  readonly onRemoveError?: 'throw' | 'skip';
  /** Runs after each removal (recovery removes the task's files). */
  readonly afterRemove?: (info: Docker.ContainerInfo) => void;
  /** Listing failed (the engine is down): `throw` (the default) or `none` (nothing to sweep). */
  readonly onListError?: 'throw' | 'none';
}

/** Lists this instance's containers, removes (force) those `unsupervised` names a reason for. */
export async function sweepContainers(o: SweepOptions): Promise<{ checked: number; removed: SweptContainer[] }> {
  let found: Docker.ContainerInfo[];
  try {
    found = await listManagedContainers(o.docker, o.instanceId, o.status);
  } catch (err) {
    if (o.onListError === 'none') return { checked: 0, removed: [] };
    throw err;
  }
  const removed: SweptContainer[] = [];
  for (const info of found) {
    const why = await o.unsupervised(info);
    if (why === undefined) continue;
    const { taskId, attempt } = containerTask(info);
    if (o.message) o.log?.warn(o.message, { task_id: taskId, attempt, container_id: info.Id, state: info.State, why, ...o.extra });
    let outcome: SweptContainer['outcome'] = 'removed';
    try {
      await o.docker.getContainer(info.Id).remove({ force: o.force ?? true, ...(o.removeVolumes ? { v: true } : {}) });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) {
        if (o.onRemoveError === 'throw') throw err;
        o.log?.warn('removing a container failed', { container_id: info.Id, task_id: taskId, error: err });
        continue;
      }
      outcome = 'gone';
    }
    o.afterRemove?.(info);
    removed.push({ containerId: info.Id, name: info.Names?.[0]?.replace(/^\//, '') ?? info.Id, taskId, attempt, why, outcome });
  }
  return { checked: found.length, removed };
}
