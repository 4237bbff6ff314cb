/**
 * What the figures were measured on: cores, load average (the machine is shared, so it is
 * sampled at the start and the end of every phase), and the versions of node, dockerd and moto.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type Docker from 'dockerode';
import { readState } from '../local/stack';

export interface MachineInfo {
  readonly cores: number;
  readonly cpuModel: string;
  readonly memTotalMiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly docker: string;
  readonly moto: string;
}

export type LoadAverage = readonly [number, number, number];

export function loadAverage(): LoadAverage {
  const [a, b, c] = os.loadavg();
  return [round2(a), round2(b), round2(c)];
}

export function formatLoad(l: LoadAverage): string {
  return l.map((v) => v.toFixed(2)).join(' ');
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

/** moto's version, asked of the Python interpreter that runs the local stack's moto server. */
function motoVersion(): string {
  const state = readState().moto;
  if (!state) return 'unknown (no local stack state)';
  try {
    const argv = fs.readFileSync(`/proc/${state.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const python = argv.find((a) => /python[0-9.]*$/.test(a)) ?? 'python3';
    const version = execFileSync(python, ['-c', 'import moto; print(moto.__version__)'], { encoding: 'utf8', timeout: 20_000 }).trim();
    return `${version} (${state.flavour})`;
  } catch (err) {
    return `unknown (${(err as Error).message.split('\n')[0]})`;
  }
}

export async function machineInfo(docker: Docker): Promise<MachineInfo> {
  const cpus = os.cpus();
  let dockerVersion: string;
  try {
    const v = await docker.version();
    dockerVersion = `${v.Version} (API ${v.ApiVersion})`;
  } catch (err) {
    dockerVersion = `unknown (${(err as Error).message})`;
  }
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memTotalMiB: Math.round(os.totalmem() / 1024 / 1024),
    kernel: os.release(),
    node: process.version,
    docker: dockerVersion,
    moto: motoVersion(),
  };
}

/**
 * CPU seconds the whole machine has spent busy since boot (/proc/stat's first line: user, nice,
 * system, irq, softirq, steal; not idle or iowait), every process on every core together.
 */
export function machineBusyCpuSeconds(): number {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return (user + nice + system + irq + softirq + (steal ?? 0)) / clockTicksPerSecond();
}

let clockTicks: number | undefined;

/** USER_HZ, the unit of /proc's CPU times (getconf CLK_TCK; 100 on Linux if unknown). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU seconds (user + system) of one process so far, or NaN when it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3; utime/stime are 14/15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/** The local stack's moto server's pid (its state file), or undefined. */
export function motoPid(): number | undefined {
  return readState().moto?.pid;
}
