/**
 * The fleet's agent images on the engine before a task needs them (config `prepullImages`,
 * docs/lifecycle.md "Readiness"):
 * - at readiness (every boot, and when the instance leaves the warm pool): each image pulled,
 *   retried with backoff until the readiness deadline; a policy refusal (a registry not in
 *   allowedRegistries, a local-only image that is absent) fails at once;
 * - then every `prepullRefreshSeconds` (1800 s, ±10 % jitter so a fleet started together does
 *   not hit the registry at once): pulled again, so a moved tag brings its newest digest to a
 *   long-lived instance. A failed refresh is logged and tried at the next tick; the image
 *   already there stays. The old digest becomes dangling and the scheduled prune removes it.
 * Prepulled images are never recorded as used by a task, so the prune leaves them alone.
 */
import type { Logger } from './log';
import { backoffDelayMs, sleep } from './retry';
import { ImagePolicyError } from './image-policy';
import type { ContainerRunner } from './runner';

export interface PrepullDeps {
  readonly runner: Pick<ContainerRunner, 'ensureImage'>;
  readonly images: readonly string[];
  /** 0: no refresh. */
  readonly refreshSeconds: number;
  readonly log: Logger;
}

export interface PrepullStatus {
  readonly at: number;
  /** Per image: present, pulled, or the error. */
  readonly images: Record<string, string>;
}

export class Prepuller {
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  last?: PrepullStatus;

  constructor(private readonly d: PrepullDeps) {}

  /** One pass over the images; the first problem, and whether retrying cannot help. */
  async pullAll(refresh: boolean): Promise<{ problem?: string; permanent?: boolean }> {
    const images: Record<string, string> = {};
    try {
      for (const image of this.d.images) {
        const start = Date.now();
        try {
          images[image] = await this.d.runner.ensureImage(image, { refresh });
          this.d.log.info('prepull: image ready', { image, outcome: images[image], ms: Date.now() - start });
        } catch (err) {
          images[image] = (err as Error).message;
          return { problem: `prepull of ${image} failed: ${(err as Error).message}`, permanent: err instanceof ImagePolicyError };
        }
      }
      return {};
    } finally {
      this.last = { at: Date.now(), images };
    }
  }

  /** Pulls every image, retrying until `deadline` (epoch ms); the problem when it could not. */
  async prepare(deadline: number, signal?: AbortSignal): Promise<string | undefined> {
    for (let attempt = 0; ; attempt++) {
      const { problem, permanent } = await this.pullAll(true);
      if (!problem) return undefined;
      const wait = backoffDelayMs(attempt, 1000, 30_000);
      if (permanent || Date.now() + wait >= deadline || signal?.aborted) return problem;
      this.d.log.warn('prepull failed; retrying', { problem, retry_in_ms: wait });
      await sleep(wait, signal);
    }
  }

  /** The refresh timer. */
  start(): void {
    if (this.loop || !this.d.images.length || this.d.refreshSeconds <= 0) return;
    this.loop = (async () => {
      while (!this.abort.signal.aborted) {
        await sleep(this.d.refreshSeconds * 1000 * (0.9 + Math.random() * 0.2), this.abort.signal);
        if (this.abort.signal.aborted) return;
        const { problem } = await this.pullAll(true);
        if (problem) this.d.log.warn('prepull refresh failed; the image on the engine stays, next try at the next tick', { problem });
      }
    })();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }
}
