/**
 * How a task's container is confined beyond its memory, CPU and pids limits (docs/security.md,
 * "Confinement"): the capability set, what the engine does with user namespaces and disk
 * limits (read once from `docker info`), and the reason a task gets when it hit its disk bound.
 */
import type Docker from 'dockerode';
import { CONTAINER_LABELS, CONTAINER_LABEL_MANAGED_BY_VALUE } from './contract';

/** Where the container sees its files. */
export const CONTAINER_PAYLOAD_PATH = '/fleet/payload.json';
export const CONTAINER_OUTPUT_DIR = '/fleet/output';

/**
 * The capabilities a task's container keeps; every other one is dropped (CapDrop ALL). Docker's
 * default set minus MKNOD, NET_RAW, NET_BIND_SERVICE, SETFCAP, SETPCAP, SYS_CHROOT, AUDIT_WRITE
 * and FSETID; each kept one is there for a common agent image (docs/security.md has the why).
 */
export const TASK_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETUID', 'SETGID', 'KILL'] as const;

/** What fleetd needs to know about the engine to confine a task. */
export interface EngineFacts {
  /** dockerd runs with userns-remap: container root is an unprivileged host uid. */
  readonly userns: boolean;
  /** The host uid/gid of the container's root user (0/0 without remapping). */
  readonly rootUid: number;
  readonly rootGid: number;
  /**
   * The engine can bound disk itself: the storage driver takes `StorageOpt: { size }` and the
   * local volume driver a `size` option (overlay2 on xfs; both also need the pquota mount
   * option, which `docker info` does not show: a refusal at create turns this off).
   */
  readonly sizeLimit: boolean;
}

/** The subset of `docker info` read here. */
export interface EngineInfo {
  readonly SecurityOptions?: readonly string[] | null;
  readonly DockerRootDir?: string;
  readonly Driver?: string;
  readonly DriverStatus?: ReadonlyArray<readonly [string, string]> | null;
}

/**
 * Facts from `docker info`. Remapping shows as `name=userns` in SecurityOptions; the remapped
 * root's ids are in the data root's last component (`/var/lib/docker/100000.100000`), which is
 * how dockerd names the per-remapping root.
 */
export function engineFacts(info: EngineInfo): EngineFacts {
  const userns = (info.SecurityOptions ?? []).some((o) => /(^|,)name=userns(,|$)/.test(o));
  let rootUid = 0;
  let rootGid = 0;
  if (userns) {
    const ids = /(?:^|\/)(\d+)\.(\d+)\/?$/.exec(info.DockerRootDir ?? '');
    if (!ids) throw new Error(`the engine remaps user namespaces but its root dir (${info.DockerRootDir ?? 'none'}) does not name the remapped uid.gid`);
    rootUid = Number(ids[1]);
    rootGid = Number(ids[2]);
  }
  const backing = (info.DriverStatus ?? []).find(([k]) => k === 'Backing Filesystem')?.[1];
  const sizeLimit = info.Driver === 'overlay2' && backing === 'xfs';
  return { userns, rootUid, rootGid, sizeLimit };
}

/** Reads the engine's facts once per engine; a failed read is retried on the next call. */
export class EngineConfinement {
  private facts?: Promise<EngineFacts>;
  private sizeRefused = false;

  constructor(private readonly docker: Docker) {}

  async get(): Promise<EngineFacts> {
    this.facts ??= this.docker.info().then((info: EngineInfo) => engineFacts(info));
    try {
      const facts = await this.facts;
      return this.sizeRefused ? { ...facts, sizeLimit: false } : facts;
    } catch (err) {
      this.facts = undefined;
      throw err;
    }
  }

  /** The engine refused a size at create (no pquota): stop asking. */
  refuseSize(): void {
    this.sizeRefused = true;
  }
}

/** True for the engine's refusal of `storage-opt size` (overlay2 without xfs pquota, other drivers). */
export function isStorageOptRefusal(err: unknown): boolean {
  const e = err as { statusCode?: number; message?: string } | undefined;
  return typeof e?.statusCode === 'number' && e.statusCode >= 400 && /storage[- ]?opt|pquota|quota/i.test(e.message ?? '');
}

/**
 * The security and disk part of a task container's HostConfig. Where the engine bounds disk
 * (`sizeLimit`), the writable layer gets `StorageOpt size` and /fleet/output is an anonymous
 * local volume with a `size` (an xfs project quota dockerd sets; removed with the container);
 * elsewhere /fleet/output is the bind-mounted `outputDir` (bounded by fleetd's own output disk,
 * output-disk.ts, where the host lets it make one).
 */
export function confinedHostConfig(args: { diskMb: number; sizeLimit: boolean; payloadFile: string; outputDir: string }): Pick<Docker.HostConfig, 'SecurityOpt' | 'CapDrop' | 'CapAdd' | 'StorageOpt' | 'Binds' | 'Mounts'> {
  const payload = `${args.payloadFile}:${CONTAINER_PAYLOAD_PATH}:ro`;
  const size = `${args.diskMb}M`;
  return {
    SecurityOpt: ['no-new-privileges'],
    CapDrop: ['ALL'],
    CapAdd: [...TASK_CAPABILITIES],
    ...(args.sizeLimit
      ? { StorageOpt: { size }, Binds: [payload], Mounts: [{ Type: 'volume', Source: '', Target: CONTAINER_OUTPUT_DIR, VolumeOptions: { NoCopy: true, Labels: { [CONTAINER_LABELS.managedBy]: CONTAINER_LABEL_MANAGED_BY_VALUE }, DriverConfig: { Name: 'local', Options: { size } } } }] }
      : { Binds: [payload, `${args.outputDir}:${CONTAINER_OUTPUT_DIR}:rw`] }),
  };
}

/** The host directory behind a container's /fleet/output when it is a volume (its `_data`), else undefined. */
export function outputVolumeDir(info: { Mounts?: ReadonlyArray<{ Type?: string; Destination?: string; Source?: string }> } | undefined): string | undefined {
  return info?.Mounts?.find((m) => m.Type === 'volume' && m.Destination === CONTAINER_OUTPUT_DIR)?.Source || undefined;
}

/** The reason a task that hit its disk bound ends with. */
export function diskLimitReason(diskMb: number, where: string, exitCode: number): string {
  return `the task wrote more than its disk limit (${diskMb} MiB) to ${where} (exit code ${exitCode})`;
}
