/**
 * The receive gates: conditions the receive loop checks before every receive, kept beside fleetd's
 * state (fleetd-state.ts says why they are not states). docs/lifecycle.md "Disk" and "Docker
 * engine outages".
 * - Disk: free bytes and inodes of the work dir and Docker's data root. Short: nothing is
 *   received, a prune starts at once (at most every 5 min).
 * - Engine: Docker's /_ping (a local socket, ~1 ms). Not answering: nothing is claimed (a claim
 *   could only be released again). The first answer afterwards runs `onEngineBack` (recovery's
 *   sweep of containers no run supervises) before claiming resumes.
 */
import type Docker from 'dockerode';
import { diskShortage } from './disk';
import { dockerAnswers } from './docker';
import type { ReceiveGates } from './fleetd-state';
import type { Logger } from './log';

export interface ReceiveGateOptions {
  readonly docker: Docker;
  readonly minFreeDiskBytes: number;
  readonly minFreeInodes: number;
  readonly log: Logger;
  /** Starts a prune now (the disk is short). */
  readonly prune: () => Promise<unknown>;
  /** Runs once when the engine answers again after trouble. */
  readonly onEngineBack: () => Promise<void>;
}

/** At most one disk-short prune per this interval. */
const DISK_PRUNE_EVERY_MS = 5 * 60_000;
/**
 * A ping that answered this recently, with no trouble reported since, stands for the next
 * receive: with busy slots every freed slot ran the loop and pinged, one engine request per task
 * (issue #18). Far below the 20 s long poll that follows any ping anyway.
 */
const ENGINE_ANSWER_FRESH_MS = 1000;

export class ReceiveGateChecks implements ReceiveGates {
  disk?: string;
  engine?: string;
  /** When the last ping answered (ENGINE_ANSWER_FRESH_MS). */
  private answeredAt = 0;
  /** Set by preflight: the work dir and Docker's data root. */
  diskPaths: string[] = [];
  private lastDiskPrune = 0;

  constructor(private readonly o: ReceiveGateOptions) {}

  /** Re-checks the disk; on a shortage, logs and prunes (at most every 5 min). */
  checkDisk(): string | undefined {
    this.disk = diskShortage(this.diskPaths, this.o.minFreeDiskBytes, this.o.minFreeInodes);
    if (this.disk) {
      const now = Date.now();
      if (now - this.lastDiskPrune >= DISK_PRUNE_EVERY_MS) {
        this.lastDiskPrune = now;
        this.o.log.warn('not claiming: disk short; pruning now', { problem: this.disk });
        void this.o.prune().catch((err) => this.o.log.warn('prune failed', { error: err }));
      }
    }
    return this.disk;
  }

  /** True when the engine answers; the first answer after trouble runs `onEngineBack`. */
  async engineAnswers(): Promise<boolean> {
    if (!this.engine && Date.now() - this.answeredAt < ENGINE_ANSWER_FRESH_MS) return true;
    const answers = await dockerAnswers(this.o.docker, 2000);
    if (answers) this.answeredAt = Date.now();
    if (!answers) {
      if (!this.engine) this.engineTrouble('the Docker engine does not answer /_ping');
      return false;
    }
    if (this.engine) {
      const was = this.engine;
      this.engine = undefined;
      this.o.log.info('the Docker engine answers again: claiming resumes', { was });
      await this.o.onEngineBack();
    }
    return true;
  }

  /** Reported by a task run (a connection failure) or by the ping. */
  engineTrouble(problem: string): void {
    this.answeredAt = 0;
    if (!this.engine) this.o.log.warn('not claiming: the Docker engine is not answering', { problem });
    this.engine = problem;
  }
}
