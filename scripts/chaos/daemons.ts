/**
 * The chaos run's fleetd processes: real `bin/fleetd.js` children (test/helpers/daemon.ts),
 * each acting as one instance of the run's fleet, reaching AWS only through the fault proxy.
 * Every exit the suite did not cause itself (kill -9, SIGTERM) is recorded as a crash.
 */
import * as fs from 'node:fs';
import type Docker from 'dockerode';
import { CONTAINER_LABELS } from '../../daemon/src/contract';
import { TestDaemon } from '../../test/helpers/daemon';
import type { TestFleet } from '../../test/helpers/fleet';
import type { FaultProxy } from './fault-proxy';

/** Short enough that takeovers happen within a run, long enough for a loaded 2-core machine. */
export const CHAOS_TIMINGS = { longPollSeconds: 2, heartbeatSeconds: 3, leaseSeconds: 24, cancelGraceSeconds: 2 } as const;

export interface DaemonCrash {
  readonly instanceId: string;
  readonly code: number | null;
  readonly lastLines: string[];
}

export class ChaosDaemon {
  private daemon: TestDaemon;
  private expectingExit = false;
  alive = false;

  constructor(
    fleet: TestFleet,
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
    this.daemon = new TestDaemon(fleet, instanceId, overrides, { AWS_ENDPOINT_URL: proxy.url });
  }

  get lines(): string[] {
    return this.daemon.lines;
  }

  start(): this {
    this.expectingExit = false;
    this.daemon.start();
    this.alive = true;
    void this.daemon.waitForExit().then((code) => {
      this.alive = false;
      if (!this.expectingExit) this.crashes.push({ instanceId: this.instanceId, code, lastLines: this.daemon.lines.slice(-20) });
    });
    return this;
  }

  ready(timeoutMs = 60_000): Promise<void> {
    return this.daemon.ready(timeoutMs);
  }

  async kill9(): Promise<void> {
    this.expectingExit = true;
    await this.daemon.kill9();
  }

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
