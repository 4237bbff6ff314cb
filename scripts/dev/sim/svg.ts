/**
 * A hand-written SVG chart of the comparison: per workload, the instance count each policy
 * ran over time against the offered load, and beside it bars for p95 wait, instance-hours and
 * failed + lost tasks. No dependency; plain SVG 1.1 a browser or image viewer opens.
 */
import { POLICIES, POLICY_LABELS, type PolicyName, type SimResult } from './fleet';
import type { WorkloadComparison } from './compare';
import { formatDuration } from './report';

const COLORS: Readonly<Record<PolicyName, string>> = {
  scaler: '#1f6fb4',
  'target-tracking': '#e07b10',
  'push-pool': '#7a7a7a',
};
const LOAD_FILL = '#d9e6d3';
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

const W = 1200;
const HEADER = 78;
const PANEL_H = 250;
const PLOT = { x: 70, w: 640, h: 180 };
const BARS = { x: 790, w: 300 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f1 = (v: number) => (Math.round(v * 10) / 10).toString();

/** Bucket-max downsampling: keeps peaks visible while bounding the points per line. */
function downsample(xs: readonly number[], ys: readonly number[], maxPoints: number): [number[], number[]] {
  if (xs.length <= maxPoints) return [[...xs], [...ys]];
  const step = Math.ceil(xs.length / maxPoints);
  const ox: number[] = [];
  const oy: number[] = [];
  for (let i = 0; i < xs.length; i += step) {
    let m = ys[i];
    for (let j = i + 1; j < Math.min(xs.length, i + step); j++) m = Math.max(m, ys[j]);
    ox.push(xs[i]);
    oy.push(m);
  }
  return [ox, oy];
}

/** A "nice" axis maximum and tick step for `max`. */
function niceScale(max: number, ticks = 4): { top: number; step: number } {
  const raw = Math.max(1, max) / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  return { top: Math.ceil(Math.max(1, max) / step) * step, step };
}

function panel(c: WorkloadComparison, y0: number): string {
  const out: string[] = [];
  const results = POLICIES.map((p) => c.results[p]);
  const endS = Math.max(...results.map((r) => r.endS));
  const peak = Math.max(...c.offered.load, ...results.flatMap((r) => r.series.instances));
  const ys = niceScale(peak);
  const top = y0 + 42;
  const sx = (t: number) => PLOT.x + (t / endS) * PLOT.w;
  const sy = (v: number) => top + PLOT.h - (v / ys.top) * PLOT.h;

  out.push(`<text x="${PLOT.x}" y="${y0 + 18}" ${FONT} font-size="15" font-weight="bold">${esc(c.workload.name)}</text>`);
  out.push(`<text x="${PLOT.x + 70}" y="${y0 + 18}" ${FONT} font-size="12" fill="#444">${esc(c.workload.description)}</text>`);
  out.push(`<text x="${PLOT.x}" y="${y0 + 34}" ${FONT} font-size="11" fill="#666">instances running over time (lines) vs offered load: tasks that would run if every task started at once (green)</text>`);

  // Axes and grid.
  for (let v = 0; v <= ys.top; v += ys.step) {
    out.push(`<line x1="${PLOT.x}" x2="${PLOT.x + PLOT.w}" y1="${f1(sy(v))}" y2="${f1(sy(v))}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${PLOT.x - 6}" y="${f1(sy(v) + 4)}" ${FONT} font-size="10" text-anchor="end" fill="#555">${v}</text>`);
  }
  const hours = endS / 3600;
  const hStep = hours > 24 ? 6 : hours > 12 ? 3 : hours > 4 ? 2 : 0.5;
  for (let h = 0; h <= hours + 1e-9; h += hStep) {
    out.push(`<text x="${f1(sx(h * 3600))}" y="${top + PLOT.h + 14}" ${FONT} font-size="10" text-anchor="middle" fill="#555">${f1(h)}h</text>`);
  }
  out.push(`<line x1="${PLOT.x}" x2="${PLOT.x + PLOT.w}" y1="${top + PLOT.h}" y2="${top + PLOT.h}" stroke="#888"/>`);

  // Offered load as an area, then one line per policy.
  const [lx, ly] = downsample(c.offered.times, c.offered.load, 600);
  const area = lx.map((t, i) => `${f1(sx(t))},${f1(sy(ly[i]))}`).join(' ');
  out.push(`<polygon points="${f1(sx(lx[0]))},${f1(sy(0))} ${area} ${f1(sx(lx[lx.length - 1]))},${f1(sy(0))}" fill="${LOAD_FILL}"/>`);
  for (const r of results) {
    const [x, y] = downsample(r.series.t, r.series.instances, 600);
    const pts = x.map((t, i) => `${f1(sx(t))},${f1(sy(y[i]))}`).join(' ');
    const dash = r.policy === 'push-pool' ? ' stroke-dasharray="6 3"' : '';
    out.push(`<polyline points="${pts}" fill="none" stroke="${COLORS[r.policy]}" stroke-width="1.6"${dash}/>`);
  }

  // Bars: three metrics, one bar per policy, each scaled to that metric's largest value.
  const metrics: { title: string; value: (r: SimResult) => number; label: (r: SimResult) => string }[] = [
    { title: 'queue wait p95', value: (r) => r.wait.p95, label: (r) => formatDuration(r.wait.p95) + (r.policy === 'push-pool' ? ' (no queue: it fails tasks instead)' : '') },
    { title: 'instance-hours', value: (r) => r.instanceHours, label: (r) => r.instanceHours.toFixed(0) },
    { title: 'tasks failed + lost', value: (r) => r.failed + r.lost, label: (r) => `${r.failed} + ${r.lost}` },
  ];
  metrics.forEach((m, k) => {
    const my = top + k * 64;
    const max = Math.max(...results.map(m.value), 1e-9);
    out.push(`<text x="${BARS.x}" y="${my + 6}" ${FONT} font-size="11" font-weight="bold" fill="#333">${m.title}</text>`);
    results.forEach((r, j) => {
      const by = my + 11 + j * 15;
      const bw = Math.max(1, (m.value(r) / max) * (BARS.w - 70));
      out.push(`<rect x="${BARS.x}" y="${by}" width="${f1(bw)}" height="11" fill="${COLORS[r.policy]}"/>`);
      out.push(`<text x="${f1(BARS.x + bw + 5)}" y="${by + 9}" ${FONT} font-size="10" fill="#222">${esc(m.label(r))}</text>`);
    });
  });
  return out.join('\n');
}

export function renderSvg(comparisons: readonly WorkloadComparison[], caption: string): string {
  const h = HEADER + comparisons.length * PANEL_H + 30;
  const legend = POLICIES.map((p, i) => {
    const x = 70 + i * 230;
    const dash = p === 'push-pool' ? ' stroke-dasharray="6 3"' : '';
    return `<line x1="${x}" x2="${x + 28}" y1="52" y2="52" stroke="${COLORS[p]}" stroke-width="3"${dash}/><text x="${x + 34}" y="56" ${FONT} font-size="12">${esc(POLICY_LABELS[p])}</text>`;
  }).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}">`,
    `<rect width="${W}" height="${h}" fill="white"/>`,
    `<text x="70" y="28" ${FONT} font-size="18" font-weight="bold">agent-fleet: scaling policies compared (simulated)</text>`,
    legend,
    `<rect x="${70 + 3 * 230}" y="45" width="28" height="12" fill="${LOAD_FILL}"/><text x="${70 + 3 * 230 + 34}" y="56" ${FONT} font-size="12">offered load</text>`,
    ...comparisons.map((c, i) => panel(c, HEADER + i * PANEL_H)),
    `<text x="70" y="${h - 10}" ${FONT} font-size="10" fill="#666">${esc(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
