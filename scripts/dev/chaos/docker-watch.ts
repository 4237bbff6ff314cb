/**
 * Container lifetimes per task, from the Docker events stream (start / die of containers
 * labelled agent-fleet.task-id), and the check that matters most: no two containers of one
 * task alive at the same time. The stream is re-opened after a dockerd restart; containers
 * still open when the engine went away are closed at that moment (without live-restore,
 * dockerd kills every container when it stops).
 */
import type Docker from 'dockerode';
import { CONTAINER_LABELS } from '../../../daemon/src/contract';

export interface Lifetime {
  readonly containerId: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly instanceId: string;
  readonly start: number;
  end?: number;
}

export interface Overlap {
  readonly taskId: string;
  readonly a: Lifetime;
  readonly b: Lifetime;
  readonly overlapMs: number;
}

interface DockerEvent {
  Action?: string;
  status?: string;
  id?: string;
  timeNano?: number;
  time?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

/** Pairs of lifetimes of the same task that were alive at the same time (end open = still alive at `now`). */
export function overlaps(lifetimes: readonly Lifetime[], now = Date.now()): Overlap[] {
  const byTask = new Map<string, Lifetime[]>();
  for (const l of lifetimes) byTask.set(l.taskId, [...(byTask.get(l.taskId) ?? []), l]);
  const found: Overlap[] = [];
  for (const [taskId, list] of byTask) {
    const sorted = [...list].sort((x, y) => x.start - y.start);
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length; j++) {
        const a = sorted[i];
        const b = sorted[j];
        const overlapMs = Math.min(a.end ?? now, b.end ?? now) - b.start;
        if (overlapMs > 0) found.push({ taskId, a, b, overlapMs });
      }
    }
  }
  return found;
}

export class ContainerWatch {
  readonly lifetimes = new Map<string, Lifetime>();
  private stream?: NodeJS.ReadableStream;
  private stopped = false;
  private lastEventSec = Math.floor(Date.now() / 1000);

  constructor(
    private readonly docker: () => Docker,
    /** Only containers of these instances (this run's fleet) are tracked. */
    private readonly instanceIds: ReadonlySet<string>,
  ) {}

  async start(): Promise<void> {
    await this.open(Math.floor(Date.now() / 1000) - 1);
  }

  /** The engine is going away: every open lifetime ends now; re-open once it is back. */
  engineStopped(at = Date.now()): void {
    for (const l of this.lifetimes.values()) l.end ??= at;
    this.stream?.removeAllListeners();
    (this.stream as unknown as { destroy?: () => void })?.destroy?.();
    this.stream = undefined;
  }

  async engineBack(): Promise<void> {
    await this.open(this.lastEventSec);
  }

  stop(): void {
    this.stopped = true;
    (this.stream as unknown as { destroy?: () => void })?.destroy?.();
  }

  all(): Lifetime[] {
    return [...this.lifetimes.values()];
  }

  private async open(since: number): Promise<void> {
    const stream = await this.docker().getEvents({
      since,
      filters: JSON.stringify({ type: ['container'], event: ['start', 'die'], label: [CONTAINER_LABELS.taskId] }) as unknown as Record<string, string[]>,
    });
    this.stream = stream;
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl).trim();
        partial = partial.slice(nl + 1);
        if (line) this.onEvent(JSON.parse(line) as DockerEvent);
      }
    });
    stream.on('error', () => undefined);
    stream.on('end', () => {
      // Unexpected end (engine restarting without our notice): re-open when it answers again.
      if (!this.stopped && this.stream === stream) setTimeout(() => void this.open(this.lastEventSec).catch(() => undefined), 1000);
    });
  }

  private onEvent(e: DockerEvent): void {
    const labels = e.Actor?.Attributes ?? {};
    const id = e.Actor?.ID ?? e.id;
    const taskId = labels[CONTAINER_LABELS.taskId];
    const instanceId = labels[CONTAINER_LABELS.instanceId];
    if (!id || !taskId || !this.instanceIds.has(instanceId)) return;
    const at = e.timeNano ? Math.floor(e.timeNano / 1e6) : (e.time ?? 0) * 1000;
    this.lastEventSec = Math.max(this.lastEventSec, Math.floor(at / 1000));
    const action = e.Action ?? e.status;
    if (action === 'start') {
      // A restarted container (same id) starts a new lifetime under a derived key.
      const key = this.lifetimes.has(id) && this.lifetimes.get(id)!.end !== undefined ? `${id}@${at}` : id;
      if (!this.lifetimes.has(key)) this.lifetimes.set(key, { containerId: id, taskId, attempt: Number(labels[CONTAINER_LABELS.attempt]), instanceId, start: at });
    } else if (action === 'die') {
      const open = [...this.lifetimes.values()].filter((l) => l.containerId === id && l.end === undefined);
      for (const l of open) l.end = at;
    }
  }
}
