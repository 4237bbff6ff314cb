/**
 * Out-of-memory detection that does not depend on Docker's `State.OOMKilled` alone. On some
 * kernels (this project's CI machines among them: verified with Docker 20.10 on cgroup v1) the
 * engine never sets the flag, so a job killed by the OOM killer would look like a plain exit 137.
 * While the container runs, fleetd reads its memory cgroup every 500 ms: the kernel's own
 * `oom_kill` counter (memory.oom_control on v1, memory.events on v2) and the peak usage.
 */
import * as fs from 'node:fs';

const CANDIDATES = (id: string) => [
  `/sys/fs/cgroup/memory/docker/${id}`,
  `/sys/fs/cgroup/memory/system.slice/docker-${id}.scope`,
  `/sys/fs/cgroup/system.slice/docker-${id}.scope`,
  `/sys/fs/cgroup/docker/${id}`,
];

function readCounter(file: string, key: string): number | undefined {
  try {
    const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(fs.readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function readNumber(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

export class OomWatch {
  private dir?: string;
  private timer?: NodeJS.Timeout;
  oomKills = 0;
  peakBytes = 0;

  constructor(private readonly containerId: string) {}

  start(intervalMs = 500): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
    return this;
  }

  sample(): void {
    this.dir ??= CANDIDATES(this.containerId).find((d) => fs.existsSync(d));
    if (!this.dir) return;
    const kills = readCounter(`${this.dir}/memory.oom_control`, 'oom_kill') ?? readCounter(`${this.dir}/memory.events`, 'oom_kill');
    if (kills !== undefined) this.oomKills = Math.max(this.oomKills, kills);
    const peak = readNumber(`${this.dir}/memory.max_usage_in_bytes`) ?? readNumber(`${this.dir}/memory.peak`);
    if (peak !== undefined) this.peakBytes = Math.max(this.peakBytes, peak);
  }

  stop(): void {
    this.sample();
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Killed for memory: the engine says so, or the kernel counted an OOM kill in the container's
   * cgroup, or it died of SIGKILL (137) that fleetd did not send while at ≥ 90% of its limit.
   */
  verdict(engineFlag: boolean, exitCode: number, limitBytes: number, weSentKill: boolean): boolean {
    if (engineFlag || this.oomKills > 0) return true;
    return exitCode === 137 && !weSentKill && this.peakBytes >= 0.9 * limitBytes;
  }
}
