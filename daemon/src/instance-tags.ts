/**
 * The instance's own EC2 tags (status, running task ids; the launch template's tags read once at
 * boot), behind one small interface with two implementations:
 *
 * - `sdkInstanceTags(ec2)`: the calls made with an EC2Client in this process.
 * - `InstanceTagsProcess`: the same calls made in a short-lived child process
 *   (instance-tags-child.ts; `fleetd-ec2.js` in the bundle), which fleetd uses (main.ts).
 *
 * Why a child: `@aws-sdk/client-ec2` is one 2 MB module that costs ~70 MiB of heap and ~0.3 s
 * of CPU to load, for three calls on status changes (issue #18, docs/benchmarks.md "Idle
 * memory"). Loaded in fleetd it stays on the long-lived heap for good; in a child the memory goes
 * back to the system when the child exits. The child lingers `lingerMs` after its last call, so
 * a task's busy and idle writes (and a busy fleet's back-to-back tasks) share one load.
 *
 * The child speaks JSON over Node's IPC channel: requests are data, never argv or a shell. Its
 * SDK client retries each call (standard mode); an AWS error comes back with its name, status
 * and retryable flags and is rethrown here as `InstanceTagsError` whose `cause` carries them, so
 * `isTransient` (retry.ts) judges it like any SDK error. A child that exits or cannot start
 * fails the calls it held with `TagHelperExitedError`; they are tried again in a new child under
 * `RETRY_POLICIES.taskStep`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { sdk } from './aws';
import type { Logger } from './log';
import { RETRY_POLICIES, retry, type Clock } from './retry';

export interface InstanceTags {
  /** CreateTags on the instance (adds or overwrites). */
  put(instanceId: string, tags: Readonly<Record<string, string>>): Promise<void>;
  /** DeleteTags of these keys on the instance. */
  remove(instanceId: string, keys: readonly string[]): Promise<void>;
  /** DescribeTags: the values of these keys on the instance (absent keys left out). */
  read(instanceId: string, keys: readonly string[]): Promise<Record<string, string>>;
  /** Ends a helper process at once (fleetd stopping). */
  close(): void;
}

/** One call, as the child receives it. */
export type InstanceTagsRequest =
  | { readonly op: 'put'; readonly instanceId: string; readonly tags: Readonly<Record<string, string>> }
  | { readonly op: 'remove'; readonly instanceId: string; readonly keys: readonly string[] }
  | { readonly op: 'read'; readonly instanceId: string; readonly keys: readonly string[] };

/** What the child answers to request `id`. */
export type InstanceTagsReply =
  | { readonly id: number; readonly ok: true; readonly value?: Record<string, string> }
  | { readonly id: number; readonly ok: false; readonly error: SerializedAwsError };

/** The parts of an SDK error that retry.ts's `isTransient` and the logs read. */
export interface SerializedAwsError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly $fault?: string;
  readonly $metadata?: { readonly httpStatusCode?: number; readonly requestId?: string };
  readonly $retryable?: { readonly throttling?: boolean };
}

/** An EC2 tag call failed with an AWS (or network) error; `cause` has its name and status. */
export class InstanceTagsError extends Error {
  override readonly name = 'InstanceTagsError';
}

/** The helper process exited or could not start while it held the call. */
export class TagHelperExitedError extends Error {
  override readonly name = 'TagHelperExitedError';
}

export function serializeAwsError(err: unknown): SerializedAwsError {
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as Partial<SerializedAwsError> & { name?: unknown; message?: unknown };
  return {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : String(err),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(e.$fault ? { $fault: e.$fault } : {}),
    ...(e.$metadata ? { $metadata: { httpStatusCode: e.$metadata.httpStatusCode, requestId: e.$metadata.requestId } } : {}),
    ...(e.$retryable ? { $retryable: { throttling: e.$retryable.throttling } } : {}),
  };
}

/** The SDK error again, as far as `isTransient` and a log line need it. */
export function deserializeAwsError(s: SerializedAwsError): Error {
  const { name, message, ...rest } = s;
  return Object.assign(new Error(message), { name }, rest);
}

/** The three calls with an EC2Client in this process (tests, the child, a failed-config report). */
export function sdkInstanceTags(ec2: EC2Client): InstanceTags {
  const { CreateTagsCommand, DeleteTagsCommand, DescribeTagsCommand } = sdk.ec2();
  return {
    put: async (instanceId, tags) => {
      await ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }));
    },
    remove: async (instanceId, keys) => {
      await ec2.send(new DeleteTagsCommand({ Resources: [instanceId], Tags: keys.map((Key) => ({ Key })) }));
    },
    read: async (instanceId, keys) => {
      const res = await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [instanceId] }, { Name: 'key', Values: [...keys] }] }));
      return Object.fromEntries((res.Tags ?? []).filter((t) => t.Key !== undefined && t.Value !== undefined).map((t) => [t.Key!, t.Value!]));
    },
    close: () => undefined,
  };
}

/** Runs one request against `tags` (the child's loop). */
export async function runTagsRequest(tags: InstanceTags, req: InstanceTagsRequest): Promise<Record<string, string> | undefined> {
  switch (req.op) {
    case 'put':
      return void (await tags.put(req.instanceId, req.tags));
    case 'remove':
      return void (await tags.remove(req.instanceId, req.keys));
    case 'read':
      return tags.read(req.instanceId, req.keys);
  }
}

