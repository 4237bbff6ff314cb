/**
 * CLI start-up (issue #18, CLI part): wall time and peak RSS of `fleet status ID` and
 * `fleet list` from the standalone bundle as docs/cli.md runs it (dist/bundle/fleet, the launcher
 * beside fleet.mjs, as `npm run bundle` makes them, built into a temp dir), side by side with `aws dynamodb get-item` on the same record, in the
 * same rounds. Targets: each fleet command's median ≤ 0.4 s, and ≤ 1/3 of the AWS CLI's median.
 *
 * The record is a QUEUED task with no message (FleetClient.submitTaskRecordOnly) in a fleet no
 * daemon polls, so nothing runs. Each round runs the three commands once, in a rotating order,
 * after two warm-up rounds (page cache, moto's first answers). Wall time is spawn → exit as seen
 * here; peak RSS (and user + system CPU) come from GNU time (/usr/bin/time -f) when installed.
 * Every run must exit 0 and print the task id, or the phase fails (a fast wrong answer is no
 * figure). `status` and `list` run from fleet-read.cjs with a V8 code cache (scripts/cli/code-cache.ts)
 * kept in a temp XDG_CACHE_HOME of this run: the warm-up rounds write it, as a user's first run
 * would. CLI_BENCH_NO_CODE_CACHE=1 times them without it (FLEET_NO_CODE_CACHE).
 *
 * Part of `npm run bench` (bench.ts); alone, against the local stack (provisions a throwaway
 * fleet in moto, ~10 s, then ~2 s per round at load 2):
 *
 *   npx tsx scripts/dev/bench/cli-vs-aws.ts [rounds]      (default 20; needs `npm run local -- up`)
 *
 * CLI_BENCH_BUNDLE_DIR=dir times an existing build instead of building one;
 * CLI_BENCH_BASELINE_DIR=dir adds another build's status and list to the same rounds (before/after);
 * CLI_BENCH_AWS=path names the AWS CLI.
 */
import '../../../daemon/src/quiet-sdk-warning';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAwsClients, type AwsClients } from '../../../daemon/src/aws';
import { FLEET_ENV } from '../../../daemon/src/contract';
import { FleetClient, type FleetNames } from '../../lib/client';
import { bundle, CLI_ENTRIES, CLI_LAUNCHER } from '../../bundle';
import { provisionFleet } from '../local/provision';
import { formatLoad, loadAverage } from './machine';
import { percentile, summarize, type Summary } from './stats';
import { runStandalone } from './standalone';
import { stackEnv as localStackEnv } from '../harness/fleet';

export const CLI_TARGET_MS = 400;
export const CLI_TARGET_RATIO = 1 / 3;
const GNU_TIME = '/usr/bin/time';

export type CliCommandKey = 'fleet status' | 'fleet list' | 'aws get-item' | 'baseline status' | 'baseline list' | 'node -e' | 'node -e, no CA';

/**
 * Node reads NODE_EXTRA_CA_CERTS when it starts, before any script runs (this machine sets it to
 * the system bundle: ~45 ms). The AWS CLI reads its CA bundle only for an HTTPS connection, which
 * the local stack's plain-http endpoint never makes; so does `fleet` (bin/fleet.js defers it:
 * scripts/cli/deferred-ca.ts). Every command runs in the machine's environment as it is; the
 * `node -e` rows show node's own floor with and without the variable.
 */
const NODE_EXTRA_CA_CERTS = 'NODE_EXTRA_CA_CERTS';

export interface CliCommandFigures {
  readonly key: CliCommandKey;
  readonly argv: readonly string[];
  readonly wallMs: Summary;
  readonly p90Ms: number;
  /** Peak resident set, MiB (GNU time's %M); absent without /usr/bin/time. */
  readonly maxRssMiB?: Summary;
  /** User + system CPU seconds per run (GNU time). */
  readonly cpuS?: Summary;
}

export interface CliVsAwsResult {
  readonly rounds: number;
  readonly bundleDir: string;
  readonly baselineDir?: string;
  readonly bundleSeconds: number;
  readonly awsVersion: string;
  readonly commands: CliCommandFigures[];
  readonly load: { readonly start: string; readonly end: string };
  readonly verdicts: Array<{ readonly target: string; readonly met: boolean; readonly measured: string }>;
}

interface Run {
  readonly wallMs: number;
  readonly maxRssKiB?: number;
  readonly cpuS?: number;
}

