/**
 * The container side of a task, through dockerode: image policy and pull, per-task files,
 * a hardened container, output capture, the stop ladder, the exit facts and result.json.
 * No shell anywhere: Cmd and Env are arrays handed to the Engine API as they are.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import type { ECRClient } from '@aws-sdk/client-ecr';
import { sdk } from './aws';
import type Docker from 'dockerode';
import { CONTAINER_OUTPUT_DIR, EngineConfinement, confinedHostConfig, diskLimitReason, isStorageOptRefusal, outputVolumeDir } from './confinement';
import { CONTAINER_LABELS, CONTAINER_LABEL_MANAGED_BY_VALUE, type TaskSpec } from './contract';
import type { Logger } from './log';
import { readTaskResult } from './task-result';
import { EngineUnavailableError, isEngineUnreachable } from './engine-errors';
import { ImagePolicyError, ImagePullError, imagePolicy } from './image-policy';
import { stoppedFromOutside } from './engine-events';
import { mountOutputDisk, outputDiskFull, removeTaskDir } from './output-disk';
import { TaskOutput } from './task-output';

/** AGENT_PAYLOAD (ABCA) is set only up to this size; beyond, the file alone carries it. */
export const MAX_ENV_PAYLOAD_BYTES = 96 * 1024;

const ECR_HOST = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com$/;

export interface TaskFiles {
  readonly dir: string;
  readonly payloadFile: string;
  readonly outputDir: string;
  readonly logFile: string;
}

export interface ExitFacts {
  readonly exitCode: number;
  readonly oomKilled: boolean;
  /** The container was removed from outside fleetd before its exit could be read. */
  readonly vanished?: boolean;
}

/** How often `wait` double-checks the container by inspect (see ContainerRunner.wait). */
export const EXIT_POLL_MS = 5000;

export interface RunnerOptions {
  readonly docker: Docker;
  readonly workDir: string;
  readonly instanceId: string;
  readonly allowedRegistries: readonly string[];
  /** 'loop': a file system of its own per task where the engine cannot bound disk (config `outputDisks`). @default 'off' */
  readonly outputDisks?: 'loop' | 'off';
  /** The client, or how to get it on the first ECR pull (fleetd: the ECR SDK loads then, not at boot). */
  readonly ecr?: ECRClient | (() => ECRClient);
  readonly log: Logger;
}

export class ContainerRunner {
  /** The engine's user-namespace and disk-limit facts (confinement.ts). */
  readonly confinement: EngineConfinement;
  private unboundedSaid = false;

  constructor(private readonly o: RunnerOptions) {
    this.confinement = new EngineConfinement(o.docker);
  }

  get docker(): Docker {
    return this.o.docker;
  }

  taskFiles(taskId: string): TaskFiles {
    const dir = path.join(this.o.workDir, 'tasks', taskId);
    return { dir, payloadFile: path.join(dir, 'payload.json'), outputDir: path.join(dir, 'output'), logFile: path.join(this.o.workDir, 'logs', `${taskId}.log`) };
  }

  /** True when the engine has the image; false on a 404 only (see isEngineUnreachable). */
  private async present(image: string): Promise<boolean> {
    try {
      await this.o.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      // Only a 404 means "absent". An engine that does not answer (dockerd restarting) must not
      // turn into "image not on this instance", a permanent-looking failure of the task.
      if (isEngineUnreachable(err)) throw new EngineUnavailableError(`the Docker engine did not answer while looking for image ${image}: ${(err as Error).message}`, { cause: err });
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      return false;
    }
  }

