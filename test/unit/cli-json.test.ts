/**
 * One casing for every `--json` output of the CLI: snake_case (docs/cli.md). Each command with a
 * `--json` option is run (its command function, against a fake client) or its shaper is called
 * on a fixture with every field set, and every key of the output is walked; a camelCase key
 * fails. User data keeps the submitter's keys (spec.env names, the payload, result.json) and is
 * not walked. A new `--json` command that is not in the table below fails the first test.
 */
import { Command } from 'commander';
import { EventType, TaskStatus, type TaskEvent, type TaskRecord } from '../../daemon/src/contract';
import { artifactsCommand } from '../../scripts/cli/artifacts';
import { cancelCommand } from '../../scripts/cli/cancel';
import type { CliContext } from '../../scripts/cli/config';
import { instancesCommand, dlqListCommand, dlqRedriveCommand } from '../../scripts/cli/instances';
import { logsCommand } from '../../scripts/cli/logs';
import { decisionJson, reportJson } from '../../scripts/cli/operate';
import { buildProgram } from '../../scripts/cli/program';
import { rolloutOutcomeJson, rolloutStatusJson } from '../../scripts/cli/rollout';
import { submitCommand } from '../../scripts/cli/submit';
import { listCommand, statusCommand } from '../../scripts/cli/tasks';
import { watchTask } from '../../scripts/cli/watch';
import type { CancelResult, DeadLetter, FleetClient, InstanceView, RedriveOutcome } from '../../scripts/lib/client';

const SNAKE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
/** Paths (dot-separated, array indexes dropped) whose keys are user data, not ours. */
const USER_DATA = [/(^|\.)spec\.env$/, /(^|\.)spec\.payload$/, /(^|\.)spec\.secrets$/, /(^|\.)result$/, /(^|\.)detail$/];

/** Every key of `value` that is not snake_case, with its path. */
function camelKeys(value: unknown, at = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => camelKeys(v, at));
  if (typeof value !== 'object' || value === null) return [];
  if (USER_DATA.some((re) => re.test(at))) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const path = at ? `${at}.${k}` : k;
    return [...(SNAKE.test(k) ? [] : [path]), ...camelKeys(v, path)];
  });
}

const T = Date.UTC(2026, 0, 2, 3, 4, 5);
const ID = 't-01jd8x5k2m3n4p5q6r7s8t9v0w';
const RECORD: TaskRecord = {
  task_id: ID,
  status: TaskStatus.COMPLETED,
  spec: { image: 'agent:1', memory_mb: 512, timeout_s: 60, env: { camelCaseVar: 'user data' }, payload: { promptText: 'user data' } },
  created_at: T,
  updated_at: T,
  attempt: 2,
  attempts_left: 1,
  max_attempts: 3,
  takeovers: 1,
  idempotency_key: 'k',
  instance_id: 'i-0123456789abcdef0',
  heartbeat_at: T,
  container_id: 'c',
  claimed_at: T,
  started_at: T,
  finished_at: T,
  exit_code: 0,
  oom_killed: false,
  duration_ms: 10,
  result: { someResult: 'user data' },
  log_tail: 'line\n',
  reason: 'r',
  cancel_requested_at: T,
  message_sent_at: T,
  expires_at: 1,
};
const EVENT: TaskEvent = { task_id: ID, event_id: '01', type: EventType.COMPLETED, at: T, status: TaskStatus.COMPLETED, attempt: 2, instance_id: 'i-0123456789abcdef0', detail: { exit_code: 0 } };
const INSTANCE: InstanceView = {
  instanceId: 'i-0123456789abcdef0',
  status: 'terminated',
  running: [ID],
  heartbeatAt: T,
  launchedAt: T,
  ec2State: 'terminated',
  stale: false,
  slots: 2,
  availabilityZone: 'us-east-1a',
  reason: 'r',
  version: '0.1.0',
  commit: 'abc',
  amiId: 'ami-0123',
  launchTemplateId: 'lt-0123',
  launchTemplateVersion: '4',
};
const LETTER: DeadLetter = { messageId: 'm', taskId: ID, reason: 'r', sentAt: T, receiveCount: 2, body: '{}' };
const CANCELS: CancelResult[] = [
  { outcome: 'cancelled', taskId: ID, from: TaskStatus.QUEUED, message: 'm' },
  { outcome: 'cancel-requested', taskId: ID, from: TaskStatus.RUNNING, instanceId: 'i-1', delivery: { via: 'ssm', instanceId: 'i-1', commandId: 'c' }, message: 'm' },
  { outcome: 'cancel-requested', taskId: ID, from: TaskStatus.RUNNING, delivery: { via: 'heartbeat', why: 'w' }, message: 'm' },
  { outcome: 'already-ended', taskId: ID, status: TaskStatus.COMPLETED, message: 'm' },
];
const REDRIVE: RedriveOutcome[] = [
  { deadLetter: LETTER, decision: { action: 'resend', taskId: ID, why: 'w' }, applied: true },
  { deadLetter: { ...LETTER, taskId: undefined }, decision: { action: 'keep', why: 'w' }, applied: false, error: 'e' },
];

