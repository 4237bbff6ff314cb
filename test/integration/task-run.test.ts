/**
 * One TaskRun, driven directly (no receive loop, no daemon): claimed through the store, run on
 * the real Docker engine with the demo image, written to moto. Covers the path a newcomer reads
 * first (prepare → RUNNING → supervise → terminal write → cleanup) and the terminal write's
 * failure modes, which end-to-end timing cannot reach on demand:
 * - DynamoDB refuses the write (a result.json nested past its 32 levels): the attempt ends
 *   FAILED with a reason naming the refusal, and the slot is freed (regression: the write used
 *   to be retried forever while heartbeats kept the lease alive);
 * - DynamoDB cannot be reached for the terminal write: the task is released, not failed.
 * moto stores nesting of any depth, so DynamoDB's nesting rule is applied at the SDK boundary
 * with DynamoDB's own error (name, status and message); every call still goes to moto.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createAwsClients, type AwsClients } from '../../daemon/src/aws';
import { loadConfig, type FleetdConfig } from '../../daemon/src/config';
import { EventType, TaskStatus, parseTaskSpec, type TaskRecord } from '../../daemon/src/contract';
import { Logger, Redactor } from '../../daemon/src/log';
import { ContainerRunner } from '../../daemon/src/runner';
import { TaskStore } from '../../daemon/src/store';
import { TaskRun } from '../../daemon/src/task-run';
import { FleetClient } from '../../scripts/lib/client';
import { FAST_TIMINGS } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';
import { fleetdConfigFor } from '../../scripts/dev/local/provision';

let fleet: TestFleet;
let config: FleetdConfig;
let client: FleetClient;
const INSTANCE = 'i-0000000000000c0de';
const disposers: Array<() => void> = [];

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
  client = new FleetClient(fleet.clients, fleet.resources);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'task-run-'));
  const configPath = path.join(dir, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify(fleetdConfigFor(fleet.resources, { workDir: path.join(dir, 'lib'), socketPath: path.join(dir, 'fleetd.sock'), timings: FAST_TIMINGS })));
  config = loadConfig({}, configPath);
});

afterAll(() => disposers.forEach((d) => d()));

/** DynamoDB's rule, as DynamoDB words it: a document nested deeper than 32 levels is refused. */
const DYNAMODB_MAX_NESTING = 32;
function nestingOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  return 1 + Math.max(0, ...Object.values(value as Record<string, unknown>).map(nestingOf));
}
function nestingRefusal(): Error {
  return Object.assign(new Error('Nesting Levels have exceeded supported limits'), { name: 'ValidationException', $fault: 'client', $metadata: { httpStatusCode: 400 } });
}

interface Harness {
  readonly store: TaskStore;
  readonly clients: AwsClients;
  readonly lines: string[];
  readonly ended: string[];
}

/**
 * A TaskRun's dependencies, real but for `beforeWrite`: called with each TransactWrite's items
 * before it is sent, it may throw the error AWS would answer with.
 */
function harness(beforeWrite?: (items: Array<{ Update?: { Key?: Record<string, unknown>; ExpressionAttributeValues?: Record<string, unknown> } }>) => void | Promise<void>): Harness {
  const clients = createAwsClients({ region: fleet.resources.region });
  disposers.push(() => Object.values(clients).forEach((c) => typeof c === 'object' && 'destroy' in c && c.destroy()));
  const real = clients.ddb;
  // Only `send` is used by the store: the rule runs on the command's input as the store built it.
  const ddb = beforeWrite
    ? ({
        send: async (command: { constructor: { name: string }; input: { TransactItems?: never } }) => {
          if (command.constructor.name === 'TransactWriteCommand') await beforeWrite(command.input.TransactItems ?? []);
          return real.send(command as never);
        },
      } as unknown as DynamoDBDocumentClient)
    : real;
  const lines: string[] = [];
  const store = new TaskStore({ ddb, tasksTable: fleet.resources.tasksTable, eventsTable: fleet.resources.eventsTable, timings: config.timings });
  return { store, clients: { ...clients, ddb }, lines, ended: [] };
}

interface RunHooks {
  /** Before the run is made (the task is claimed). */
  readonly beforeRun?: (runner: ContainerRunner, taskId: string, attempt: number) => Promise<void>;
  /** The run, before it executes. */
  readonly onRun?: (run: TaskRun) => void;
}

