/**
 * What every phase shares: the bench context, one isolated fleet with its own daemon, the
 * trivial task spec, and one task followed from enqueue to "container gone" with every
 * timestamp the system already records (record fields, engine events, fleetd log lines).
 */
import type Docker from 'dockerode';
import type { TaskSpecInput } from '../../../daemon/src/contract';
import type { FleetResources } from '../local/provision';
import { FleetClient } from '../../lib/client';
import type { EngineAction, EngineEvents, RawEngine } from './engine';
import type { BenchDaemon } from './fleetd-process';

export interface BenchContext {
  readonly docker: Docker;
  readonly events: EngineEvents;
  readonly raw: RawEngine;
  readonly demoImage: string;
  readonly say: (line: string) => void;
}

export interface BenchFleet {
  readonly resources: FleetResources;
  readonly client: FleetClient;
  readonly daemon: BenchDaemon;
}

/** A container that does nothing: the control plane is all there is to measure. */
export function trivialSpec(image: string, command: string[] = ['true']): TaskSpecInput {
  return { image, command, memory_mb: 256, cpus: 1, timeout_s: 600 };
}

export interface TaskTimeline {
  readonly taskId: string;
  readonly status: string;
  /** Record fields (epoch ms, fleetd's and the client's clocks: the same host). */
  readonly createdAt: number;
  readonly messageSentAt?: number;
  readonly claimedAt?: number;
  /** RUNNING written (fleetd's `now` just before the first heartbeat write). */
  readonly runningAt?: number;
  readonly finishedAt?: number;
  /** dockerd's own event times. */
  readonly engine: Partial<Record<EngineAction, number>>;
}

export async function submit(fleet: BenchFleet, spec: TaskSpecInput): Promise<{ taskId: string; createdAt: number }> {
  const res = await fleet.client.submitTask(spec);
  return { taskId: res.taskId, createdAt: res.record.created_at };
}

/** Waits until the task's container is gone, then reads the terminal record. */
export async function followToEnd(ctx: BenchContext, fleet: BenchFleet, taskId: string, timeoutMs = 120_000): Promise<TaskTimeline> {
  await ctx.events.waitFor(taskId, 'destroy', timeoutMs);
  const r = await fleet.client.waitForTerminal(taskId, { timeoutMs: 10_000, intervalMs: 100 });
  return {
    taskId,
    status: r.status,
    createdAt: r.created_at,
    messageSentAt: r.message_sent_at,
    claimedAt: r.claimed_at,
    runningAt: r.started_at,
    finishedAt: r.finished_at,
    engine: ctx.events.times(taskId),
  };
}

export async function runOneTask(ctx: BenchContext, fleet: BenchFleet, spec: TaskSpecInput): Promise<TaskTimeline> {
  const { taskId } = await submit(fleet, spec);
  return followToEnd(ctx, fleet, taskId);
}

/**
 * Cancel through the client library's cancelTask (a conditional write CLAIMED/RUNNING →
 * CANCEL_REQUESTED plus its event) with no cancel document configured, so no SSM push is sent:
 * fleetd sees the cancel on its next task heartbeat (the pull path). Returns the request time
 * (epoch ms, taken before the call).
 */
export async function cancelViaHeartbeat(client: FleetClient, taskId: string): Promise<number> {
  const pullOnly = new FleetClient(client.clients, { ...client.names, cancelDocument: undefined });
  const now = Date.now();
  const res = await pullOnly.cancelTask(taskId, { by: 'bench' });
  if (res.outcome !== 'cancel-requested' || res.delivery.via !== 'heartbeat') throw new Error(`cancel of ${taskId}: expected a recorded cancel left to the heartbeat, got ${res.outcome}: ${res.message}`);
  return now;
}
