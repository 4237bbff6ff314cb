/**
 * When fleetd's idle RSS moves (issue #18): one fleetd (production bundle, 1 slot, production
 * timings, as the bench runs it) sampled from spawn every 250 ms (VmRSS, RssAnon, RssFile from
 * /proc), its log lines interleaved at their own timestamps, times relative to "ready". With
 * RSS_TRACE_GC=1 node's --trace-gc lines are interleaved too (they go to stdout unparsed). At the
 * end: the bench's own reading (a sample every 2 s from ready + 5 s, RSS_WINDOW_S long, default
 * 60 as in the full bench) and the same from ready + 30 s.
 *   npx tsx scripts/dev/bench/rss-trace.ts [seconds after ready, default 90]
 *   (needs `npm run local -- up`; RSS_NODE_ARGS="--flag ..." adds node flags after the unit's,
 *   RSS_NO_UNIT_FLAGS=1 leaves the unit's FLEETD_NODE_FLAGS out, RSS_BUNDLE=<fleetd.js> runs another build)
 */
import '../../../daemon/src/quiet-sdk-warning';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAwsClients } from '../../../daemon/src/aws';
import { provisionFleet } from '../local/provision';
import { BenchDaemon, buildFleetdBundle, experimentNodeArgs } from './fleetd-process';
import { formatLoad, loadAverage } from './machine';
import { summarize } from './stats';
import { stackEnv as localStackEnv } from '../harness/fleet';
import { runStandalone } from './standalone';

interface Sample {
  readonly at: number;
  readonly rss: number;
  readonly anon: number;
  readonly file: number;
}

function sample(pid: number): Sample | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) / 1024;
    return { at: Date.now(), rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile') };
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const stackEnv = localStackEnv();
  const afterReadyS = Number(process.argv[2] ?? 90);
  const windowS = Number(process.env.RSS_WINDOW_S ?? 60);
  const nodeArgs = experimentNodeArgs(process.env.RSS_TRACE_GC ? ['--trace-gc'] : []);
  const loadStart = formatLoad(loadAverage());
  const [bundle, fleet] = await Promise.all([buildFleetdBundle(), provisionFleet(createAwsClients(), `trace${Date.now().toString(36)}`, { instances: 1, minSize: 1, maxSize: 1 })]);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-rss-trace-'));
  const daemon = new BenchDaemon({ name: 'trace', fleet, instanceId: fleet.instanceIds[0], slots: 1, stackEnv, bundlePath: process.env.RSS_BUNDLE ?? bundle.path, runDir, nodeArgs });
  const samples: Sample[] = [];
  try {
    daemon.start();
    const timer = setInterval(() => {
      const s = sample(daemon.pid);
      if (s) samples.push(s);
    }, 250);
    const readyAt = await daemon.ready();
    await new Promise((r) => setTimeout(r, afterReadyS * 1000));
    clearInterval(timer);
    const rel = (t: number) => `${((t - readyAt) / 1000).toFixed(2).padStart(8)} s`;
    // Timeline: every sample that moved ≥ 1 MiB from the last printed one, or 10 s after it, and every log line.
    const events: { at: number; text: string }[] = daemon.lines.map((l) => ({ at: l.ts, text: `LOG ${l.msg.slice(0, 160)}` }));
    let last: Sample | undefined;
    for (const s of samples) {
      if (!last || Math.abs(s.rss - last.rss) >= 1 || s.at - last.at >= 10_000) {
        events.push({ at: s.at, text: `RSS ${s.rss.toFixed(1)} MiB (anon ${s.anon.toFixed(1)}, file ${s.file.toFixed(1)})` });
        last = s;
      }
    }
    events.sort((a, b) => a.at - b.at);
    console.log(`fleetd RSS trace: node ${nodeArgs.join(' ')}; load average ${loadStart} at start, ${formatLoad(loadAverage())} at end`);
    for (const e of events) console.log(`${rel(e.at)}  ${e.text}`);
    const peak = samples.reduce((a, b) => (b.rss > a.rss ? b : a));
    console.log(`peak sample ${peak.rss.toFixed(1)} MiB at ${rel(peak.at)}`);
    // The bench's reading: one sample every 2 s over the window, here taken from the 250 ms trace.
    for (const from of [5, 30]) {
      const picked: number[] = [];
      for (let t = readyAt + from * 1000; t <= readyAt + (from + windowS) * 1000; t += 2000) {
        const s = samples.find((x) => x.at >= t);
        if (s) picked.push(s.rss);
      }
      const all = samples.filter((x) => x.at >= readyAt + from * 1000 && x.at <= readyAt + (from + windowS) * 1000).map((x) => x.rss);
      const sum = summarize(picked);
      const every = summarize(all);
      console.log(`window ready+${from} s .. +${from + windowS} s: every 2 s n ${sum.n} median ${sum.median.toFixed(1)} max ${sum.max.toFixed(1)} MiB; every 250 ms n ${every.n} median ${every.median.toFixed(1)} max ${every.max.toFixed(1)} MiB`);
    }
  } finally {
    await daemon.kill();
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

runStandalone('rss-trace', main);