async function runTask(h: Harness, spec: Record<string, unknown>, hooks: RunHooks = {}): Promise<{ result: Awaited<ReturnType<TaskRun['execute']>>; record: TaskRecord }> {
  const { taskId } = await client.submitTask({ ...spec } as never);
  const claim = await h.store.claim(taskId, INSTANCE);
  if (claim.kind !== 'claimed') throw new Error(`claim: ${claim.kind}`);
  const log = new Logger({ component: 'fleetd', instance_id: INSTANCE }, new Redactor(), 'info', (l) => h.lines.push(l));
  const runner = new ContainerRunner({ docker: fleet.docker, workDir: config.workDir, instanceId: INSTANCE, allowedRegistries: config.allowedRegistries, log });
  await hooks.beforeRun?.(runner, taskId, claim.lease.attempt);
  const run = new TaskRun(
    {
      store: h.store,
      runner,
      sqs: h.clients.sqs,
      s3: h.clients.s3,
      secrets: h.clients.secrets,
      config,
      log,
      onTaskEnd: (lease) => h.ended.push(lease.taskId),
      // Short backoff: the bound is what is tested, not the waits.
      writeRetry: { maxAttempts: 3, baseMs: 10, capMs: 20 },
    },
    claim.lease,
    claim.record,
    undefined,
  );
  hooks.onRun?.(run);
  const result = await run.execute();
  // The run ends at the terminal write; the container's removal is the run's background tail.
  await run.tail;
  return { result, record: await client.getTask(taskId) };
}

function demoSpec(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const spec = { image: fleet.demoImage, env: { DEMO_SLEEP_S: '0' }, memory_mb: 128, cpus: 0.5, timeout_s: 60, ...extra };
  expect(parseTaskSpec(spec).ok).toBe(true);
  return spec;
}

/** A command writing a result.json nested `depth` levels deep (busy box sh; argv, no shell built from data). */
function deepResultCommand(depth: number): string[] {
  return ['sh', '-c', `s='"x"'; i=0; while [ $i -lt ${depth} ]; do s="{\\"a\\":$s}"; i=$((i+1)); done; printf '%s' "$s" > "$FLEET_OUTPUT_DIR/result.json"`];
}

test('a task run from claim to cleanup: RUNNING, COMPLETED with its result, events, the slot freed, no container left after its tail', async () => {
  // Prepare
  const h = harness();
  // Act
  const { result, record } = await runTask(h, demoSpec());
  // Assess
  expect(result.status).toBe(TaskStatus.COMPLETED);
  expect(record).toMatchObject({ status: TaskStatus.COMPLETED, exit_code: 0, attempt: 1, instance_id: INSTANCE, result: { summary: 'demo agent finished' } });
  expect((await client.listEvents(record.task_id)).map((e) => e.type)).toEqual([EventType.SUBMITTED, EventType.CLAIMED, EventType.RUNNING, EventType.COMPLETED]);
  expect(h.ended).toEqual([record.task_id]);
  expect(await fleet.docker.listContainers({ all: true, filters: { label: [`agent-fleet.task-id=${record.task_id}`] } })).toEqual([]);
});

test("a leftover container holding the attempt's name (fleetd died after creating it) is replaced: the task runs in a new container", async () => {
  // Prepare: a created, never started container under the name this attempt will use.
  const h = harness();
  let leftoverId = '';
  const leaveLeftover = async (runner: ContainerRunner, taskId: string, attempt: number) => {
    const leftover = await fleet.docker.createContainer({ name: runner.containerName(taskId, attempt), Image: fleet.demoImage, Cmd: ['true'], Labels: { 'agent-fleet.task-id': taskId } });
    leftoverId = leftover.id;
  };
  // Act
  const { result, record } = await runTask(h, demoSpec(), { beforeRun: leaveLeftover });
  // Assess: completed in another container; the leftover is gone, and so is the task's own after its tail.
  expect(result.status).toBe(TaskStatus.COMPLETED);
  expect(record.container_id).toMatch(/^[0-9a-f]{64}$/);
  expect(record.container_id).not.toBe(leftoverId);
  expect(h.lines.filter((l) => l.includes('removing a leftover container'))).toHaveLength(1);
  await expect(fleet.docker.getContainer(leftoverId).inspect()).rejects.toMatchObject({ statusCode: 404 });
  expect(await fleet.docker.listContainers({ all: true, filters: { label: [`agent-fleet.task-id=${record.task_id}`] } })).toEqual([]);
});

