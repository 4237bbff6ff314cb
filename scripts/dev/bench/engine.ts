/**
 * The Docker side of the bench.
 * - EngineEvents: dockerd's own event stream (create / start / die / destroy with nanosecond
 *   timestamps from the engine), keyed by the task-id label fleetd puts on every container.
 *   "Container started" and "container gone" in the results are these engine timestamps.
 * - RawEngine: the floor. The same container fleetd would make (created through fleetd's own
 *   ContainerRunner.create, so image, command, limits, init, binds and labels are identical),
 *   then start, wait and remove, straight through dockerode with no control plane around it.
 */
import * as path from 'node:path';
import type Docker from 'dockerode';
import { CONTAINER_LABELS, CONTAINER_LABEL_MANAGED_BY_VALUE, parseTaskSpec, type TaskSpecInput } from '../../../daemon/src/contract';
import { listManagedContainers } from '../../../daemon/src/containers';
import { Logger } from '../../../daemon/src/log';
import { ContainerRunner } from '../../../daemon/src/runner';
import { forEachLine } from './lines';

export type EngineAction = 'create' | 'start' | 'die' | 'destroy';
const ACTIONS: readonly EngineAction[] = ['create', 'start', 'die', 'destroy'];

interface DockerEvent {
  Type?: string;
  Action?: string;
  timeNano?: number;
  time?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

export class EngineEvents {
  private readonly byTask = new Map<string, Partial<Record<EngineAction, number>>>();
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly stream: NodeJS.ReadableStream & { destroy?: () => void }) {}

  static async start(docker: Docker): Promise<EngineEvents> {
    const stream = (await docker.getEvents({
      filters: { type: ['container'], event: [...ACTIONS], label: [`${CONTAINER_LABELS.managedBy}=${CONTAINER_LABEL_MANAGED_BY_VALUE}`] },
    })) as NodeJS.ReadableStream & { destroy?: () => void };
    const events = new EngineEvents(stream);
    forEachLine(stream, (line) => events.record(JSON.parse(line) as DockerEvent));
    return events;
  }

  private record(e: DockerEvent): void {
    const taskId = e.Actor?.Attributes?.[CONTAINER_LABELS.taskId];
    const action = e.Action as EngineAction;
    if (!taskId || !ACTIONS.includes(action)) return;
    const at = e.timeNano ? e.timeNano / 1e6 : (e.time ?? 0) * 1000;
    const times = this.byTask.get(taskId) ?? {};
    times[action] ??= at;
    this.byTask.set(taskId, times);
    for (const w of this.waiters) w();
  }

  times(taskId: string): Partial<Record<EngineAction, number>> {
    return this.byTask.get(taskId) ?? {};
  }

  /** Engine time (epoch ms, fractional) of the task's first `action`. */
  waitFor(taskId: string, action: EngineAction, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const at = this.times(taskId)[action];
        if (at === undefined) return false;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(at);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no docker "${action}" event for task ${taskId} within ${timeoutMs} ms (seen: ${JSON.stringify(this.times(taskId))})`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }

  close(): void {
    this.stream.removeAllListeners('data');
    this.stream.destroy?.();
  }
}

export interface RawRun {
  readonly id: string;
  readonly startedAt: number;
  /** create + start + wait + remove, client side, ms. */
  readonly totalMs: number;
  readonly createMs: number;
  readonly startMs: number;
  readonly waitMs: number;
  readonly removeMs: number;
}

export class RawEngine {
  private readonly runner: ContainerRunner;

  constructor(
    readonly docker: Docker,
    workDir: string,
    private readonly instanceId: string,
  ) {
    const quiet = new Logger({}, undefined, 'error', () => undefined);
    this.runner = new ContainerRunner({ docker, workDir: path.join(workDir, 'raw'), instanceId, allowedRegistries: ['local'], log: quiet });
  }

  /** One container, the way fleetd would create it, through the engine alone. */
  async runOnce(id: string, specInput: TaskSpecInput): Promise<RawRun> {
    const parsed = parseTaskSpec(specInput);
    if (!parsed.ok) throw new Error(`bench spec: ${parsed.problems.join('; ')}`);
    const files = await this.runner.prepareFiles(id, '{}', parsed.value.disk_mb);
    const env = [`TASK_ID=${id}`, `FLEET_TASK_ID=${id}`, 'FLEET_ATTEMPT=1'];
    const t0 = Date.now();
    const container = await this.runner.create({ taskId: id, attempt: 1, spec: parsed.value, env, files, graceSeconds: 30 });
    const t1 = Date.now();
    await container.start();
    const t2 = Date.now();
    await container.wait();
    const t3 = Date.now();
    await container.remove({ force: true, v: true });
    const t4 = Date.now();
    this.runner.removeFiles(id);
    return { id, startedAt: t0, totalMs: t4 - t0, createMs: t1 - t0, startMs: t2 - t1, waitMs: t3 - t2, removeMs: t4 - t3 };
  }

  /** `total` containers through `concurrency` workers; wall-clock ms from first create to last remove. */
  async batch(prefix: string, total: number, concurrency: number, specInput: TaskSpecInput): Promise<{ wallMs: number; runs: RawRun[] }> {
    let next = 0;
    const runs: RawRun[] = [];
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < total; i = next++) runs.push(await this.runOnce(`${prefix}-${i}`, specInput));
      }),
    );
    return { wallMs: Date.now() - t0, runs };
  }

  /** Removes every container this bench's raw runs may have left (by instance label). */
  async cleanup(): Promise<number> {
    const left = await listManagedContainers(this.docker, this.instanceId);
    await Promise.all(left.map((c) => this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
    return left.length;
  }
}