  /**
   * Present locally, or pulled from an allowed registry (ECR credentials through the SDK).
   * `refresh` (the prepull timer, prepull.ts): pull even when present, so a moved tag brings its
   * newest digest; a local-only image is only looked up.
   */
  async ensureImage(image: string, options: { refresh?: boolean } = {}): Promise<'present' | 'pulled'> {
    const policy = imagePolicy(image, this.o.allowedRegistries);
    if (!policy.allowed) {
      throw new ImagePolicyError(`image ${image} comes from registry ${policy.registry}, which is not allowed (allowed: ${this.o.allowedRegistries.join(', ') || 'none'}); add it to allowedRegistries in fleetd's config`);
    }
    if (!(options.refresh && policy.mayPull) && (await this.present(image))) return 'present';
    if (!policy.mayPull) throw new ImagePolicyError(`image ${image} is not on this instance, and bare local images are never pulled; bake it into the AMI or use a registry image`);
    let authconfig: Docker.AuthConfig | undefined;
    const ecr = ECR_HOST.exec(policy.registry);
    if (ecr && this.o.ecr) {
      const client = typeof this.o.ecr === 'function' ? this.o.ecr() : this.o.ecr;
      const token = await client.send(new (sdk.ecr().GetAuthorizationTokenCommand)({}));
      const data = token.authorizationData?.[0];
      if (!data?.authorizationToken) throw new ImagePullError(`ECR returned no authorization token for ${policy.registry}`);
      const [username, password] = Buffer.from(data.authorizationToken, 'base64').toString('utf8').split(':');
      authconfig = { username, password, serveraddress: `https://${policy.registry}` };
    }
    try {
      const stream = await this.o.docker.pull(image, authconfig ? { authconfig } : {});
      await new Promise<void>((resolve, reject) =>
        this.o.docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) => {
          const failed = out?.find((o) => o.error);
          if (err || failed) reject(err ?? new Error(failed?.error));
          else resolve();
        }),
      );
    } catch (err) {
      if (isEngineUnreachable(err)) throw new EngineUnavailableError(`the Docker engine did not answer while pulling ${image}: ${(err as Error).message}`, { cause: err });
      throw new ImagePullError(`pulling ${image} failed: ${(err as Error).message}`, { cause: err });
    }
    return 'pulled';
  }

  /**
   * Writes the payload read-only and makes the output directory: a `diskMb` file system of its
   * own (output-disk.ts) owned by the container's root user (the remapped uid under
   * userns-remap) when the config asks for loop disks. Where the host cannot make one (no loop
   * device, not root) or they are off, the directory is plain and unbounded, and a warning says so.
   */
  async prepareFiles(taskId: string, payloadJson: string, diskMb: number): Promise<TaskFiles> {
    const files = this.taskFiles(taskId);
    removeTaskDir(files.dir);
    fs.mkdirSync(files.outputDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(path.dirname(files.logFile), { recursive: true, mode: 0o700 });
    const { rootUid: uid, rootGid: gid, sizeLimit } = await this.confinement.get();
    try {
      // The engine bounds a volume itself where it can (confinement.ts); else our own disk, when configured.
      if (!sizeLimit && this.o.outputDisks === 'loop') await mountOutputDisk(files.outputDir, path.join(files.dir, 'output.img'), diskMb, { uid, gid });
      else if (!sizeLimit && !this.unboundedSaid) {
        this.unboundedSaid = true;
        this.o.log.warn("task output directories are not bounded: the engine has no xfs project quotas and fleetd's config has outputDisks 'off' (docs/security.md, Confinement)");
      }
    } catch (err) {
      this.o.log.warn('the output directory could not be bounded; it is a plain directory on the work disk', { task_id: taskId, error: err });
    }
    // The agent may run as a non-root user: the output directory is its own to write.
    fs.chmodSync(files.outputDir, 0o777);
    fs.chownSync(files.outputDir, uid, gid);
    // World-readable: the container's root is an unprivileged host uid under userns-remap.
    fs.writeFileSync(files.payloadFile, payloadJson, { mode: 0o444 });
    return files;
  }

  containerName(taskId: string, attempt: number): string {
    return `fleet-${taskId}-a${attempt}`;
  }

  async create(args: { taskId: string; attempt: number; spec: TaskSpec; env: string[]; files: TaskFiles; graceSeconds: number; extraHosts?: string[] }): Promise<Docker.Container> {
    const { spec, files } = args;
    const name = this.containerName(args.taskId, args.attempt);
    const memory = spec.memory_mb * 1024 * 1024;
    const { sizeLimit } = await this.confinement.get();
    const options = (size: boolean): Docker.ContainerCreateOptions => ({
      name,
      Image: spec.image,
      ...(spec.command ? { Cmd: spec.command } : {}),
      Env: args.env,
      Labels: {
        [CONTAINER_LABELS.managedBy]: CONTAINER_LABEL_MANAGED_BY_VALUE,
        [CONTAINER_LABELS.taskId]: args.taskId,
        [CONTAINER_LABELS.attempt]: String(args.attempt),
        [CONTAINER_LABELS.instanceId]: this.o.instanceId,
      },
      StopSignal: 'SIGTERM',
      StopTimeout: args.graceSeconds,
      Tty: false,
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: {
        Memory: memory,
        MemorySwap: memory,
        NanoCpus: Math.round(spec.cpus * 1e9),
        PidsLimit: spec.pids,
        Init: true,
        ...confinedHostConfig({ diskMb: spec.disk_mb, sizeLimit: size, payloadFile: files.payloadFile, outputDir: files.outputDir }),
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
        ...(args.extraHosts ? { ExtraHosts: args.extraHosts } : {}),
      },
    });
    try {
      const container = await this.createNamed(name, options(sizeLimit));
      // A fresh volume's root is the container root's, 0755: open it to a non-root image user.
      const volume = sizeLimit ? outputVolumeDir(await container.inspect()) : undefined;
      if (volume) try { fs.chmodSync(volume, 0o777); } catch (err) { this.o.log.warn('opening the output volume to non-root users failed', { error: err }); }
      return container;
    } catch (err) {
      if (!sizeLimit || !isStorageOptRefusal(err)) throw err;
      this.o.log.warn('the engine refused a writable-layer size (storage-opt size needs overlay2 on xfs with pquota); task layers are not size-bounded', { error: err });
      this.confinement.refuseSize();
      return this.createNamed(name, options(false));
    }
  }

  /**
   * Creates the container. A name already in use (409) is a leftover of a crash of this same
   * attempt, which never ran under our lease: it is removed and the create made again. (Removing
   * by name before every create cost a Docker call per task for a case only a crash makes.)
   */
  private async createNamed(name: string, options: Docker.ContainerCreateOptions): Promise<Docker.Container> {
    try {
      return await this.o.docker.createContainer(options);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 409) throw err;
      this.o.log.warn('removing a leftover container that holds this attempt\'s name', { name });
      await this.o.docker.getContainer(name).remove({ force: true }).catch(() => undefined);
      return this.o.docker.createContainer(options);
    }
  }

  /**
   * Why a task that exited non-zero hit its disk bound, or undefined: its output disk is full,
   * or (with a size-bounded layer) its writable layer is at the limit.
   */
  async diskLimitHit(container: Docker.Container, files: TaskFiles, diskMb: number, exitCode: number): Promise<string | undefined> {
    const info = await container.inspect().catch(() => undefined);
    const volume = outputVolumeDir(info);
    if (outputDiskFull(volume ?? files.outputDir, volume !== undefined)) return diskLimitReason(diskMb, CONTAINER_OUTPUT_DIR, exitCode);
    const layered = info?.HostConfig?.StorageOpt?.size;
    if (!layered) return undefined;
    const sized = await container.inspect({ size: true } as Docker.ContainerInspectOptions).catch(() => undefined);
    const used = (sized as { SizeRw?: number } | undefined)?.SizeRw ?? 0;
    return used >= diskMb * 1024 * 1024 - 1024 * 1024 ? diskLimitReason(diskMb, 'its writable layer', exitCode) : undefined;
  }

  /** Streams stdout/stderr into `output` (demultiplexed); resolves when the stream ends. */
  async attach(container: Docker.Container, output: TaskOutput, logs = false): Promise<{ done: Promise<void> }> {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true, logs });
    const out = output.stream();
    const err = output.stream();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.on('data', (c: Buffer) => out.write(c));
    stderr.on('data', (c: Buffer) => err.write(c));
    container.modem.demuxStream(stream, stdout, stderr);
    const done = new Promise<void>((resolve) => {
      const finish = () => {
        out.end();
        err.end();
        resolve();
      };
      stream.once('end', finish);
      stream.once('close', finish);
      stream.once('error', finish);
    });
    return { done };
  }

  /**
   * The container's exit. Docker's wait is one long HTTP response, and when the engine's
   * connection dies after the headers (dockerd killed or restarted) dockerode's promise never
   * settles: a task would stay RUNNING, heartbeating, forever. So an inspect every
   * `EXIT_POLL_MS` (5 s, no jitter: a local socket) races it: it sees the exit, or throws
   * EngineUnavailableError when the engine does not answer. A container removed from outside
   * fleetd meanwhile is reported as `vanished`.
   */
  async wait(container: Docker.Container): Promise<ExitFacts> {
    const abort = new AbortController();
    try {
      const exitCode = await Promise.race([
        container.wait({ abortSignal: abort.signal }).then((r: { StatusCode: number }) => r.StatusCode),
        this.pollForExit(container, abort.signal),
      ]);
      if (exitCode === undefined) return { exitCode: -1, oomKilled: false, vanished: true };
      const info = await container.inspect().catch((err: unknown) => {
        if (isEngineUnreachable(err)) throw new EngineUnavailableError(`the Docker engine did not answer inspecting the container: ${(err as Error).message}`, { cause: err });
        return undefined;
      });
      return { exitCode, oomKilled: Boolean(info?.State?.OOMKilled) };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return { exitCode: -1, oomKilled: false, vanished: true };
      throw err;
    } finally {
      abort.abort();
    }
  }

  /** Resolves with the exit code once inspect shows the container stopped; undefined when it is gone. */
  private async pollForExit(container: Docker.Container, signal: AbortSignal): Promise<number | undefined> {
    for (;;) {
      await new Promise((r) => setTimeout(r, EXIT_POLL_MS).unref());
      if (signal.aborted) return new Promise<never>(() => undefined);
      try {
        const info = await container.inspect();
        if (info.State && !info.State.Running && info.State.Status !== 'created') return info.State.ExitCode;
      } catch (err) {
        if (isEngineUnreachable(err)) throw new EngineUnavailableError(`the Docker engine does not answer: ${(err as Error).message}`, { cause: err });
        if ((err as { statusCode?: number }).statusCode === 404) return undefined;
        // Any other answer: the engine is up; wait for the next poll or the wait itself.
      }
    }
  }

  /** Why a container that died by a signal fleetd did not send was stopped from outside, if it was (engine-events.ts). */
  stoppedFromOutside(container: Docker.Container, sinceMs: number): Promise<string | undefined> {
    return stoppedFromOutside(this.o.docker, container, sinceMs, this.o.log);
  }

  /** Pings the engine every second until it answers or `timeoutMs` passes (or `signal` aborts). */
  async waitForEngine(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !signal?.aborted) {
      try {
        await this.o.docker.ping();
        return true;
      } catch {
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    return false;
  }

  /** The ladder: SIGTERM, `graceSeconds`, then SIGKILL (Docker's stop does exactly this). */
  async stop(container: Docker.Container, graceSeconds: number): Promise<void> {
    try {
      await container.stop({ t: graceSeconds });
    } catch (err) {
      // 304: already stopped; 404: gone. Both fine.
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 304 && code !== 404) throw err;
    }
  }

  async kill(container: Docker.Container): Promise<void> {
    await container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
  }

  /** The task's files as the container sees them: /fleet/output may be a volume (confinement.ts). */
  async outputFiles(container: Docker.Container, files: TaskFiles): Promise<TaskFiles> {
    const volume = outputVolumeDir(await container.inspect().catch(() => undefined));
    return volume ? { ...files, outputDir: volume } : files;
  }

  /** result.json, parsed and redacted (task-result.ts). */
  readResult(files: TaskFiles, redact: (s: string) => string): { result?: Record<string, unknown>; result_error?: string } {
    return readTaskResult(files.outputDir, redact);
  }

  async remove(container: Docker.Container): Promise<void> {
    await container.remove({ force: true, v: true }).catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) this.o.log.warn('removing container failed', { container: container.id, error: err });
    });
  }

  /** Per-task files go; the log file stays for `fleet logs` until pruned. */
  removeFiles(taskId: string): void {
    removeTaskDir(this.taskFiles(taskId).dir);
  }
}