/** A client that answers every read with the fixtures above. */
const fakeClient = {
  names: {},
  clients: {
    region: 'us-east-1',
    // One artifact listed (ListObjectsV2), for `fleet artifacts --json`.
    s3: { send: async () => ({ Contents: [{ Key: `artifacts/${ID}/1/reports/summary.md`, Size: 56, LastModified: new Date(T) }] }) },
  },
  getTask: async () => RECORD,
  waitForTerminal: async () => RECORD,
  listTasks: async () => ({ tasks: [RECORD], nextCursor: 'c', skipped: 1 }),
  submitTask: async () => ({ taskId: ID, created: true, record: { ...RECORD, status: TaskStatus.QUEUED } }),
  listInstances: async () => ({ instances: [INSTANCE, { ...INSTANCE, status: 'idle', ec2State: undefined, version: undefined }], warnings: ['w'] }),
  listDeadLetters: async () => [LETTER],
  redriveDeadLetters: async () => REDRIVE,
  async *watchTask() {
    yield { kind: 'event', event: EVENT };
    yield { kind: 'record', record: RECORD };
  },
} as unknown as FleetClient;
const ctx = { client: fakeClient, names: { payloadBucket: 'b' } } as unknown as CliContext;

/** Runs `fn` and returns what it wrote to stdout, parsed: one JSON document, or JSON lines. */
async function jsonOut(fn: () => Promise<unknown>): Promise<unknown[]> {
  let out = '';
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await fn();
  } finally {
    write.mockRestore();
    err.mockRestore();
  }
  try {
    return [JSON.parse(out)];
  } catch {
    return out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
  }
}

