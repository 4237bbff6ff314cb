/**
 * Cancel latency through the pull path: the client library's cancelTask records
 * CANCEL_REQUESTED (conditional write) with no SSM push, and fleetd notices on its next task
 * heartbeat (30 s ± 10 % by default), then runs the ladder (SIGTERM; `sleep` exits on it, so
 * the grace never runs out).
 *
 * A cancel lands at a random point of the heartbeat period, so the expected wait is about half
 * a period. The K cancels are spread over one period (stratified: cancel i at
 * phase start + (i + U(0,1)) · period / K); whatever the heartbeats' phase, the K waits then
 * cover the period evenly, and the whole phase takes at most about two periods.
 */
import { DEFAULT_TIMINGS } from '../../../daemon/src/contract';
import { sleep } from '../../../daemon/src/retry';
import { cancelViaHeartbeat, submit, trivialSpec, type BenchContext, type BenchFleet } from './fleet-task';
import { summarize, type Summary } from './stats';

export interface CancelSample {
  readonly taskId: string;
  /** Cancel requested this long after the container started (ms). */
  readonly offsetMs: number;
  readonly requestedAt: number;
  readonly stoppedMs: number;
  readonly goneMs: number;
  readonly recordMs?: number;
  readonly status: string;
}

export interface CancelResult {
  readonly heartbeatSeconds: number;
  readonly cancelGraceSeconds: number;
  readonly samples: CancelSample[];
  /** cancel request → container stopped (engine `die`). */
  readonly toStoppedMs: Summary;
  /** cancel request → container removed (engine `destroy`): "container gone". */
  readonly toGoneMs: Summary;
  /** cancel request → CANCELLED record (finished_at). */
  readonly toRecordMs: Summary;
}

/** Starts K long-sleeping tasks (one per slot) and waits until every container runs. */
export async function startCancelTargets(ctx: BenchContext, fleet: BenchFleet, count: number): Promise<Array<{ taskId: string; startedAt: number }>> {
  const spec = trivialSpec(ctx.demoImage, ['sleep', '600']);
  const ids = await Promise.all(Array.from({ length: count }, () => submit(fleet, spec)));
  return Promise.all(ids.map(async ({ taskId }) => ({ taskId, startedAt: await ctx.events.waitFor(taskId, 'start', 120_000) })));
}

export async function cancelPhase(ctx: BenchContext, fleet: BenchFleet, targets: Array<{ taskId: string; startedAt: number }>): Promise<CancelResult> {
  const periodMs = DEFAULT_TIMINGS.heartbeatSeconds * 1000;
  const k = targets.length;
  const phaseStart = Date.now();
  const samples = await Promise.all(
    targets.map(async ({ taskId, startedAt }, i) => {
      await sleep(Math.max(0, phaseStart + ((i + Math.random()) * periodMs) / k - Date.now()));
      const requestedAt = await cancelViaHeartbeat(fleet.client, taskId);
      const timeout = periodMs * 2 + DEFAULT_TIMINGS.cancelGraceSeconds * 1000 + 30_000;
      const stopped = await ctx.events.waitFor(taskId, 'die', timeout);
      const gone = await ctx.events.waitFor(taskId, 'destroy', timeout);
      const record = await fleet.client.waitForTerminal(taskId, { timeoutMs: 30_000, intervalMs: 200 });
      const sample: CancelSample = {
        taskId,
        offsetMs: Math.round(requestedAt - startedAt),
        requestedAt,
        stoppedMs: stopped - requestedAt,
        goneMs: gone - requestedAt,
        recordMs: record.finished_at !== undefined ? record.finished_at - requestedAt : undefined,
        status: record.status,
      };
      ctx.say(`cancel ${i + 1}/${k}: requested ${(sample.offsetMs / 1000).toFixed(1)} s after start; stopped after ${(sample.stoppedMs / 1000).toFixed(1)} s, gone after ${(sample.goneMs / 1000).toFixed(1)} s (${record.status})`);
      return sample;
    }),
  );
  return {
    heartbeatSeconds: DEFAULT_TIMINGS.heartbeatSeconds,
    cancelGraceSeconds: DEFAULT_TIMINGS.cancelGraceSeconds,
    samples,
    toStoppedMs: summarize(samples.map((s) => s.stoppedMs)),
    toGoneMs: summarize(samples.map((s) => s.goneMs)),
    toRecordMs: summarize(samples.flatMap((s) => (s.recordMs === undefined ? [] : [s.recordMs]))),
  };
}