/** One spawn, timed from spawn to exit; GNU time (when present) writes %M %U %S to its own file. */
async function timedRun(argv: readonly string[], env: NodeJS.ProcessEnv, expect: string): Promise<Run> {
  const useTime = fs.existsSync(GNU_TIME);
  const timeFile = useTime ? path.join(os.tmpdir(), `cli-bench-${process.pid}-${Math.random().toString(36).slice(2)}.time`) : undefined;
  const [cmd, ...args] = useTime ? [GNU_TIME, '-o', timeFile!, '-f', '%M %U %S', ...argv] : argv;
  const t0 = performance.now();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  const wallMs = performance.now() - t0;
  if (code !== 0 || !stdout.includes(expect)) {
    throw new Error(`${argv.join(' ')}: exit ${code}, ${stdout.includes(expect) ? '' : `no "${expect}" on stdout, `}stderr: ${stderr.trim().slice(0, 400)}`);
  }
  if (!timeFile) return { wallMs };
  try {
    const [rss, user, sys] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    return { wallMs, maxRssKiB: rss, cpuS: user + sys };
  } finally {
    fs.rmSync(timeFile, { force: true });
  }
}

/** The fleet CLI bundle, built from the current sources into a temp dir (never dist/). */
export async function buildCliBundle(): Promise<{ dir: string; seconds: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-fleet-bench-cli-'));
  const { seconds } = await bundle(CLI_ENTRIES, dir);
  return { dir, seconds };
}

/**
 * A build's `fleet` command as its docs say to run it: the bundle's `fleet` launcher (executed
 * itself: sh, then node on fleet.mjs; scripts/bundle.ts), or `node fleet.mjs` for an older build
 * without one (CLI_BENCH_*_DIR).
 */
function fleetCommand(dir: string): string[] {
  const launcher = path.join(dir, CLI_LAUNCHER);
  return fs.existsSync(launcher) ? [launcher] : [process.execPath, path.join(dir, 'fleet.mjs')];
}

/**
 * The AWS CLI to time: $CLI_BENCH_AWS, else `aws` on PATH; a pyenv shim (a bash script that runs
 * `pyenv exec`, ~0.1 s more) is resolved to the interpreter's own `aws`, so the shim is not
 * counted against the AWS CLI.
 */
export function awsExecutable(env: NodeJS.ProcessEnv): string {
  if (env.CLI_BENCH_AWS) return env.CLI_BENCH_AWS;
  const which = spawnSync('pyenv', ['which', 'aws'], { env, encoding: 'utf8' });
  const real = which.status === 0 ? which.stdout.trim() : '';
  return real && fs.existsSync(real) ? real : 'aws';
}

function awsVersion(env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(awsExecutable(env), ['--version'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (err) => resolve(`not runnable (${err.message})`));
    child.on('close', () => resolve(out.trim().split('\n')[0] ?? 'unknown'));
  });
}

/**
 * `rounds` rounds of the three commands on one record of `names`' tasks table. `stackEnv` is the
 * local stack's environment (AWS endpoint, region, credentials); the CLI gets the fleet's names
 * as FLEET_* variables, so it never looks for a local env file.
 */
export async function cliVsAwsPhase(options: {
  clients: AwsClients;
  names: FleetNames;
  stackEnv: Record<string, string>;
  rounds: number;
  /** A built CLI bundle to time instead of building one. */
  bundleDir?: string;
  /** Another build (an older commit's) timed in the same rounds, as `baseline status` / `baseline list`. */
  baselineDir?: string;
}): Promise<CliVsAwsResult> {
  const built = options.bundleDir ? { dir: options.bundleDir, seconds: 0 } : await buildCliBundle();
  try {
    return await timeCommands(options, built);
  } catch (err) {
    if (!options.bundleDir) fs.rmSync(built.dir, { recursive: true, force: true });
    throw err;
  }
}