const logDir = '/nonexistent-fleet-log-dir';
/** Every command with --json, by its full name, and how to get its output. */
const OUTPUTS: Record<string, () => Promise<unknown[]>> = {
  submit: async () => [...(await jsonOut(() => submitCommand(ctx, { image: 'a', json: true }))), ...(await jsonOut(() => submitCommand(ctx, { image: 'a', json: true, follow: true, logDir })))],
  status: () => jsonOut(() => statusCommand(ctx, ID, { json: true })),
  list: () => jsonOut(() => listCommand(ctx, { limit: 1, json: true })),
  watch: () => jsonOut(() => watchTask(fakeClient, ID, { json: true, logDir, intervalMs: 1 })),
  logs: () => jsonOut(() => logsCommand(ctx, ID, { json: true, logDir })),
  artifacts: () => jsonOut(() => artifactsCommand(ctx, ID, { json: true })),
  cancel: async () => {
    const docs: unknown[] = [];
    // One at a time: each run captures stdout.
    for (const r of CANCELS) docs.push(...(await jsonOut(() => cancelCommand({ ...ctx, client: { ...fakeClient, cancelTask: async () => r } as unknown as FleetClient }, ID, { json: true, wait: true }))));
    return docs;
  },
  instances: () => jsonOut(() => instancesCommand(ctx, { json: true })),
  'dlq list': () => jsonOut(() => dlqListCommand(ctx, { limit: 1, json: true })),
  'dlq redrive': () => jsonOut(() => dlqRedriveCommand(ctx, { limit: 1, json: true })),
  reconcile: async () => [
    reportJson({
      startedAt: T,
      durationMs: 1,
      scanned: 1,
      resent: [ID],
      requeued: [],
      failed: [],
      cancelled: [],
      raced: [],
      resendDeferred: 0,
      staleInstances: [{ instance_id: 'i-1', status: 'idle', last_seen_at: T, silent_ms: 1, running: [] }],
      errors: [{ task_id: ID, during: 'resend', name: 'E', message: 'm' }],
    }),
  ],
  'rollout start': async () => [rolloutOutcomeJson('started', MARKER)],
  'rollout abort': async () => [rolloutOutcomeJson('aborted', MARKER)],
  'rollout finish': async () => [rolloutOutcomeJson('finished', MARKER, ['i-1'])],
  'rollout status': async () => [
    rolloutStatusJson({
      asgName: 'a',
      marker: MARKER,
      groupVersion: '2',
      instances: [{ instanceId: 'i-1', generation: 'old', launchTemplateVersion: '1', status: 'retiring', lifecycleState: 'InService', running: [ID] }],
      tasksOnOld: [{ taskId: ID, instanceId: 'i-1' }],
      done: false,
      warnings: [],
    }),
  ],
  scale: async () => [decisionJson({ fleetName: 'f', asgName: 'a', visible: 1, inFlight: 0, slotsPerInstance: 1, buffer: 0, min: 0, max: 3, current: 0, desired: 1, raised: true, unhealthyInstances: 0, oldestUnclaimedTaskAgeSeconds: 3 })],
};

const MARKER = { v: 1 as const, launch_template_id: 'lt-0123', target_version: '2', previous_version: '1', started_at: '2026-12-02T10:00:00.000Z' };

function jsonCommands(program: Command, prefix = ''): string[] {
  return program.commands.flatMap((c) => {
    const name = `${prefix}${c.name()}`;
    return [...(c.options.some((o) => o.long === '--json') ? [name] : []), ...jsonCommands(c, `${name} `)];
  });
}

test('every command with --json is walked below', () => {
  expect(jsonCommands(buildProgram(() => undefined)).sort()).toEqual(Object.keys(OUTPUTS).sort());
});

test('the walker finds camelCase keys, and skips user data', () => {
  expect(camelKeys({ ok_key: 1, badKey: { nested_ok: [{ alsoBad: 1 }] }, spec: { env: { camelCaseVar: 1 } } })).toEqual(['badKey', 'badKey.nested_ok.alsoBad']);
});

test.each(Object.keys(OUTPUTS))('fleet %s --json: snake_case keys only', async (name) => {
  // Act
  const docs = await OUTPUTS[name]();
  // Assess
  expect(docs.length).toBeGreaterThan(0);
  expect(docs.flatMap((d) => camelKeys(d))).toEqual([]);
});

test('instances --json names the version, the AMI, the launch template and the EC2 state', async () => {
  const [doc] = (await OUTPUTS.instances()) as Array<{ instances: Array<Record<string, unknown>> }>;
  expect(doc.instances[0]).toMatchObject({ instance_id: INSTANCE.instanceId, status: 'terminated', ec2_state: 'terminated', version: '0.1.0', commit: 'abc', ami_id: 'ami-0123', launch_template_id: 'lt-0123', launch_template_version: '4' });
});

test('cancel --json: the delivery in snake_case, and the final record with --wait', async () => {
  const docs = (await OUTPUTS.cancel()) as Array<Record<string, unknown>>;
  expect(docs[1]).toMatchObject({ outcome: 'cancel-requested', task_id: ID, instance_id: 'i-1', delivery: { via: 'ssm', instance_id: 'i-1', command_id: 'c' }, final: { task_id: ID } });
  expect(docs[3]).toEqual({ outcome: 'already-ended', task_id: ID, status: TaskStatus.COMPLETED, message: 'm' });
});