test('a release (a drain, a spot notice) that comes after the container exited does not hand back a finished task: it completes', async () => {
  // Prepare
  const h = harness();
  // Act: the release arrives between the exit and the terminal write.
  const { result, record } = await runTask(h, demoSpec(), { onRun: (run) => void run.exited.then(() => run.release('drain began')) });
  // Assess
  expect(result.status).toBe(TaskStatus.COMPLETED);
  expect(record).toMatchObject({ status: TaskStatus.COMPLETED, exit_code: 0, attempt: 1 });
  expect((await client.listEvents(record.task_id)).map((e) => e.type)).not.toContain(EventType.INTERRUPTED);
});

test('regression: a result.json nested past DynamoDB\'s 32 levels ends FAILED with what DynamoDB refused, and the slot is freed', async () => {
  // Prepare: DynamoDB's nesting rule on every transactional write.
  let refusals = 0;
  const h = harness((items) => {
    const values = items.flatMap((i) => Object.values(i.Update?.ExpressionAttributeValues ?? {}));
    if (values.some((v) => nestingOf(v) > DYNAMODB_MAX_NESTING)) {
      refusals++;
      throw nestingRefusal();
    }
  });
  // Act
  const { result, record } = await runTask(h, demoSpec({ command: deepResultCommand(40) }));
  // Assess: one refusal (not retried: a refusal is an answer), then the minimal write.
  expect(refusals).toBe(1);
  expect(result.status).toBe(TaskStatus.FAILED);
  expect(record.status).toBe(TaskStatus.FAILED);
  expect(record.exit_code).toBe(0);
  expect(record.reason).toMatch(/DynamoDB refused the terminal write \(COMPLETED\): ValidationException: Nesting Levels have exceeded supported limits/);
  expect(record.result).toBeUndefined();
  expect(h.ended).toEqual([record.task_id]);
});

test('the same nesting within the limit is recorded as the result', async () => {
  const h = harness((items) => {
    const values = items.flatMap((i) => Object.values(i.Update?.ExpressionAttributeValues ?? {}));
    if (values.some((v) => nestingOf(v) > DYNAMODB_MAX_NESTING)) throw nestingRefusal();
  });
  const { record } = await runTask(h, demoSpec({ command: deepResultCommand(20) }));
  expect(record.status).toBe(TaskStatus.COMPLETED);
  expect(nestingOf(record.result)).toBe(20);
});

test('a terminal write that cannot reach DynamoDB (every try) releases the task for another attempt instead of failing it', async () => {
  // Prepare: every terminal write (a terminal status in the update) gets no answer.
  let tries = 0;
  const terminal = new Set<unknown>([TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.CANCELLED]);
  const h = harness((items) => {
    if (items.some((i) => Object.values(i.Update?.ExpressionAttributeValues ?? {}).some((v) => terminal.has(v)))) {
      tries++;
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), { code: 'ECONNREFUSED', $metadata: { attempts: 4 } });
    }
  });
  // Act
  const { result, record } = await runTask(h, demoSpec());
  // Assess: bounded tries, then the release (INTERRUPTED, the attempt refunded), the slot freed.
  expect(tries).toBe(3);
  expect(result.status).toBe('RELEASED');
  expect(record.status).toBe(TaskStatus.INTERRUPTED);
  expect(record.attempts_left).toBe(3); // the claim spent one, the release refunded it
  expect(record.reason).toMatch(/the terminal write \(COMPLETED\) could not be made from this instance/);
  expect(h.ended).toEqual([record.task_id]);
});

test('a fenced-out terminal write writes nothing and frees the slot', async () => {
  // Prepare: just before the terminal write, another instance whose clock is past our lease
  // takes the task over (attempt 2): our write then meets a changed record in moto.
  const thief = new TaskStore({ ddb: fleet.clients.ddb, tasksTable: fleet.resources.tasksTable, eventsTable: fleet.resources.eventsTable, timings: config.timings, now: () => Date.now() + 10 * 60_000 });
  let takeover: Awaited<ReturnType<TaskStore['claim']>> | undefined;
  const h = harness(async (items) => {
    const update = items[0]?.Update;
    if (!takeover && Object.values(update?.ExpressionAttributeValues ?? {}).includes(TaskStatus.COMPLETED)) {
      takeover = await thief.claim(String(update?.Key?.task_id), 'i-0000000000000f00d');
    }
  });
  // Act
  const { result, record } = await runTask(h, demoSpec());
  // Assess
  expect(takeover).toMatchObject({ kind: 'claimed', takeover: true, lease: { attempt: 2 } });
  expect(result.status).toBe('FENCED_OUT');
  expect(record).toMatchObject({ status: TaskStatus.CLAIMED, attempt: 2, instance_id: 'i-0000000000000f00d' });
  expect(record.exit_code).toBeUndefined();
  expect(h.ended).toEqual([record.task_id]);
});
