/**
 * fleetd as the bench runs it: the production artifact (the esbuild bundle `npm run bundle`
 * makes, built into a temp-dir cache so dist/ is left alone), as a real child process
 * acting as one instance of an isolated fleet, with the production timings (20 s long poll,
 * 30 s heartbeat). Its JSON log lines are kept with their own timestamps; its resident memory
 * and CPU time are read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FLEETD_ENTRIES, bundle } from '../../bundle';
import { fleetEnvironment, fleetdConfigFor, type FleetResources } from '../local/provision';
import { FLEET_ENV, FLEETD_NODE_FLAGS, FLEETD_PROCESS_ENV } from '../../../daemon/src/contract';
import { forEachLine } from './lines';
import { processCpuSeconds } from './machine';

export interface FleetdLogLine {
  readonly ts: number;
  readonly msg: string;
  readonly task_id?: string;
  readonly [key: string]: unknown;
}

export interface ProcSample {
  readonly at: number;
  /** Resident set size now and its peak (VmHWM), KiB. */
  readonly rssKiB: number;
  readonly hwmKiB: number;
  /** utime + stime, seconds. */
  readonly cpuSeconds: number;
}

/**
 * The node flags of an experiment's fleetd: the unit's (FLEETD_NODE_FLAGS; none with
 * RSS_NO_UNIT_FLAGS=1), then RSS_NODE_ARGS (space-separated), then `extra`.
 */
export function experimentNodeArgs(extra: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): string[] {
  return [...(env.RSS_NO_UNIT_FLAGS ? [] : FLEETD_NODE_FLAGS), ...(env.RSS_NODE_ARGS ?? '').split(' ').filter(Boolean), ...extra];
}

export interface BenchDaemonOptions {
  readonly name: string;
  /** The fleet's resources, with this daemon's own queue and instance. */
  readonly fleet: FleetResources;
  readonly instanceId: string;
  readonly slots: number;
  /** The local stack's environment (readEnvFile()). */
  readonly stackEnv: Record<string, string>;
  readonly bundlePath: string;
  readonly runDir: string;
  /** Replaces AWS_ENDPOINT_URL (a counting proxy). */
  readonly awsEndpoint?: string;
  /** Replaces DOCKER_HOST (a tracing proxy). */
  readonly dockerHost?: string;
  /** Control socket; default inside the daemon's run dir. */
  readonly socketPath?: string;
  /** What the systemd unit adds to the environment. @default FLEETD_PROCESS_ENV (an experiment may leave it out) */
  readonly processEnv?: Readonly<Record<string, string>>;
  /** Node / V8 flags before the bundle. @default FLEETD_NODE_FLAGS (as the instance's wrapper runs it) */
  readonly nodeArgs?: readonly string[];
}

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** A hash of everything the fleetd bundle is built from (daemon sources, lock file, bundler). */
function sourceHash(): string {
  const hash = createHash('sha256');
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) hash.update(p).update(fs.readFileSync(p));
    }
  };
  walk(path.join(ROOT, 'daemon', 'src'));
  for (const f of ['package-lock.json', 'scripts/bundle.ts']) hash.update(fs.readFileSync(path.join(ROOT, f)));
  return hash.digest('hex').slice(0, 16);
}

/**
 * fleetd's production bundle (the same esbuild options as `npm run bundle`), built into a
 * temp-dir cache keyed by a hash of its sources, so dist/ is never touched and a rerun on
 * unchanged sources does not pay the build again.
 */
export async function buildFleetdBundle(): Promise<{ path: string; seconds: number; cached: boolean }> {
  const dir = path.join(os.tmpdir(), 'agent-fleet-bench-bundle', sourceHash());
  const file = path.join(dir, 'fleetd.js');
  if (fs.existsSync(file)) return { path: file, seconds: 0, cached: true };
  const staging = `${dir}.${process.pid}`;
  const { seconds } = await bundle(FLEETD_ENTRIES, staging);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(staging, dir);
  return { path: file, seconds, cached: false };
}

