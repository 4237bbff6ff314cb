/**
 * The floor fleetd's memory is compared with: a bare `node -e` process (an interval, nothing
 * loaded) on the same machine, same Node, same environment as fleetd's unit adds
 * (FLEETD_PROCESS_ENV), sampled like fleetd (VmRSS from /proc every 0.5 s after it settled).
 */
import { spawn } from 'node:child_process';
import { FLEETD_PROCESS_ENV } from '../../../daemon/src/contract';
import { sleep } from '../../../daemon/src/retry';
import { procSample } from './fleetd-process';
import { summarize, type Summary } from './stats';

export interface BareNodeResult {
  readonly rssMiB: Summary;
}

export async function bareNodeRss(options: { settleMs?: number; samples?: number; env?: Readonly<Record<string, string>> } = {}): Promise<BareNodeResult> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { env: { ...process.env, ...(options.env ?? FLEETD_PROCESS_ENV) }, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    await sleep(options.settleMs ?? 2000);
    const values: number[] = [];
    for (let i = 0; i < (options.samples ?? 6); i++) {
      values.push(procSample(child.pid!).rssKiB / 1024);
      await sleep(500);
    }
    return { rssMiB: summarize(values) };
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}