async function timeCommands(options: Parameters<typeof cliVsAwsPhase>[0], built: { dir: string; seconds: number }): Promise<CliVsAwsResult> {
  const { clients, names, stackEnv } = options;
  const client = new FleetClient(clients, names);
  const taskId = await client.submitTaskRecordOnly({ image: 'agent-fleet/demo-agent:latest', command: ['true'], env: { BENCH: 'cli' }, memory_mb: 64, timeout_s: 60 });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...stackEnv,
    [FLEET_ENV.queueUrl]: names.queueUrl,
    [FLEET_ENV.dlqUrl]: names.dlqUrl,
    [FLEET_ENV.tasksTable]: names.tasksTable,
    [FLEET_ENV.eventsTable]: names.eventsTable,
    [FLEET_ENV.instancesTable]: names.instancesTable,
    [FLEET_ENV.payloadBucket]: names.payloadBucket,
    AWS_PAGER: '',
  };
  // The AWS CLI v1 reads its region from AWS_DEFAULT_REGION only.
  env.AWS_DEFAULT_REGION ??= env.AWS_REGION;
  delete env.NODE_OPTIONS;
  // The CLI's code cache: this run's own, never the user's (removed at the end).
  const cacheHome = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-fleet-bench-cache-'));
  env.XDG_CACHE_HOME = cacheHome;
  if (process.env.CLI_BENCH_NO_CODE_CACHE) env.FLEET_NO_CODE_CACHE = '1';
  try {
    return await timeRounds(options, built, { env, taskId });
  } finally {
    fs.rmSync(cacheHome, { recursive: true, force: true });
  }
}

async function timeRounds(options: Parameters<typeof cliVsAwsPhase>[0], built: { dir: string; seconds: number }, { env, taskId }: { env: NodeJS.ProcessEnv; taskId: string }): Promise<CliVsAwsResult> {
  const { names, rounds } = options;
  const fleet = fleetCommand(built.dir);
  const version = await awsVersion(env);
  const commands: Array<{ key: CliCommandKey; argv: string[]; env?: NodeJS.ProcessEnv }> = [
    { key: 'fleet status', argv: [...fleet, 'status', taskId] },
    { key: 'fleet list', argv: [...fleet, 'list'] },
    // Node's own start-up in the same environment: the floor under any node CLI here.
    { key: 'node -e', argv: [process.execPath, '-e', 'console.log(process.argv[1])', taskId] },
  ];
  if (env[NODE_EXTRA_CA_CERTS]) {
    const noCa = { ...env };
    delete noCa[NODE_EXTRA_CA_CERTS];
    commands.push({ key: 'node -e, no CA', argv: [process.execPath, '-e', 'console.log(process.argv[1])', taskId], env: noCa });
  }
  // Without an AWS CLI the fleet rows are still measured; the ratio verdicts say why they are missing.
  if (!version.startsWith('not runnable')) {
    commands.push({ key: 'aws get-item', argv: [awsExecutable(env), 'dynamodb', 'get-item', '--table-name', names.tasksTable, '--key', JSON.stringify({ task_id: { S: taskId } }), '--consistent-read', '--output', 'json'] });
  }
  const baseline = options.baselineDir ? fleetCommand(options.baselineDir) : undefined;
  if (baseline) {
    commands.push({ key: 'baseline status', argv: [...baseline, 'status', taskId] }, { key: 'baseline list', argv: [...baseline, 'list'] });
  }
  const runs = new Map<CliCommandKey, Run[]>(commands.map((c) => [c.key, []]));
  const loadStart = formatLoad(loadAverage());
  for (let round = -2; round < rounds; round++) {
    const offset = ((round % commands.length) + commands.length) % commands.length;
    for (let i = 0; i < commands.length; i++) {
      const c = commands[(i + offset) % commands.length];
      const run = await timedRun(c.argv, c.env ?? env, taskId);
      if (round >= 0) runs.get(c.key)!.push(run);
    }
    if (round === -1) assertCodeCaches(env, built.dir);
  }
  const figures = commands.map((c): CliCommandFigures => {
    const r = runs.get(c.key)!;
    const walls = r.map((x) => x.wallMs);
    const rss = r.flatMap((x) => (x.maxRssKiB === undefined ? [] : [x.maxRssKiB / 1024]));
    const cpu = r.flatMap((x) => (x.cpuS === undefined ? [] : [x.cpuS]));
    return {
      key: c.key,
      argv: [...(c.env ? [`${NODE_EXTRA_CA_CERTS}=`] : []), ...c.argv.map((a) => (a === process.execPath ? 'node' : a.endsWith(`/${CLI_LAUNCHER}`) ? CLI_LAUNCHER : a.includes('/') ? path.basename(a) : a))],
      wallMs: summarize(walls),
      p90Ms: percentile([...walls].sort((a, b) => a - b), 90),
      ...(rss.length ? { maxRssMiB: summarize(rss) } : {}),
      ...(cpu.length ? { cpuS: summarize(cpu) } : {}),
    };
  });
  const aws = figures.find((f) => f.key === 'aws get-item');
  const verdicts = figures.filter((f) => f.key.startsWith('fleet ')).flatMap((f) => [
    { target: `${f.key}: median ≤ ${CLI_TARGET_MS} ms`, met: f.wallMs.median <= CLI_TARGET_MS, measured: `${f.wallMs.median.toFixed(0)} ms` },
    aws
      ? {
          target: `${f.key}: median ≤ 1/3 of aws get-item's`,
          met: f.wallMs.median <= aws.wallMs.median * CLI_TARGET_RATIO,
          measured: `${f.wallMs.median.toFixed(0)} ms vs ${(aws.wallMs.median * CLI_TARGET_RATIO).toFixed(0)} ms (aws ${aws.wallMs.median.toFixed(0)} ms, ratio ${(f.wallMs.median / aws.wallMs.median).toFixed(2)})`,
        }
      : { target: `${f.key}: median ≤ 1/3 of aws get-item's`, met: false, measured: `not compared: the AWS CLI is ${version}` },
  ]);
  return { rounds, bundleDir: built.dir, ...(options.baselineDir ? { baselineDir: options.baselineDir } : {}), bundleSeconds: built.seconds, awsVersion: version, commands: figures, load: { start: loadStart, end: formatLoad(loadAverage()) }, verdicts };
}

