/**
 * Background processes of the local stack: started detached with their output in
 * .fleet/logs/<name>.log, tracked by PID, and stopped only when /proc confirms the PID still
 * runs the command we started (a recycled PID is never killed).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { LOG_DIR } from './paths';

export function logFile(name: string): string {
  return path.join(LOG_DIR, `${name}.log`);
}

export function spawnDetached(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const out = fs.openSync(logFile(name), 'a');
  const child = spawn(command, args, { detached: true, stdio: ['ignore', out, out], env });
  fs.closeSync(out);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command}): see ${logFile(name)}`);
  child.unref();
  return child.pid;
}

export function isAlive(pid: number | undefined): pid is number {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not reaped by a parent that is us) counts as dead.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return true;
  }
}

export function commandLineOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** True when `pid` runs and its command line contains `marker`. */
export function isOurProcess(pid: number | undefined, marker: string): pid is number {
  return isAlive(pid) && commandLineOf(pid).includes(marker);
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not ready yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Only if the PID still runs our command. */
export async function stopProcess(pid: number | undefined, marker: string, graceMs = 10_000): Promise<boolean> {
  if (!isOurProcess(pid, marker)) return false;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(50);
  }
  return true;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export async function httpOk(url: string, init?: RequestInit): Promise<boolean> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(2000) });
    return res.status < 500;
  } catch {
    return false;
  }
}
