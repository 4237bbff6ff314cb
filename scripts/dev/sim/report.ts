/**
 * The comparison as a plain-text table and the notes that say what each number assumes.
 */
import { POLICIES, POLICY_LABELS, type FleetParams, type SimResult } from './fleet';
import type { WorkloadComparison } from './compare';

/** 45s, 12.3m, 2.1h. */
export function formatDuration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)}s`;
  if (seconds < 90 * 60) return `${(seconds / 60).toFixed(1)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}

const COLUMNS: readonly { readonly head: string; readonly left?: boolean; readonly cell: (r: SimResult, w: string) => string }[] = [
  { head: 'workload', left: true, cell: (_r, w) => w },
  { head: 'policy', left: true, cell: (r) => POLICY_LABELS[r.policy] + (r.poolSize ? ` (${r.poolSize})` : '') },
  { head: 'tasks', cell: (r) => String(r.tasks) },
  { head: 'wait p50', cell: (r) => formatDuration(r.wait.p50) },
  { head: 'wait p95', cell: (r) => formatDuration(r.wait.p95) },
  { head: 'wait max', cell: (r) => formatDuration(r.wait.max) },
  { head: 'inst-hours', cell: (r) => r.instanceHours.toFixed(0) },
  { head: 'util', cell: (r) => `${Math.round(r.utilisation * 100)}%` },
  { head: 'peak', cell: (r) => String(r.peakInstances) },
  { head: 'restarts', cell: (r) => String(r.restarts) },
  { head: 'failed', cell: (r) => String(r.failed) },
  { head: 'lost', cell: (r) => String(r.lost) },
];

export function formatTable(comparisons: readonly WorkloadComparison[]): string {
  const rows: string[][] = [COLUMNS.map((c) => c.head)];
  for (const c of comparisons) {
    for (const p of POLICIES) rows.push(COLUMNS.map((col) => col.cell(c.results[p], c.workload.name)));
  }
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((cell, i) => (COLUMNS[i].left ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  ')];
  rows.slice(1).forEach((r, k) => {
    if (k > 0 && k % POLICIES.length === 0) out.push('');
    out.push(line(r));
  });
  return out.join('\n');
}

export function formatNotes(comparisons: readonly WorkloadComparison[], params: FleetParams, seed: number): string {
  const t = params.timings;
  const tt = params.targetTracking;
  const notes = [
    `seed ${seed}; ${params.slotsPerInstance} slot per instance; max ${params.maxInstances} instances; boot ${params.bootSeconds.min}-${params.bootSeconds.max} s (billed from launch); spot interruptions ${params.spotPerInstanceHour * 100}% per instance-hour (a stress rate) with a ${params.spotNoticeSeconds} s notice.`,
    `this scaler: nextDesiredCapacity every ${t.scalerTickSeconds} s (min 0, buffer ${params.buffer}); instances protected from scale-in, self-terminate after ${t.idleBeforeTerminateSeconds / 60} min idle; a spot notice releases tasks at once.`,
    `target tracking: (visible + in flight) / InService, target ${tt.target}, one datapoint per ${tt.periodSeconds} s; out after ${tt.scaleOutPeriods} datapoints above, in after ${tt.scaleInPeriods} below ${tt.scaleInRatio * 100}% (cooldown ${tt.scaleInCooldownSeconds} s); min ${tt.min} because it cannot scale from zero; no scale-in protection, so scale-in kills busy instances: their tasks restart after the lease (${t.leaseSeconds} s) and fail past ${t.maxAttempts} attempts.`,
    `fixed pool, push: pool size (in brackets) = this scaler's mean fleet size on the same run (same budget); a task fails when no instance is idle; tasks over ${params.push.ssmTimeoutSeconds / 3600} h fail (RunShellScript timeout); a task pushed to a booting replacement fails (tagged idle at launch); a task on an instance lost to spot is lost (its SSM status is never final).`,
    'wait = arrival to first start, over tasks that started; util = busy slot time / billed instance time; restarts = runs cut short by a spot notice or a scale-in kill.',
  ];
  for (const c of comparisons) {
    for (const p of POLICIES) {
      const r = c.results[p];
      const why = Object.entries(r.failedBy).map(([k, v]) => `${v} ${k}`);
      if (why.length > 0) notes.push(`${c.workload.name} / ${POLICY_LABELS[p]}: failed = ${why.join(', ')}.`);
    }
  }
  return notes.map((n) => `- ${n}`).join('\n');
}
