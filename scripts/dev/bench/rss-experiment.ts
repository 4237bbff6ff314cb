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
 * Run: npx tsx scripts/dev/bench/rss-experiment.ts  (needs `npm run local -- up`; RSS_WINDOW_S,
 * default 40)
 */
import '../../../daemon/src/quiet-sdk-warning';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAwsClients } from '../../../daemon/src/aws';
import { FLEETD_NODE_FLAGS } from '../../../daemon/src/contract';
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
];

async function main(): Promise<void> {
  const stackEnv = localStackEnv();
  const windowS = Number(process.env.RSS_WINDOW_S ?? 40);

  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-rss-'));
  const clients = createAwsClients();
  const [fleet, bundle] = await Promise.all([
    provisionFleet(clients, `rss${Date.now().toString(36)}`, { instances: VARIANTS.length, minSize: VARIANTS.length, maxSize: VARIANTS.length }),
    buildFleetdBundle(),
  ]);
  console.error(`load average ${formatLoad(loadAverage())}; booting ${VARIANTS.length} daemons`);
  const daemons = VARIANTS.map(
    (v, i) => new BenchDaemon({ name: `rss${i}`, fleet, instanceId: fleet.instanceIds[i], slots: 1, stackEnv, bundlePath: v.bundlePath ?? bundle.path, runDir, processEnv: v.processEnv, nodeArgs: v.nodeArgs }),
  );
  try {
    for (const d of daemons) await d.boot();
    // The EC2 tag helper lingers 30 s after the boot's tags: the window opens after it left.
    await new Promise((r) => setTimeout(r, 35_000));
    const samples = daemons.map(() => [] as number[]);
    for (let t = 0; t < windowS; t += 2) {
      daemons.forEach((d, i) => samples[i].push(d.sample().rssKiB / 1024));
      await new Promise((r) => setTimeout(r, 2000));
    }
    const bare = await bareNodeRss();
    console.log(`fleetd idle RSS by variant (${windowS} s window, 1 slot, load average ${formatLoad(loadAverage())}; bundle ${(fs.statSync(bundle.path).size / 1e6).toFixed(1)} MB)`);
    console.log(`  ${'bare node -e'.padEnd(24)} median ${bare.rssMiB.median.toFixed(1).padStart(6)} MiB  max ${bare.rssMiB.max.toFixed(1).padStart(6)} MiB`);
    VARIANTS.forEach((v, i) => {
      const s = summarize(samples[i]);
      console.log(`  ${v.name.padEnd(24)} median ${s.median.toFixed(1).padStart(6)} MiB  max ${s.max.toFixed(1).padStart(6)} MiB`);
    });
  } finally {
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
