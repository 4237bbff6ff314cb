/**
 * The container side of a task, through dockerode: image policy and pull, per-task files,
 * a hardened container, output capture, the stop ladder, the exit facts and result.json.
 * No shell anywhere: Cmd and Env are arrays handed to the Engine API as they are.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { GetAuthorizationTokenCommand, type ECRClient } from '@aws-sdk/client-ecr';
import type Docker from 'dockerode';
import { CONTAINER_LABELS, CONTAINER_LABEL_MANAGED_BY_VALUE, LIMITS, type TaskSpec } from './contract';
import type { Logger } from './log';
import { TaskOutput } from './task-output';

/** Where the container sees its files. */
export const CONTAINER_PAYLOAD_PATH = '/fleet/payload.json';
export const CONTAINER_OUTPUT_DIR = '/fleet/output';
/** AGENT_PAYLOAD (ABCA) is set only up to this size; beyond, the file alone carries it. */
export const MAX_ENV_PAYLOAD_BYTES = 96 * 1024;

export class ImagePolicyError extends Error {
  override readonly name = 'ImagePolicyError';
}
export class ImagePullError extends Error {
  override readonly name = 'ImagePullError';
}

/** The registry host of an image reference, or undefined for a bare name (Docker Hub / local). */
export function registryOf(image: string): string | undefined {
  const slash = image.indexOf('/');
  if (slash < 0) return undefined;
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined;
}

/**
 * Image policy. `allowedRegistries` entries are registry hosts (pull allowed), `docker.io` for
 * bare names from Docker Hub, or `local`: bare names only when already on the engine.
 */
export function imagePolicy(image: string, allowedRegistries: readonly string[]): { allowed: boolean; mayPull: boolean; registry: string } {
  const registry = registryOf(image) ?? 'docker.io';
  if (registryOf(image) === undefined && allowedRegistries.includes('local') && !allowedRegistries.includes('docker.io')) {
    return { allowed: true, mayPull: false, registry: 'local' };
  }
  const allowed = allowedRegistries.includes(registry);
  return { allowed, mayPull: allowed, registry };
}

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
}

export interface RunnerOptions {
  readonly docker: Docker;
  readonly workDir: string;
  readonly instanceId: string;
  readonly allowedRegistries: readonly string[];
  readonly ecr?: ECRClient;
  readonly log: Logger;
}

export class ContainerRunner {
  constructor(private readonly o: RunnerOptions) {}

  get docker(): Docker {
    return this.o.docker;
  }

  taskFiles(taskId: string): TaskFiles {
    const dir = path.join(this.o.workDir, 'tasks', taskId);
    return { dir, payloadFile: path.join(dir, 'payload.json'), outputDir: path.join(dir, 'output'), logFile: path.join(this.o.workDir, 'logs', `${taskId}.log`) };
  }

  /** Present locally, or pulled from an allowed registry (ECR credentials through the SDK). */
  async ensureImage(image: string): Promise<void> {
    const policy = imagePolicy(image, this.o.allowedRegistries);
    if (!policy.allowed) {
      throw new ImagePolicyError(`image ${image} comes from registry ${policy.registry}, which is not allowed (allowed: ${this.o.allowedRegistries.join(', ') || 'none'}); add it to allowedRegistries in fleetd's config`);
    }
    try {
      await this.o.docker.getImage(image).inspect();
      return;
    } catch {
      // absent: pull below when allowed
    }
    if (!policy.mayPull) throw new ImagePolicyError(`image ${image} is not on this instance, and bare local images are never pulled; bake it into the AMI or use a registry image`);
    let authconfig: Docker.AuthConfig | undefined;
    const ecr = ECR_HOST.exec(policy.registry);
    if (ecr && this.o.ecr) {
      const token = await this.o.ecr.send(new GetAuthorizationTokenCommand({}));
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
      throw new ImagePullError(`pulling ${image} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Writes the payload read-only and makes the output directory. */
  prepareFiles(taskId: string, payloadJson: string): TaskFiles {
    const files = this.taskFiles(taskId);
    fs.rmSync(files.dir, { recursive: true, force: true });
    fs.mkdirSync(files.outputDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(path.dirname(files.logFile), { recursive: true, mode: 0o700 });
    // The agent may run as a non-root user: the output directory is its own to write.
    fs.chmodSync(files.outputDir, 0o777);
    fs.writeFileSync(files.payloadFile, payloadJson, { mode: 0o444 });
    return files;
  }

  containerName(taskId: string, attempt: number): string {
    return `fleet-${taskId}-a${attempt}`;
  }

  async create(args: { taskId: string; attempt: number; spec: TaskSpec; env: string[]; files: TaskFiles; graceSeconds: number; extraHosts?: string[] }): Promise<Docker.Container> {
    const { spec, files } = args;
    const name = this.containerName(args.taskId, args.attempt);
    // A leftover from a crash of this same attempt: remove it, it never ran under our lease.
    await this.o.docker.getContainer(name).remove({ force: true }).catch(() => undefined);
    const memory = spec.memory_mb * 1024 * 1024;
    return this.o.docker.createContainer({
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
        SecurityOpt: ['no-new-privileges'],
        CapDrop: ['NET_RAW'],
        Binds: [`${files.payloadFile}:${CONTAINER_PAYLOAD_PATH}:ro`, `${files.outputDir}:${CONTAINER_OUTPUT_DIR}:rw`],
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
        ...(args.extraHosts ? { ExtraHosts: args.extraHosts } : {}),
      },
    });
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

  async wait(container: Docker.Container): Promise<ExitFacts> {
    const res = (await container.wait()) as { StatusCode: number };
    const info = await container.inspect();
    return { exitCode: res.StatusCode, oomKilled: Boolean(info.State?.OOMKilled) };
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

  /** result.json: size-capped JSON object; anything else is recorded as a result_error. */
  readResult(files: TaskFiles, redact: (s: string) => string): { result?: Record<string, unknown>; result_error?: string } {
    const file = path.join(files.outputDir, 'result.json');
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(file);
    } catch {
      return {};
    }
    if (!stat.isFile()) return { result_error: 'result.json is not a regular file; not recorded' };
    if (stat.size > LIMITS.resultBytes) return { result_error: `result.json is ${stat.size} bytes, over the ${LIMITS.resultBytes}-byte cap; not recorded` };
    const text = redact(fs.readFileSync(file, 'utf8'));
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { result_error: 'result.json is valid JSON but not an object; not recorded' };
      return { result: parsed as Record<string, unknown> };
    } catch (err) {
      return { result_error: `result.json is not valid JSON (${(err as Error).message.slice(0, 200)}); not recorded` };
    }
  }

  async remove(container: Docker.Container): Promise<void> {
    await container.remove({ force: true, v: true }).catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) this.o.log.warn('removing container failed', { container: container.id, error: err });
    });
  }

  /** Per-task files go; the log file stays for `fleet logs` until pruned. */
  removeFiles(taskId: string): void {
    fs.rmSync(this.taskFiles(taskId).dir, { recursive: true, force: true });
  }

  /** Containers this instance's fleetd started (any state), found by label after a restart. */
  async managedContainers(): Promise<Docker.ContainerInfo[]> {
    return this.o.docker.listContainers({
      all: true,
      filters: { label: [`${CONTAINER_LABELS.managedBy}=${CONTAINER_LABEL_MANAGED_BY_VALUE}`, `${CONTAINER_LABELS.instanceId}=${this.o.instanceId}`] },
    });
  }
}
