/** What `fleetd status` shows (contract/control.ts `StatusResponseSchema`), from fleetd's parts. */
import type { FleetdConfig } from './config';
import { InstanceStatus, type FleetdStatus } from './contract';
import type { CredentialsServer } from './credentials';
import { drainOf, isReceiving, notClaimingReason, type FleetdStateHolder } from './fleetd-state';
import type { InstanceIdentity } from './imds';
import type { InstanceState } from './instance';
import type { InterruptionWatcher } from './lifecycle';
import type { Pruner } from './prune';
import type { ReceiveGateChecks } from './receive-gates';
import type { ReceiveActivity } from './receiver';
import type { TaskRun } from './task-run';

export interface FleetdParts {
  readonly config: FleetdConfig;
  readonly state: FleetdStateHolder;
  readonly identity?: InstanceIdentity;
  readonly instance?: InstanceState;
  readonly runs: ReadonlyMap<string, TaskRun>;
  readonly activity: ReceiveActivity;
  readonly gates: ReceiveGateChecks;
  readonly credentials?: CredentialsServer;
  readonly pruner?: Pruner;
  readonly watcher?: InterruptionWatcher;
  readonly idleState: string;
}

export function fleetdStatus(parts: FleetdParts): FleetdStatus {

  const { config } = parts;
  const s = parts.state.current;
  const drain = drainOf(s);
  const idleFor = parts.runs.size || parts.activity.handling ? 0 : Math.round((Date.now() - parts.activity.lastBusyAt) / 1000);
  const credentials = parts.credentials;
  const lastPrune = parts.pruner?.last;
  // A task whose container exited no longer holds its slot (receiver.ts `freeSlots`).
  const holding = [...parts.runs.values()].filter((r) => r.phase !== 'finishing').length;
  return {
    instance_id: parts.identity?.instanceId ?? null,
    state: parts.instance?.status ?? InstanceStatus.BOOTING,
    fleetd_state: s.kind,
    receiving: isReceiving(s),
    not_claiming: notClaimingReason(s, parts.gates, { running: holding, total: config.slots }),
    draining: Boolean(drain),
    drain: drain ? { reason: drain.reason, since: new Date(drain.since).toISOString(), releasing: drain.releasing ?? null } : null,
    interruption: parts.state.interruption ?? null,
    slots: config.slots,
    free_slots: Math.max(0, config.slots - holding),
    idle: { idle_for_s: idleFor, terminate_after_s: config.asgName ? config.timings.idleBeforeTerminateSeconds : null, state: parts.idleState },
    disk_problem: parts.gates.disk ?? null,
    engine_problem: parts.gates.engine ?? null,
    credentials: credentials ? { endpoint: credentials.endpoint, active_tasks: credentials.activeTasks } : null,
    last_prune: lastPrune ? { ...lastPrune, at: new Date(lastPrune.at).toISOString() } : null,
    imds_watch: parts.watcher?.status ?? null,
    tasks: [...parts.runs.values()].map((r) => ({ task_id: r.taskId, attempt: r.lease.attempt, phase: r.phase, stopping: r.stopping ?? null, heartbeat_age_s: Math.round(r.heartbeatAgeMs / 1000) })),
  };
}
