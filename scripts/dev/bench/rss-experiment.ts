/**
 * Where fleetd's idle memory goes: a one-off experiment, not part of `npm run bench`. Each
 * variant is the real fleetd (the production bundle, FLEETD_ENTRIES) run idle against the local
 * stack for a while, side by side, with a bare `node -e` process as the floor; the table shows
 * their resident memory. Variants:
 *   production              the bundle as the systemd unit runs it (FLEETD_NODE_FLAGS: source
 *                           maps and the heap flags; FLEETD_PROCESS_ENV: the glibc trim threshold)
 *   RSS_BEFORE_BUNDLE       (when set) another fleetd.js, run the same way: a before/after
 *   no glibc trim           the same without MALLOC_TRIM_THRESHOLD_
 *   no node flags           the same without FLEETD_NODE_FLAGS
 *   source maps at start    + node --enable-source-maps (the map parsed at start and kept; fleetd
 *                           instead reads it when it formats a stack, stack-source-map.ts)
 *   semi-space 1 MiB        + node --max-semi-space-size=1 (a smaller young generation)
 *   glibc arenas 2          + MALLOC_ARENA_MAX=2 (at most two malloc arenas for all threads)
 * Run: npx tsx scripts/dev/bench/rss-experiment.ts  (needs `npm run local -- up`; RSS_WINDOW_S,
 * default 40; RSS_VARIANTS=name,name runs only those; RSS_REPEAT=N boots each N times; RSS_BUSY=N
 * keeps N busy loops spinning meanwhile, as the bench's other phases load the machine;
 * RSS_OPEN_S, default 35, is when the window opens after the last boot)
 */
import '../../../daemon/src/quiet-sdk-warning';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAwsClients } from '../../../daemon/src/aws';
import { FLEETD_NODE_FLAGS, FLEETD_PROCESS_ENV } from '../../../daemon/src/contract';
import { spawn, type ChildProcess } from 'node:child_process';
import { provisionFleet } from '../local/provision';
import { stackEnv as localStackEnv } from '../harness/fleet';
import { bareNodeRss } from './baseline';
import { BenchDaemon, buildFleetdBundle } from './fleetd-process';
import { formatLoad, loadAverage } from './machine';
import { summarize } from './stats';

interface Variant {
  readonly name: string;
  /** Another build of fleetd (RSS_BEFORE_BUNDLE: e.g. an older commit's, for a before/after). @default this tree's */
  readonly bundlePath?: string;
  readonly processEnv?: Record<string, string>;
  readonly nodeArgs?: readonly string[];
}

const BEFORE = process.env.RSS_BEFORE_BUNDLE;
const VARIANTS: readonly Variant[] = [
  ...(BEFORE ? [{ name: 'RSS_BEFORE_BUNDLE', bundlePath: BEFORE }] : []),
  { name: 'production' },
  { name: 'no glibc trim', processEnv: {} },
  { name: 'no node flags', nodeArgs: [] },
  { name: 'source maps at start', nodeArgs: ['--enable-source-maps', ...FLEETD_NODE_FLAGS] },
  { name: 'semi-space 1 MiB', nodeArgs: [...FLEETD_NODE_FLAGS, '--max-semi-space-size=1'] },
  { name: 'glibc arenas 2', processEnv: { ...FLEETD_PROCESS_ENV, MALLOC_ARENA_MAX: '2' } },
];

/** The variants to run: RSS_VARIANTS (names, comma-separated) or all, each RSS_REPEAT times. */
function chosenVariants(): Variant[] {
  const names = process.env.RSS_VARIANTS?.split(',').map((n) => n.trim()).filter(Boolean);
  const unknown = names?.filter((n) => !VARIANTS.some((v) => v.name === n)) ?? [];
  if (unknown.length) throw new Error(`RSS_VARIANTS: unknown ${unknown.join(', ')}; expected some of: ${VARIANTS.map((v) => v.name).join(', ')}`);
  const repeat = Number(process.env.RSS_REPEAT ?? 1);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`RSS_REPEAT: got ${process.env.RSS_REPEAT}, expected a positive integer`);
  const picked = VARIANTS.filter((v) => !names || names.includes(v.name));
  return picked.flatMap((v) => Array.from({ length: repeat }, (_, i) => (repeat > 1 ? { ...v, name: `${v.name} #${i + 1}` } : v)));
}

async function main(): Promise<void> {
  const stackEnv = localStackEnv();
  const windowS = Number(process.env.RSS_WINDOW_S ?? 40);

  const variants = chosenVariants();
  const busy = Number(process.env.RSS_BUSY ?? 0);
  const openS = Number(process.env.RSS_OPEN_S ?? 35);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-rss-'));
  const clients = createAwsClients();
  const [fleet, bundle] = await Promise.all([
    provisionFleet(clients, `rss${Date.now().toString(36)}`, { instances: variants.length, minSize: variants.length, maxSize: variants.length }),
    buildFleetdBundle(),
  ]);
  console.error(`load average ${formatLoad(loadAverage())}; booting ${variants.length} daemons${busy ? ` beside ${busy} busy loop(s)` : ''}`);
  const spinners: ChildProcess[] = Array.from({ length: busy }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  const daemons = variants.map(
    (v, i) => new BenchDaemon({ name: `rss${i}`, fleet, instanceId: fleet.instanceIds[i], slots: 1, stackEnv, bundlePath: v.bundlePath ?? bundle.path, runDir, processEnv: v.processEnv, nodeArgs: v.nodeArgs }),
  );
  try {
    for (const d of daemons) await d.boot();
    // The EC2 tag helper lingers 30 s after the boot's tags: by default the window opens after it left.
    await new Promise((r) => setTimeout(r, openS * 1000));
    const samples = daemons.map(() => [] as number[]);
    for (let t = 0; t < windowS; t += 2) {
      daemons.forEach((d, i) => samples[i].push(d.sample().rssKiB / 1024));
      await new Promise((r) => setTimeout(r, 2000));
    }
    const bare = await bareNodeRss();
    console.log(`fleetd idle RSS by variant (${windowS} s window opened ${openS} s after the last boot, ${busy} busy loop(s), 1 slot, load average ${formatLoad(loadAverage())}; bundle ${(fs.statSync(bundle.path).size / 1e6).toFixed(1)} MB)`);
    console.log(`  ${'bare node -e'.padEnd(24)} median ${bare.rssMiB.median.toFixed(1).padStart(6)} MiB  max ${bare.rssMiB.max.toFixed(1).padStart(6)} MiB`);
    variants.forEach((v, i) => {
      const s = summarize(samples[i]);
      console.log(`  ${v.name.padEnd(24)} median ${s.median.toFixed(1).padStart(6)} MiB  max ${s.max.toFixed(1).padStart(6)} MiB`);
    });
  } finally {
    for (const spinner of spinners) spinner.kill();
    await Promise.all(daemons.map((d) => d.kill()));
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
