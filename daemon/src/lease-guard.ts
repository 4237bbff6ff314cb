/**
 * The lease guard: no container outlives the lease its fleetd last renewed, even when fleetd
 * itself is dead or frozen.
 *
 * fleetd stops a container when it can no longer renew the lease (task-run.ts), but only while
 * it runs. When fleetd crashes and stays down (a crash loop that never reaches the boot path,
 * a frozen process, systemd giving up), its container keeps running; the lease expires; another
 * instance takes the task over: the task runs twice. So fleetd writes each renewed lease to a
 * local file before it starts the container and at every heartbeat, and `fleetd guard` (a
 * systemd timer every 10 s, separate from fleetd, needing neither AWS nor the network) kills
 * any running container of this instance whose local lease is missing, belongs to another
 * attempt, or ends within the margin (a quarter of the lease: 30 s of the default 120 s).
 * Zero overlap as long as the guard's interval plus a kill is shorter than the margin.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Docker from 'dockerode';
import { sweepContainers } from './containers';
import { CONTAINER_LABELS } from './contract';

/** What fleetd last proved in DynamoDB for one task (a conservative lease end: earlier, never later). */
export interface LocalLease {
  readonly task_id: string;
  readonly attempt: number;
  readonly lease_expires_at: number;
}

export interface GuardAction {
  readonly taskId: string;
  readonly containerId: string;
  readonly why: string;
}

/** The margin before the lease's end at which the guard acts. */
export function guardMarginMs(leaseSeconds: number): number {
  return (leaseSeconds * 1000) / 4;
}

/** Files under `<workDir>/leases`: one per running task, plus the instance id of this fleetd. */
export class LeaseFiles {
  readonly dir: string;

  constructor(workDir: string) {
    this.dir = path.join(workDir, 'leases');
  }

  private file(taskId: string): string {
    return path.join(this.dir, `${taskId}.json`);
  }

  /** Written at boot: the guard acts only on containers labelled with this instance. */
  writeInstanceId(instanceId: string): void {
    this.atomicWrite(path.join(this.dir, 'instance-id'), instanceId);
  }

  readInstanceId(): string | undefined {
    try {
      return fs.readFileSync(path.join(this.dir, 'instance-id'), 'utf8').trim() || undefined;
    } catch {
      return undefined;
    }
  }

  write(lease: LocalLease): void {
    this.atomicWrite(this.file(lease.task_id), JSON.stringify(lease));
  }

  remove(taskId: string): void {
    fs.rmSync(this.file(taskId), { force: true });
  }

  read(taskId: string): LocalLease | undefined {
    try {
      const parsed = JSON.parse(fs.readFileSync(this.file(taskId), 'utf8')) as Partial<LocalLease>;
      if (typeof parsed.attempt !== 'number' || typeof parsed.lease_expires_at !== 'number') return undefined;
      return { task_id: taskId, attempt: parsed.attempt, lease_expires_at: parsed.lease_expires_at };
    } catch {
      return undefined;
    }
  }

  /** Rename is atomic: the guard never reads a half-written lease. */
  private atomicWrite(file: string, text: string): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }
}

/**
 * One pass of the guard: every running container of this instance is checked against its local
 * lease; those past `lease_expires_at − marginMs` (or without a lease of their attempt) are
 * killed and removed. Returns what it did; an empty list when all is well.
 */
export async function guardOnce(args: { docker: Docker; files: LeaseFiles; marginMs: number; now?: number }): Promise<{ instanceId?: string; checked: number; killed: GuardAction[] }> {
  const instanceId = args.files.readInstanceId();
  // No fleetd ever booted here with this work dir: nothing of ours can be running.
  if (!instanceId) return { checked: 0, killed: [] };
  const now = args.now ?? Date.now();
  const pass = await sweepContainers({
    docker: args.docker,
    instanceId,
    status: ['running'],
    onRemoveError: 'throw',
    unsupervised: (info) => {
      const taskId = info.Labels[CONTAINER_LABELS.taskId] ?? '';
      const attempt = Number(info.Labels[CONTAINER_LABELS.attempt]);
      const lease = taskId ? args.files.read(taskId) : undefined;
      if (!lease) return 'no local lease for it';
      if (lease.attempt !== attempt) return `its attempt ${attempt} no longer holds the lease (attempt ${lease.attempt} does)`;
      if (lease.lease_expires_at - args.marginMs <= now) return `its lease ends ${Math.round((lease.lease_expires_at - now) / 1000)} s from now and fleetd has not renewed it`;
      return undefined;
    },
  });
  const killed = pass.removed.map((r) => ({ taskId: r.taskId ?? '', containerId: r.containerId, why: r.why }));
  return { instanceId, checked: pass.checked, killed };
}