/** RSS, peak RSS and CPU seconds of a process, from /proc (Linux). */
export function procSample(pid: number): ProcSample {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { at: Date.now(), rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM'), cpuSeconds: processCpuSeconds(pid) };
}

export class BenchDaemon {
  readonly lines: FleetdLogLine[] = [];
  readonly instanceId: string;
  /** Boots that failed and were retried (each one's error is in `lines`). */
  bootRetries = 0;
  private child?: ChildProcess;
  private exited?: Promise<number | null>;

  constructor(readonly o: BenchDaemonOptions) {
    this.instanceId = o.instanceId;
  }

  get pid(): number {
    if (!this.child?.pid) throw new Error(`fleetd ${this.o.name} is not running`);
    return this.child.pid;
  }

  start(): this {
    const dir = path.join(this.o.runDir, this.o.name);
    fs.mkdirSync(dir, { recursive: true });
    const configPath = path.join(dir, 'config.json');
    fs.writeFileSync(configPath, JSON.stringify(fleetdConfigFor(this.o.fleet, {
      slots: this.o.slots,
      workDir: path.join(dir, 'lib'),
      socketPath: this.o.socketPath ?? path.join(dir, 'run', 'fleetd.sock'),
      // The bench's temp disk is not an instance's data volume: keep the disk check from idling us.
      minFreeDiskBytes: 64 * 1024 * 1024,
      minFreeInodes: 1000,
    })));
    // The FLEET_* variables override the config file: they must name this daemon's queue too.
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.o.stackEnv, ...fleetEnvironment(this.o.fleet) };
    // Only the config file speaks for this daemon; per-service endpoints would bypass a proxy.
    for (const key of [FLEET_ENV.slots, FLEET_ENV.socket, FLEET_ENV.workDir, FLEET_ENV.allowedRegistries, FLEET_ENV.secretArnPrefix, FLEET_ENV.taskRoleArn]) delete env[key];
    for (const key of Object.keys(env)) if (key.startsWith('AWS_ENDPOINT_URL_')) delete env[key];
    Object.assign(env, {
      // As the systemd unit runs it (glibc trim threshold): production's memory, not a bare node's.
      ...(this.o.processEnv ?? FLEETD_PROCESS_ENV),
      AWS_EC2_METADATA_SERVICE_ENDPOINT: `${this.o.stackEnv.FLEET_LOCAL_IMDS_URL}/${this.instanceId}/`,
      [FLEET_ENV.config]: configPath,
      ...(this.o.awsEndpoint ? { AWS_ENDPOINT_URL: this.o.awsEndpoint } : {}),
      ...(this.o.dockerHost ? { DOCKER_HOST: this.o.dockerHost } : {}),
    });
    const child = spawn(process.execPath, [...(this.o.nodeArgs ?? FLEETD_NODE_FLAGS), this.o.bundlePath, 'run'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const onLine = (line: string) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        this.lines.push({ ...parsed, ts: Date.parse(String(parsed.ts)), msg: String(parsed.msg) });
      } catch {
        this.lines.push({ ts: Date.now(), msg: line });
      }
    };
    forEachLine(child.stdout!, onLine);
    forEachLine(child.stderr!, onLine);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    return this;
  }

  /** Starts fleetd and waits for "ready"; a failed boot (the shared machine starved it) is retried once. */
  async boot(timeoutMs = 60_000): Promise<number> {
    this.start();
    try {
      return await this.ready(timeoutMs);
    } catch (err) {
      if (this.child?.exitCode === null) throw err;
      this.bootRetries++;
      this.start();
      return this.ready(timeoutMs);
    }
  }

  async ready(timeoutMs = 60_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => /fleetd ready/.test(l.msg));
      if (hit) return hit.ts;
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) {
        throw new Error(`fleetd ${this.o.name} exited (${this.child.exitCode}) before it was ready:\n${this.tail()}`);
      }
      if (Date.now() > deadline) throw new Error(`fleetd ${this.o.name} not ready within ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  tail(n = 12): string {
    return this.lines.slice(-n).map((l) => JSON.stringify(l)).join('\n');
  }

  sample(): ProcSample {
    return procSample(this.pid);
  }

  /** SIGKILL: the bench's fleets are throwaway, and a drain would wait out a 20 s long poll. */
  async kill(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * A one-daemon bench script's body: on a failure, fleetd's last lines go to stderr before the
 * error; whatever happens, the daemon is killed, the engine-event stream closed and the run
 * directory removed.
 */
export async function withBenchDaemon<T>(daemon: BenchDaemon, cleanup: { events: { close(): void }; runDir: string }, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    console.error(`fleetd's last lines:\n${daemon.tail(20)}`);
    throw err;
  } finally {
    await daemon.kill();
    cleanup.events.close();
    fs.rmSync(cleanup.runDir, { recursive: true, force: true });
  }
}
