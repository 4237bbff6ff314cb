/**
 * Runs fleetd as a real child process (bin/fleetd.js) acting as one instance of a test fleet:
 * its own config file, work dir, control socket and IMDS identity. Keeps every stdout line so a
 * test can assert on fleetd's JSON logs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FleetdConfigFileInput } from '../../../daemon/src/contract';
import { unmountOutputDisk } from '../../../daemon/src/output-disk';
import { instanceDir } from '../local/paths';
import { fleetdConfigFor } from '../local/provision';
import type { TestFleet } from './fleet';

const FLEETD = path.join(__dirname, '..', '..', '..', 'bin', 'fleetd.js');

/** Short timings so lease expiry and takeover happen within a test. */
export const FAST_TIMINGS = { longPollSeconds: 1, heartbeatSeconds: 1, instanceHeartbeatSeconds: 3, leaseSeconds: 6, cancelGraceSeconds: 2 };

/**
 * This test file's daemons. A test that kills fleetd mid-task (kill9, no restart) leaves that
 * task's output disk (daemon/src/output-disk.ts) mounted; after the file's tests, the output
 * disks of daemons that are no longer running, and only those, are unmounted.
 */
const daemons = new Set<TestDaemon>();
function unmountDeadDaemonsDisks(): void {
  for (const d of daemons) {
    if (d.running) continue;
    const tasks = path.join(d.workDir, 'lib', 'tasks');
    for (const task of fs.existsSync(tasks) ? fs.readdirSync(tasks) : []) {
      try {
        unmountOutputDisk(path.join(tasks, task, 'output'));
      } catch {
        // best effort: the next prune of that dir would unmount it too
      }
    }
  }
}
// A top-level hook of each test file that imports the harness (jest's afterAll, when present).
(globalThis as { afterAll?: (fn: () => void) => void }).afterAll?.(unmountDeadDaemonsDisks);

export interface TestDaemonOptions {
  /**
   * Listen where the local SSM agent delivers cancels for this instance
   * (instanceDir(instanceId)/fleetd.sock), so `fleet cancel` reaches it through SSM.
   * @default false: a socket in the daemon's own temp dir, out of SSM's reach
   */
  readonly ssmReachable?: boolean;
}

export class TestDaemon {
  readonly lines: string[] = [];
  readonly workDir: string;
  readonly socketPath: string;
  private child?: ChildProcess;
  private exited?: Promise<number | null>;

  constructor(
    readonly fleet: TestFleet,
    readonly instanceId: string,
    private readonly overrides: Partial<FleetdConfigFileInput> = {},
    private readonly extraEnv: Record<string, string> = {},
    options: TestDaemonOptions = {},
  ) {
    this.workDir = fs.mkdtempSync(path.join(os.tmpdir(), `fleetd-${instanceId}-`));
    daemons.add(this);
    this.socketPath = options.ssmReachable ? path.join(instanceDir(instanceId), 'fleetd.sock') : path.join(this.workDir, 'run', 'fleetd.sock');
  }

  start(): this {
    const configPath = path.join(this.workDir, 'config.json');
    const config = fleetdConfigFor(this.fleet.resources, {
      workDir: path.join(this.workDir, 'lib'),
      socketPath: this.socketPath,
      minFreeDiskBytes: 64 * 1024 * 1024,
      minFreeInodes: 1000,
      ...this.overrides,
      timings: { ...FAST_TIMINGS, ...(this.overrides.timings ?? {}) },
    });
    fs.writeFileSync(configPath, JSON.stringify(config));
    const child = spawn(process.execPath, [FLEETD, 'run'], {
      env: {
        ...process.env,
        ...this.fleet.env,
        AWS_EC2_METADATA_SERVICE_ENDPOINT: `${this.fleet.imdsUrl}/${this.instanceId}/`,
        FLEETD_CONFIG: configPath,
        ...this.extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    // One line buffer per stream: a chunk of stderr (a node warning) arriving between two chunks
    // of one stdout line must not cut that line in two.
    const lineReader = () => {
      let partial = '';
      return (c: Buffer) => {
        partial += c.toString();
        const parts = partial.split('\n');
        partial = parts.pop() ?? '';
        this.lines.push(...parts.filter(Boolean));
      };
    };
    child.stdout!.on('data', lineReader());
    child.stderr!.on('data', lineReader());
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    return this;
  }

  /** A new fleetd process for the same instance, config and work dir (after kill9 or stop). */
  restart(): this {
    return this.start();
  }

  /** A fleetd process of this daemon is alive (started, not exited). */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Resolves once fleetd logged that it polls for tasks. */
  async ready(timeoutMs = 30_000): Promise<void> {
    await this.waitForLog(/fleetd ready/, timeoutMs);
  }

  async waitForLog(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => pattern.test(l));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`fleetd ${this.instanceId}: no log line matching ${pattern} within ${timeoutMs} ms; last lines:\n${this.lines.slice(-15).join('\n')}`);
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) throw new Error(`fleetd ${this.instanceId} exited (${this.child.exitCode}); last lines:\n${this.lines.slice(-15).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  kill9(): Promise<number | null> {
    this.child?.kill('SIGKILL');
    return this.exited ?? Promise.resolve(null);
  }

  /** SIGTERM and wait for the exit code. */
  async stop(timeoutMs = 60_000): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null) return this.child?.exitCode ?? null;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs);
    const code = await this.exited!;
    clearTimeout(timer);
    return code;
  }

  waitForExit(): Promise<number | null> {
    return this.exited ?? Promise.resolve(null);
  }
}