/** After the warm-up: the runs to time use the code cache (unless it is off, or the build predates it), or the figures would be an uncached CLI's. */
function assertCodeCaches(env: NodeJS.ProcessEnv, bundleDir: string): void {
  if (env.FLEET_NO_CODE_CACHE || !fs.existsSync(path.join(bundleDir, 'fleet-read.cjs'))) return;
  const dir = path.join(env.XDG_CACHE_HOME!, 'agent-fleet');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  for (const command of ['fleet-status', 'fleet-list']) {
    if (!files.some((f) => f.startsWith(`${command}-`) && f.endsWith('.v8cache'))) throw new Error(`no ${command} code cache in ${dir} after the warm-up rounds (FLEET_DEBUG=1 on the CLI says why)`);
  }
}

export function renderCliVsAws(r: CliVsAwsResult): string {
  const ms = (v: number) => `${v.toFixed(0)} ms`.padStart(8);
  const lines = [
    `CLI start-up vs the AWS CLI (${r.rounds} rounds, rotating order; ${r.awsVersion}; load average ${r.load.start} → ${r.load.end})`,
    `${'command'.padEnd(15)} ${'median'.padStart(8)} ${'p90'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}  ${'peak RSS (median / max)'.padEnd(24)} CPU s (median)`,
  ];
  for (const f of r.commands) {
    const rss = f.maxRssMiB ? `${f.maxRssMiB.median.toFixed(0)} / ${f.maxRssMiB.max.toFixed(0)} MiB` : 'n/a (no /usr/bin/time)';
    lines.push(`${f.key.padEnd(15)} ${ms(f.wallMs.median)} ${ms(f.p90Ms)} ${ms(f.wallMs.min)} ${ms(f.wallMs.max)}  ${rss.padEnd(24)} ${f.cpuS ? f.cpuS.median.toFixed(2) : 'n/a'}`);
  }
  for (const v of r.verdicts) lines.push(`  ${v.met ? 'met   ' : 'MISSED'}  ${v.target}: ${v.measured}`);
  const median = (key: CliCommandKey) => r.commands.find((c) => c.key === key)?.wallMs.median;
  const [floor, floorNoCa] = [median('node -e'), median('node -e, no CA')];
  if (floor !== undefined && floorNoCa !== undefined) {
    lines.push(`  (not judged) node alone starts in ${floor.toFixed(0)} ms here, ${floorNoCa.toFixed(0)} ms without ${NODE_EXTRA_CA_CERTS}, which bin/fleet.js leaves to the CLI's first TLS connection`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 20);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds: got ${process.argv[2]}, expected a positive integer`);
  const stackEnv = localStackEnv();
  const clients = createAwsClients();
  const fleet = await provisionFleet(clients, `clibench${Date.now().toString(36)}`, { instances: 1, minSize: 1, maxSize: 1 });
  const result = await cliVsAwsPhase({ clients, names: fleet, stackEnv, rounds, bundleDir: process.env.CLI_BENCH_BUNDLE_DIR, baselineDir: process.env.CLI_BENCH_BASELINE_DIR });
  console.log(renderCliVsAws(result));
  if (!process.env.CLI_BENCH_BUNDLE_DIR) fs.rmSync(result.bundleDir, { recursive: true, force: true });
}

if (require.main === module) runStandalone('cli-vs-aws', main);
