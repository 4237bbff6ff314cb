/**
 * Builds the demo agent image through dockerode's buildImage, with no registry: FROM scratch
 * plus Debian's busybox-static (installed when missing).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type Docker from 'dockerode';
import { aptInstall } from './docker-engine';

export const DEMO_IMAGE = 'agent-fleet/demo-agent:latest';
const CONTEXT_SOURCE = path.join(__dirname, 'demo-image');
const BUSYBOX = '/bin/busybox';

export async function imageExists(docker: Docker, name: string): Promise<boolean> {
  try {
    await docker.getImage(name).inspect();
    return true;
  } catch {
    return false;
  }
}

/** Hash of the build context we own, stored as a label: a changed agent.sh rebuilds the image. */
function contextHash(): string {
  const h = createHash('sha256');
  for (const f of fs.readdirSync(CONTEXT_SOURCE).sort()) h.update(f).update(fs.readFileSync(path.join(CONTEXT_SOURCE, f)));
  return h.digest('hex').slice(0, 16);
}
const HASH_LABEL = 'agent-fleet.context-hash';

/** Builds the image when absent or out of date (or when `force`); returns its name. */
export async function ensureDemoImage(docker: Docker, force = false): Promise<string> {
  const hash = contextHash();
  if (!force) {
    const current = await docker.getImage(DEMO_IMAGE).inspect().catch(() => undefined);
    if (current?.Config?.Labels?.[HASH_LABEL] === hash) return DEMO_IMAGE;
  }
  // Only the static build runs in an empty image; Debian's plain `busybox` is dynamic.
  if (spawnSync('dpkg', ['-s', 'busybox-static'], { stdio: 'ignore' }).status !== 0) aptInstall(['busybox-static']);
  const context = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-demo-image-'));
  try {
    for (const f of fs.readdirSync(CONTEXT_SOURCE)) fs.copyFileSync(path.join(CONTEXT_SOURCE, f), path.join(context, f));
    fs.copyFileSync(BUSYBOX, path.join(context, 'busybox'));
    fs.chmodSync(path.join(context, 'busybox'), 0o755);
    const stream = await docker.buildImage({ context, src: ['Dockerfile', 'busybox', 'agent.sh'] }, { t: DEMO_IMAGE, rm: true, forcerm: true, labels: { [HASH_LABEL]: hash } });
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) => {
        const failed = output?.find((o) => o.error);
        if (err || failed) reject(new Error(`building ${DEMO_IMAGE} failed: ${err?.message ?? failed?.error}`));
        else resolve();
      });
    });
  } finally {
    fs.rmSync(context, { recursive: true, force: true });
  }
  return DEMO_IMAGE;
}
