/**
 * The chaos run's fleetd processes: real `bin/fleetd.js` children (scripts/dev/harness/daemon.ts),
 * each acting as one instance of the run's fleet, reaching AWS only through the fault proxy.
 * Every exit the suite did not cause itself (kill -9, SIGTERM) is recorded as a crash.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Docker from 'dockerode';
import { CONTAINER_LABELS } from '../../../daemon/src/contract';
import { TestDaemon } from '../harness/daemon';
import type { TestFleet } from '../harness/fleet';
import type { FaultProxy } from './fault-proxy';

const FLEETD_BIN = path.join(__dirname, '..', '..', '..', 'bin', 'fleetd.js');

/** Short enough that takeovers happen within a run, long enough for a loaded 2-core machine. */
export const CHAOS_TIMINGS = { longPollSeconds: 2, heartbeatSeconds: 4, leaseSeconds: 40, cancelGraceSeconds: 2 } as const;

export interface DaemonCrash {
  readonly instanceId: string;
  readonly code: number | null;
  readonly lastLines: string[];
  /** The exit was a failed boot (preflight), which systemd restarts: not a crash on input. */
  readonly bootFailure: boolean;
}

export class ChaosDaemon {
  private daemon: TestDaemon;
  private expectingExit = false;
  alive = false;

  constructor(
    private readonly fleet: TestFleet,
    readonly instanceId: string,
    slots: number,
    proxy: FaultProxy,
    private readonly crashes: DaemonCrash[],
  ) {
    const overrides = {
      slots,
      queueUrl: proxy.via(fleet.resources.queueUrl),
      dlqUrl: proxy.via(fleet.resources.dlqUrl),
      drainBudgetSeconds: 3,
      timings: CHAOS_TIMINGS,
    };
    // FLEET_* variables override the config file (fleetd's design): the queue URLs must point at
    // the proxy there too, or the SQS client would use the queue URL's host and bypass it.
    this.daemon = new TestDaemon(fleet, instanceId, overrides, { AWS_ENDPOINT_URL: proxy.url, FLEET_QUEUE_URL: overrides.queueUrl, FLEET_DLQ_URL: overrides.dlqUrl });
  }

  get lines(): string[] {
    return this.daemon.lines;
  }

  start(): this {
    this.expectingExit = false;
    this.daemon.start();
    this.alive = true;
    const from = this.daemon.lines.length;
    void this.daemon.waitForExit().then((code) => {
      this.alive = false;
      if (this.expectingExit) return;
      const lines = this.daemon.lines.slice(from);
      const bootFailure = lines.some((l) => /fleetd could not start/.test(l)) && !lines.some((l) => /fleetd ready/.test(l));
      this.crashes.push({ instanceId: this.instanceId, code, lastLines: lines.slice(-20), bootFailure });
      // systemd's Restart=on-failure (RestartSec=10s): a failed boot is tried again.
      if (bootFailure && !this.retired) setTimeout(() => !this.retired && !this.alive && this.start(), 10_000);
    });
    return this;
  }

  /**
   * The instance's lease guard (`fleetd guard`), as its systemd timer runs it: apart from
   * fleetd, so a fleetd that is down does not take it down. Every 2 s here (10 s in production,
   * against a 10 s margin here and 30 s there).
   */
  startGuard(): void {
    if (this.guard) return;
    const guard = spawn(process.execPath, [FLEETD_BIN, 'guard', '--every', '2'], {
      env: { ...process.env, ...this.fleet.env, FLEETD_CONFIG: path.join(this.daemon.workDir, 'config.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (c: Buffer) => {
      for (const line of c.toString().split('\n')) if (/stopped a container/.test(line)) this.guardActions.push(line);
    };
    guard.stdout.on('data', keep);
    guard.stderr.on('data', keep);
    this.guard = guard;
  }

  stopGuard(): void {
    this.guard?.kill('SIGKILL');
    this.guard = undefined;
  }

  private guard?: ChildProcess;
  /** The guard's log lines for each container it stopped. */
  readonly guardActions: string[] = [];

  ready(timeoutMs = 60_000): Promise<void> {
    return this.daemon.ready(timeoutMs);
  }

  async kill9(): Promise<void> {
    this.expectingExit = true;
    await this.daemon.kill9();
  }

  /** No more restarts after a failed boot (end of the run). */
  retired = false;

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.expectingExit = true;
    await this.daemon.stop(60_000);
  }

  removeWorkDir(): void {
    fs.rmSync(this.daemon.workDir, { recursive: true, force: true });
  }
}

/** Containers of these instances, any state (for instance death and the final cleanup). */
export async function removeContainersOf(docker: Docker, instanceIds: readonly string[]): Promise<number> {
  let removed = 0;
  for (const id of instanceIds) {
    const list = await docker.listContainers({ all: true, filters: { label: [`${CONTAINER_LABELS.instanceId}=${id}`] } }).catch(() => []);
    for (const c of list) {
      await docker.getContainer(c.Id).remove({ force: true }).then(() => removed++, () => undefined);
    }
  }
  return removed;
}