/** How to start the child: the bundle's `fleetd-ec2.js` beside fleetd.js, or the TypeScript entry through tsx. */
export function tagHelperEntry(): { readonly script: string; readonly execArgv: readonly string[] } {
  if (__filename.endsWith('.ts')) {
    // From source (bin/fleetd.js in a checkout, the integration tests): tsx's require hook.
    // createRequire, not require.resolve: the bundler must not see tsx (a dev dependency).
    return { script: path.join(__dirname, 'instance-tags-child.ts'), execArgv: ['--require', createRequire(__filename).resolve('tsx/cjs')] };
  }
  return { script: path.join(__dirname, TAG_HELPER_BUNDLE_FILE), execArgv: [] };
}

/** The child's file in the bundle directory (scripts/bundle.ts FLEETD_ENTRIES). */
export const TAG_HELPER_BUNDLE_FILE = 'fleetd-ec2.js';

export interface InstanceTagsProcessOptions {
  /** The child's AWS_REGION (the rest of the SDK's settings come from fleetd's environment). */
  readonly region: string;
  /** How long the child stays after its last call. @default 30 s */
  readonly lingerMs?: number;
  readonly log: Logger;
  /** @default tagHelperEntry() */
  readonly entry?: { readonly script: string; readonly execArgv: readonly string[] };
  /** The retry's clock (tests). @default SYSTEM_CLOCK */
  readonly clock?: Clock;
}

export class InstanceTagsProcess implements InstanceTags {
  private child?: ChildProcess;
  private readonly pending = new Map<number, { resolve: (v: InstanceTagsReply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private lingerTimer?: NodeJS.Timeout;
  /** Children started so far (status, tests). */
  started = 0;

  constructor(private readonly o: InstanceTagsProcessOptions) {}

  put(instanceId: string, tags: Readonly<Record<string, string>>): Promise<void> {
    return this.call({ op: 'put', instanceId, tags }).then(() => undefined);
  }

  remove(instanceId: string, keys: readonly string[]): Promise<void> {
    return this.call({ op: 'remove', instanceId, keys }).then(() => undefined);
  }

  async read(instanceId: string, keys: readonly string[]): Promise<Record<string, string>> {
    return (await this.call({ op: 'read', instanceId, keys })) ?? {};
  }

  /** Whether a child is running now. */
  get alive(): boolean {
    return this.child !== undefined;
  }

  /**
   * Starts the child now (it lingers as after a call), so its load (~0.3 s of CPU for the EC2
   * SDK) overlaps what fleetd does next instead of delaying the boot's first tag call.
   */
  start(): void {
    if (this.child) return;
    this.spawn();
    this.armLinger();
  }

  close(): void {
    clearTimeout(this.lingerTimer);
    this.child?.kill('SIGTERM');
  }

  private async call(req: InstanceTagsRequest): Promise<Record<string, string> | undefined> {
    const reply = await retry(`EC2 ${req.op} tags`, () => this.once(req), {
      policy: RETRY_POLICIES.taskStep,
      retryable: (err) => err instanceof TagHelperExitedError,
      clock: this.o.clock,
      onRetry: (r) => this.o.log.warn('the EC2 tag helper process exited; retrying in a new one', { error: r.error, attempt: r.attempt, retry_in_ms: r.retryInMs }),
    });
    if (!reply.ok) throw new InstanceTagsError(`EC2 ${req.op} tags on ${req.instanceId} failed: ${reply.error.name}: ${reply.error.message}`, { cause: deserializeAwsError(reply.error) });
    return reply.value;
  }

  private once(req: InstanceTagsRequest): Promise<InstanceTagsReply> {
    clearTimeout(this.lingerTimer);
    const child = this.child ?? this.spawn();
    child.channel?.ref();
    const id = this.nextId++;
    return new Promise<InstanceTagsReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      child.send({ id, ...req }, (err) => {
        if (err) this.settle(id, undefined, new TagHelperExitedError(`the EC2 tag helper did not take the request: ${err.message}`, { cause: err }));
      });
    });
  }

  private spawn(): ChildProcess {
    const entry = this.o.entry ?? tagHelperEntry();
    const child = fork(entry.script, [], {
      execArgv: [...entry.execArgv],
      env: { ...process.env, AWS_REGION: this.o.region },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    this.started++;
    this.child = child;
    // While a call is out, the IPC channel keeps fleetd's event loop alive (a boot may await
    // nothing else); between calls the child never does (once()/settle() toggle it).
    child.unref();
    child.on('message', (m: InstanceTagsReply) => this.settle(m.id, m));
    const gone = (why: string, cause?: Error) => {
      if (this.child !== child) return;
      this.child = undefined;
      clearTimeout(this.lingerTimer);
      for (const id of [...this.pending.keys()]) this.settle(id, undefined, new TagHelperExitedError(`the EC2 tag helper ${why}`, { cause }));
    };
    child.once('error', (err) => gone(`could not run: ${err.message}`, err));
    child.once('exit', (code, signal) => gone(`exited (${signal ?? code})`));
    return child;
  }

  private settle(id: number, reply?: InstanceTagsReply, error?: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (error) p.reject(error);
    else p.resolve(reply!);
    if (this.pending.size === 0) this.armLinger();
  }

  /** No call out: the channel stops holding fleetd's event loop, and the child goes after lingerMs. */
  private armLinger(): void {
    const child = this.child;
    if (!child) return;
    child.channel?.unref();
    clearTimeout(this.lingerTimer);
    this.lingerTimer = setTimeout(() => child.connected && child.disconnect(), this.o.lingerMs ?? 30_000);
    this.lingerTimer.unref();
  }
}
