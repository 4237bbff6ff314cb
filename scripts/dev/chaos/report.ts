/**
 * The chaos run's figures and its one table. The verdict is strict: lost, run more than once
 * concurrently, bad inputs not rejected with a reason, and daemon crashes must all be 0.
 */
import { EventType, TaskStatus, isTerminal, type TaskEvent, type TaskRecord } from '../../../daemon/src/contract';
import type { PlannedTask } from './behaviours';
import type { DaemonCrash } from './daemons';
import type { Lifetime, Overlap } from './docker-watch';
import type { ProxyStats } from './fault-proxy';
import type { ParserCheck } from './fuzz';
import type { DeadLetterView, Injected } from './run';

export interface ReportInput {
  readonly seed: number;
  readonly runtimeMs: number;
  readonly planned: ReadonlyMap<string, PlannedTask>;
  readonly records: ReadonlyMap<string, TaskRecord>;
  readonly events: ReadonlyMap<string, TaskEvent[]>;
  readonly lastBeat: ReadonlyMap<string, number>;
  readonly lifetimes: readonly Lifetime[];
  readonly doubles: readonly Overlap[];
  readonly parserChecks: readonly ParserCheck[];
  readonly sentBadBodies: readonly string[];
  readonly sqsRefused: number;
  readonly storeRefused: number;
  readonly dlq: readonly DeadLetterView[];
  readonly sideRecords: { badSpec: string[]; invalidRecord: string[]; victims: string[] };
  readonly crashes: readonly DaemonCrash[];
  /** Containers `fleetd guard` stopped (their fleetd had not renewed the lease). */
  readonly guardStops: number;
  /** Tasks the harness itself could not submit or drive (each with its error). */
  readonly driverErrors: readonly string[];
  readonly injected: Injected;
  readonly proxyStats: ProxyStats;
}

export interface ChaosReport {
  readonly seed: number;
  readonly runtimeMs: number;
  readonly submitted: number;
  readonly completed: number;
  readonly failedByReason: Record<string, number>;
  readonly cancelled: number;
  readonly timedOut: number;
  readonly lost: string[];
  readonly doubleRun: string[];
  readonly containers: number;
  readonly takeovers: number;
  readonly longestTakeoverMs?: number;
  readonly guardStops: number;
  readonly driverErrors: readonly string[];
  readonly badInputs: { total: number; rejectedWithReason: number; detail: string[]; problems: string[] };
  readonly crashes: readonly DaemonCrash[];
  /** Failed boots (preflight, e.g. IMDS timing out on an overloaded machine), restarted as systemd would. */
  readonly bootFailures: number;
  readonly unexpectedOutcomes: Record<string, number>;
  /** Each unexpected outcome in full (task, attempt, reason), to read why a fault changed it. */
  readonly unexpectedDetails: Array<{ taskId: string; behaviour: string; status: string; attempt: number; reason?: string }>;
  /** Why boots failed, grouped (the "fleetd could not start" line without its particulars). */
  readonly bootFailureReasons: Record<string, number>;
  readonly injected: Injected;
  readonly proxyStats: ProxyStats;
  readonly ok: boolean;
}

