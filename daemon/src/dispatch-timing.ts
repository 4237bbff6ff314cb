/**
 * Per-phase dispatch timings of one attempt (contract/record.ts `DispatchTimingsSchema`,
 * docs/scaling.md "Dispatch timings"): message sent → claim begins (queue wait, the receive
 * included), the claim, image lookup and pull, container create, container start. Measured
 * with this instance's clock; the send time is the record's `message_sent_at` (the submitter's
 * clock), or `created_at` when the record has none.
 */
import type { DispatchTimings, TaskRecord } from './contract';

/** What the receiver measured around the claim (receiver.ts). */
export interface ClaimTiming {
  /** Epoch ms when this fleetd began the claim. */
  readonly startedAt: number;
  /** Epoch ms when the claim's write had landed. */
  readonly endedAt: number;
}

export class DispatchClock {
  private readonly t: { queue_wait_ms: number; claim_ms: number; image_pull_ms: number; image_pulled: boolean; container_create_ms: number; container_start_ms?: number };

  constructor(record: Pick<TaskRecord, 'message_sent_at' | 'created_at'>, claim: ClaimTiming) {
    const sentAt = record.message_sent_at ?? record.created_at;
    this.t = {
      queue_wait_ms: Math.max(0, Math.round(claim.startedAt - sentAt)),
      claim_ms: Math.max(0, Math.round(claim.endedAt - claim.startedAt)),
      image_pull_ms: 0,
      image_pulled: false,
      container_create_ms: 0,
    };
  }

  /** Runs `fn`, adding its duration to the phase. */
  async time<T>(phase: 'image_pull_ms' | 'container_create_ms' | 'container_start_ms', fn: () => Promise<T>): Promise<T> {
    const start = Date.now();
    try {
      return await fn();
    } finally {
      this.t[phase] = (this.t[phase] ?? 0) + (Date.now() - start);
    }
  }

  pulled(yes: boolean): void {
    this.t.image_pulled = yes;
  }

  get timings(): DispatchTimings {
    return { ...this.t };
  }
}
