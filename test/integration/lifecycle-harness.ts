/**
 * fleetd in the test process, for the lifecycle tests that must see AWS calls moto does not
 * implement: RecordLifecycleActionHeartbeat and CompleteLifecycleAction answer with an HTML 404
 * there (a known moto gap). The daemon's Auto Scaling client gets a middleware, at the SDK
 * boundary, that records chosen commands with their input, answers the stubbed ones as AWS
 * does (an empty 200) and can refuse one with a given error; every other call goes to moto.
 * Everything else is real: Docker, moto, the project's IMDS server, fleetd's own config parsing.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { createAwsClients } from '../../daemon/src/aws';
import { loadConfig } from '../../daemon/src/config';
import type { FleetdConfigFileInput } from '../../daemon/src/contract';
import { Fleetd } from '../../daemon/src/daemon';
import { ImdsClient } from '../../daemon/src/imds';
import { Logger, Redactor } from '../../daemon/src/log';
import { fleetdConfigFor } from '../../scripts/dev/local/provision';
import { FAST_TIMINGS } from '../../scripts/dev/harness/daemon';
import type { TestFleet } from '../../scripts/dev/harness/fleet';

export interface RecordedCall {
  readonly command: string;
  readonly input: Record<string, unknown>;
  readonly at: number;
}

export interface RecorderOptions {
  /** Commands recorded (by name, e.g. "CompleteLifecycleActionCommand"). */
  readonly record: readonly string[];
  /** Recorded commands answered here with an empty 200 instead of being sent. */
  readonly stub?: readonly string[];
  /** Recorded commands that fail with this error (AWS's refusal) instead of being sent. */
  readonly refuse?: Readonly<Record<string, () => Error>>;
}

export const LIFECYCLE_HOOK_COMMANDS = ['RecordLifecycleActionHeartbeatCommand', 'CompleteLifecycleActionCommand'] as const;

export function recordCalls(client: AutoScalingClient, o: RecorderOptions): RecordedCall[] {
  const calls: RecordedCall[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? '';
      if (!o.record.includes(name)) return next(args);
      calls.push({ command: name.replace(/Command$/, ''), input: { ...(args.input as Record<string, unknown>) }, at: Date.now() });
      const refusal = o.refuse?.[name];
      if (refusal) throw refusal();
      if (o.stub?.includes(name)) return { output: { $metadata: { httpStatusCode: 200 } }, response: {} } as never;
      return next(args);
    },
    { step: 'initialize', name: 'testRecordCalls' },
  );
  return calls;
}

export interface InProcessDaemon {
  readonly fleetd: Fleetd;
  readonly instanceId: string;
  readonly lines: string[];
  readonly calls: RecordedCall[];
  readonly socketPath: string;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves at `stopped`; rejects after the timeout. */
  stopped(timeoutMs?: number): Promise<void>;
  /** Stops (releasing at once) and closes the AWS clients' connections. */
  dispose(): Promise<void>;
}

export function inProcessDaemon(fleet: TestFleet, instanceId: string, overrides: Partial<FleetdConfigFileInput>, recorder: RecorderOptions): InProcessDaemon {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fleetd-inproc-${instanceId}-`));
  const socketPath = path.join(dir, 'run', 'fleetd.sock');
  const configPath = path.join(dir, 'config.json');
  fs.writeFileSync(
    configPath,
    JSON.stringify(
      fleetdConfigFor(fleet.resources, {
        workDir: path.join(dir, 'lib'),
        socketPath,
        minFreeDiskBytes: 64 * 1024 * 1024,
        minFreeInodes: 1000,
        ...overrides,
        timings: { ...FAST_TIMINGS, ...(overrides.timings ?? {}) },
      }),
    ),
  );
  const config = loadConfig({}, configPath);
  const clients = createAwsClients({ region: fleet.resources.region });
  const calls = recordCalls(clients.autoscaling, recorder);
  const lines: string[] = [];
  const log = new Logger({ component: 'fleetd', instance_id: instanceId }, new Redactor(), 'info', (line) => lines.push(line));
  const fleetd = new Fleetd({ config, clients, docker: fleet.docker, imds: new ImdsClient(`${fleet.imdsUrl}/${instanceId}/`), log });
  let isStopped = false;
  const stoppedEvent = new Promise<void>((resolve) => fleetd.once('stopped', () => {
    isStopped = true;
    resolve();
  }));
  return {
    fleetd,
    instanceId,
    lines,
    calls,
    socketPath,
    async waitForLog(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = lines.find((l) => pattern.test(l));
        if (hit) return hit;
        if (Date.now() > deadline || isStopped) throw new Error(`in-process fleetd ${instanceId}: no log line matching ${pattern}; last lines:\n${lines.slice(-15).join('\n')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async dispose() {
      await fleetd.stop({ abort: true });
      for (const c of Object.values(clients)) if (typeof c === 'object' && 'destroy' in c) c.destroy();
    },
    async stopped(timeoutMs = 60_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`in-process fleetd ${instanceId} did not stop within ${timeoutMs} ms; last lines:\n${lines.slice(-15).join('\n')}`)), timeoutMs);
      });
      try {
        await Promise.race([stoppedEvent, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