/** A reason without its particulars (ids, numbers), so failures group by cause. */
export function reasonCategory(reason: string | undefined): string {
  if (!reason) return '(no reason)';
  return reason
    .replace(/t-[0-9a-z]{26}/g, '<task>')
    .replace(/i-[0-9a-f]{8,17}/g, '<instance>')
    .replace(/\d+/g, 'N')
    .split(/[:;(]/)[0]
    .trim()
    .slice(0, 48);
}

/** The error of a failed boot's "fleetd could not start" line (fleetd logs JSON lines). */
export function bootFailureReason(lines: readonly string[]): string {
  const line = lines.find((l) => /fleetd could not start/.test(l));
  if (!line) return '(no "could not start" line)';
  try {
    const parsed = JSON.parse(line) as { error?: unknown };
    const err = parsed.error as { message?: string } | string | undefined;
    const text = typeof err === 'string' ? err : (err?.message ?? JSON.stringify(err));
    return text.replace(/i-[0-9a-f]{8,17}/g, '<instance>').replace(/\d+/g, 'N').slice(0, 120);
  } catch {
    return line.slice(0, 120);
  }
}

/** TAKEN_OVER.at − the last sign of life of the attempt it replaced (heartbeat, RUNNING, claim). */
export function takeoverDelays(events: ReadonlyMap<string, TaskEvent[]>, lastBeat: ReadonlyMap<string, number>): number[] {
  const delays: number[] = [];
  for (const [taskId, list] of events) {
    for (const e of list) {
      if (e.type !== EventType.TAKEN_OVER || e.attempt === undefined) continue;
      const dead = e.attempt - 1;
      const signs = list.filter((x) => x.attempt === dead && x.at <= e.at).map((x) => x.at);
      const alive = Math.max(lastBeat.get(`${taskId}#${dead}`) ?? 0, ...signs);
      if (alive > 0) delays.push(e.at - alive);
    }
  }
  return delays;
}

export function buildReport(i: ReportInput): ChaosReport {
  const statuses = [...i.planned.keys()].map((id) => i.records.get(id));
  const count = (s: TaskStatus) => statuses.filter((r) => r?.status === s).length;
  const failedByReason: Record<string, number> = {};
  for (const r of statuses) if (r?.status === TaskStatus.FAILED) failedByReason[reasonCategory(r.reason)] = (failedByReason[reasonCategory(r.reason)] ?? 0) + 1;
  const lost = [...i.planned.keys()].filter((id) => !isTerminal(i.records.get(id)?.status ?? TaskStatus.QUEUED));
  const unexpectedOutcomes: Record<string, number> = {};
  const unexpectedDetails: ChaosReport['unexpectedDetails'] = [];
  for (const [id, plan] of i.planned) {
    const rec = i.records.get(id);
    if (rec && isTerminal(rec.status) && !plan.expected.includes(rec.status)) {
      const k = `${plan.behaviour} → ${rec.status} (${reasonCategory(rec.reason)})`;
      unexpectedOutcomes[k] = (unexpectedOutcomes[k] ?? 0) + 1;
      unexpectedDetails.push({ taskId: id, behaviour: plan.behaviour, status: rec.status, attempt: rec.attempt, reason: rec.reason });
    }
  }
  const bootFailureReasons: Record<string, number> = {};
  for (const c of i.crashes.filter((x) => x.bootFailure)) {
    const k = bootFailureReason(c.lastLines);
    bootFailureReasons[k] = (bootFailureReasons[k] ?? 0) + 1;
  }
  const delays = takeoverDelays(i.events, i.lastBeat);

  // Bad input: parsers, SQS messages (each must be in the DLQ with a reason), records.
  const problems: string[] = [];
  let total = 0;
  let rejected = 0;
  const detail: string[] = [];
  for (const c of i.parserChecks) {
    total += c.total;
    rejected += c.rejectedWithReason;
    detail.push(`parser ${c.kind} ${c.rejectedWithReason}/${c.total}`);
    problems.push(...c.accepted.map((a) => `accepted: ${a}`), ...c.broken);
  }
  const dlqByBody = new Map<string, number>();
  for (const m of i.dlq) if (m.reason) dlqByBody.set(m.body, (dlqByBody.get(m.body) ?? 0) + 1);
  let matched = 0;
  for (const body of i.sentBadBodies) {
    const n = dlqByBody.get(body) ?? 0;
    if (n > 0) {
      matched++;
      dlqByBody.set(body, n - 1);
    } else problems.push(`bad message not dead-lettered with a reason: ${JSON.stringify(body).slice(0, 120)}`);
  }
  total += i.sentBadBodies.length;
  rejected += matched;
  detail.push(`sqs messages ${matched}/${i.sentBadBodies.length} in DLQ with reason (+${i.sqsRefused} real SQS refuses, not sent)`);
  const endedWith = (ids: string[], status: TaskStatus, pattern: RegExp, what: string) => {
    let ok = 0;
    for (const id of ids) {
      const r = i.records.get(id);
      if (r?.status === status && pattern.test(r.reason ?? '')) ok++;
      else problems.push(`${what} ${id}: ended ${r?.status ?? 'unknown'} (${r?.reason ?? 'no reason'})`);
    }
    total += ids.length;
    rejected += ok;
    detail.push(`${what} ${ok}/${ids.length}`);
  };
  endedWith(i.sideRecords.badSpec, TaskStatus.FAILED, /invalid spec/, 'bad-spec records FAILED with reason');
  // A task named by a malformed (v: 2) message is never changed by it: it ends as its own
  // (valid) spec makes it end, after the reconciler resends its lost message, never FAILED
  // with the malformed message as the reason.
  {
    const untouched = i.sideRecords.victims.filter((id) => {
      const r = i.records.get(id);
      return r !== undefined && isTerminal(r.status) && !/malformed message/.test(r.reason ?? '');
    });
    for (const id of i.sideRecords.victims.filter((v) => !untouched.includes(v))) problems.push(`task named by a v:2 message ${id}: ${i.records.get(id)?.status ?? 'unknown'} (${i.records.get(id)?.reason ?? 'no reason'})`);
    total += i.sideRecords.victims.length;
    rejected += untouched.length;
    detail.push(`tasks named by v:2 messages untouched by them ${untouched.length}/${i.sideRecords.victims.length}`);
  }
  // Invalid records are dead-lettered by their (valid) envelope: counted among the DLQ reasons.
  const invalidDlq = i.dlq.filter((m) => m.reason && /task record for .* is invalid/.test(m.reason)).length;
  const invalidOk = Math.min(invalidDlq, i.sideRecords.invalidRecord.length);
  total += i.sideRecords.invalidRecord.length;
  rejected += invalidOk;
  detail.push(`invalid records dead-lettered with reason ${invalidOk}/${i.sideRecords.invalidRecord.length}`);
  if (invalidOk < i.sideRecords.invalidRecord.length) problems.push(`${i.sideRecords.invalidRecord.length - invalidOk} invalid record(s) not dead-lettered with a reason`);

  const doubleRun = [...new Set(i.doubles.map((d) => d.taskId))];
  const crashes = i.crashes.filter((c) => !c.bootFailure);
  const ok = lost.length === 0 && doubleRun.length === 0 && crashes.length === 0 && rejected === total;
  return {
    seed: i.seed,
    runtimeMs: i.runtimeMs,
    submitted: i.planned.size,
    completed: count(TaskStatus.COMPLETED),
    failedByReason,
    cancelled: count(TaskStatus.CANCELLED),
    timedOut: count(TaskStatus.TIMED_OUT),
    lost,
    doubleRun,
    containers: i.lifetimes.length,
    takeovers: delays.length,
    longestTakeoverMs: delays.length ? Math.max(...delays) : undefined,
    guardStops: i.guardStops,
    driverErrors: i.driverErrors,
    badInputs: { total, rejectedWithReason: rejected, detail, problems },
    crashes,
    bootFailures: i.crashes.length - crashes.length,
    unexpectedOutcomes,
    unexpectedDetails,
    bootFailureReasons,
    injected: i.injected,
    proxyStats: i.proxyStats,
    ok,
  };
}

const must = (n: number) => (n === 0 ? `${n}` : `${n}   <-- MUST BE 0`);

/** The one table, plain text, two columns. */
export function formatTable(r: ChaosReport): string {
  const failed = Object.values(r.failedByReason).reduce((a, b) => a + b, 0);
  const rows: Array<[string, string]> = [
    ['seed', String(r.seed)],
    ['runtime', `${(r.runtimeMs / 1000).toFixed(0)} s`],
    ['tasks submitted', String(r.submitted)],
    ['completed', String(r.completed)],
    ['failed', String(failed)],
    ...Object.entries(r.failedByReason)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]): [string, string] => [`  ${k}`, String(v)]),
    ['cancelled', String(r.cancelled)],
    ['timed out', String(r.timedOut)],
    ['lost (non-terminal at the end)', must(r.lost.length)],
    ['run more than once concurrently', must(r.doubleRun.length)],
    ['containers seen (docker events)', String(r.containers)],
    ['takeovers after a crash / lost lease', String(r.takeovers)],
    ['longest takeover', r.longestTakeoverMs === undefined ? 'n/a' : `${(r.longestTakeoverMs / 1000).toFixed(1)} s`],
    ['containers stopped by the lease guard', String(r.guardStops)],
    ['harness driver errors (not submitted)', String(r.driverErrors.length)],
    ['bad inputs rejected with a reason', `${r.badInputs.rejectedWithReason}/${r.badInputs.total}${r.badInputs.rejectedWithReason === r.badInputs.total ? '' : '   <-- MUST BE ALL'}`],
    ...r.badInputs.detail.map((d): [string, string] => [`  ${d.replace(/ \d+\/\d+.*$/, '')}`, d.replace(/^.*? (\d+\/\d+)/, '$1')]),
    ['daemon crashes (exits we did not cause)', must(r.crashes.length)],
    ['  failed boots, restarted (not crashes)', String(r.bootFailures)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  const inj = r.injected;
  const injectedLine = `injected: ${inj.kills} kill -9 (${inj.instanceDeaths} instance deaths, ${inj.longOutages} down past the lease, ${inj.restarts} restarts), ${inj.dockerRestarts} dockerd restart${inj.dockerDownMs ? ` (${(inj.dockerDownMs / 1000).toFixed(1)} s down)` : ''}, ${inj.faultWindows.length} AWS fault windows (${Object.entries(r.proxyStats.faulted).map(([k, v]) => `${k} ${v}`).join(', ') || 'none hit'} of ${r.proxyStats.requests} requests), ${inj.duplicateDeliveries} duplicate deliveries, cancels ${Object.entries(inj.cancels).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}, reconciler ${inj.reconcilerRuns} runs (${Object.entries(inj.reconcilerActions).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || 'no actions'})`;
  return [...lines, '', injectedLine, `verdict: ${r.ok ? 'PASS' : 'FAIL'}`].join('\n');
}
