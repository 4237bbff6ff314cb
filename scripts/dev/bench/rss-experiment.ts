/**
 * Where fleetd's idle memory goes: a one-off experiment, not part of `npm run bench` (it
 * builds several bundles). Each variant is the real fleetd run idle against its own queue on
 * the local stack for a while; the table shows its resident memory. Variants:
 *   production              the bundle `npm run bundle` makes
 *   glibc trim              same bundle, MALLOC_TRIM_THRESHOLD_=131072 (glibc returns freed
 *                           parse-time memory to the OS)
 *   no EC2 SDK              @aws-sdk/client-ec2 replaced by a stub (what a hand-rolled
 *                           CreateTags/DeleteTags request would cost instead: nothing)
 *   only the SDKs it uses   EC2, SSM, STS, CloudWatch and ECR clients stubbed (the idle
 *                           daemon calls none of them except the EC2 tags)
 *   only used + glibc trim  both
 * The stubs answer every call with {}: tags are not written, which changes nothing else an idle
 * daemon does. Run: npx tsx scripts/dev/bench/rss-experiment.ts  (needs `npm run local -- up`)
 */
import '../../../daemon/src/quiet-sdk-warning';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { createAwsClients } from '../../../daemon/src/aws';
import { bundleOptions } from '../../bundle';
import { provisionFleet } from '../local/provision';
import { readEnvFile } from '../local/stack';
import { BenchDaemon } from './fleetd-process';
import { formatLoad, loadAverage } from './machine';
import { summarize } from './stats';

/** Every name fleetd imports from the stubbed packages (grep "from '@aws-sdk/client-" daemon/src). */
const STUBBED_NAMES = ['EC2Client', 'CreateTagsCommand', 'DeleteTagsCommand', 'SSMClient', 'STSClient', 'AssumeRoleCommand', 'CloudWatchClient', 'ECRClient', 'GetAuthorizationTokenCommand'];
const STUB = `
class StubCommand { constructor(input) { this.input = input; } }
class StubClient { constructor() {} send() { return Promise.resolve({}); } destroy() {} }
${STUBBED_NAMES.map((n) => `exports.${n} = ${n.endsWith('Client') ? 'StubClient' : 'StubCommand'};`).join('\n')}
`;

function stubPlugin(packages: readonly string[]): Plugin {
  const filter = new RegExp(`^(${packages.map((p) => p.replace(/[/\\-]/g, '\\$&')).join('|')})$`);
  return {
    name: 'stub-sdk-clients',
    setup(b) {
      b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'stub' }));
      b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: STUB, loader: 'js' }));
    },
  };
}

async function variantBundle(dir: string, stubs: readonly string[]): Promise<string> {
  const options = bundleOptions([{ name: 'fleetd', source: 'daemon/src/main.ts' }], dir);
  await build({ ...options, sourcemap: false, plugins: stubs.length ? [stubPlugin(stubs)] : [] });
  return path.join(dir, 'fleetd.js');
}

interface Variant {
  readonly name: string;
  readonly stubs: readonly string[];
  readonly env: Record<string, string>;
}

const UNUSED_WHEN_IDLE = ['@aws-sdk/client-ec2', '@aws-sdk/client-ssm', '@aws-sdk/client-sts', '@aws-sdk/client-cloudwatch', '@aws-sdk/client-ecr'];
const TRIM = { MALLOC_TRIM_THRESHOLD_: '131072' };
const VARIANTS: readonly Variant[] = [
  { name: 'production', stubs: [], env: {} },
  { name: 'glibc trim', stubs: [], env: TRIM },
  { name: 'no EC2 SDK', stubs: ['@aws-sdk/client-ec2'], env: {} },
  { name: 'only the SDKs it uses', stubs: UNUSED_WHEN_IDLE, env: {} },
  { name: 'only used + glibc trim', stubs: UNUSED_WHEN_IDLE, env: TRIM },
];

async function main(): Promise<void> {
  const stackEnv = readEnvFile();
  if (!stackEnv) throw new Error('the local stack is not running: start it with "npm run local -- up"');
  Object.assign(process.env, stackEnv);
  const windowS = Number(process.env.RSS_WINDOW_S ?? 40);

  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-rss-'));
  const clients = createAwsClients();
  const fleet = await provisionFleet(clients, `rss${Date.now().toString(36)}`, { instances: VARIANTS.length, minSize: VARIANTS.length, maxSize: VARIANTS.length });
  const bundles = new Map<string, string>();
  for (const v of VARIANTS) {
    const key = v.stubs.join(',');
    if (!bundles.has(key)) bundles.set(key, await variantBundle(path.join(runDir, `bundle-${bundles.size}`), v.stubs));
  }
  console.error(`load average ${formatLoad(loadAverage())}; ${bundles.size} bundles built; booting ${VARIANTS.length} daemons`);
  const daemons = VARIANTS.map((v, i) => {
    // One queue per daemon is not needed: none of them ever gets a message.
    const env = { ...stackEnv, ...v.env };
    return new BenchDaemon({ name: `rss${i}`, fleet, instanceId: fleet.instanceIds[i], slots: 1, stackEnv: env, bundlePath: bundles.get(v.stubs.join(','))!, runDir });
  });
  try {
    for (const d of daemons) await d.boot();
    await new Promise((r) => setTimeout(r, 5000));
    const samples = daemons.map(() => [] as number[]);
    for (let t = 0; t < windowS; t += 2) {
      daemons.forEach((d, i) => samples[i].push(d.sample().rssKiB / 1024));
      await new Promise((r) => setTimeout(r, 2000));
    }
    console.log(`fleetd idle RSS by variant (${windowS} s window, 1 slot, load average ${formatLoad(loadAverage())})`);
    VARIANTS.forEach((v, i) => {
      const s = summarize(samples[i]);
      console.log(`  ${v.name.padEnd(24)} median ${s.median.toFixed(1).padStart(6)} MiB  max ${s.max.toFixed(1).padStart(6)} MiB  bundle ${(fs.statSync(daemons[i].o.bundlePath).size / 1e6).toFixed(1)} MB`);
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
