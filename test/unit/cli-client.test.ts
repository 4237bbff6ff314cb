/**
 * The pure parts of the client library and the CLI: paging across statuses, dead-letter
 * decisions, the ABCA status mapping and mirror helpers, error reporting, configuration,
 * formatting and the log follower.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { ABCA_TASK_ID_LABEL, abcaTaskIdOf, abcaTimestamp } from '../../daemon/src/abca-mirror';
import { TaskStatus, encodeEnvelope, type TaskRecord } from '../../daemon/src/contract';
import { fleetNamesFromEnv, loadEnvironment } from '../../scripts/cli/config';
import { CHECKOUT_ROOT, isCheckout } from '../../scripts/lib/local-env-file';
import { EXIT, UsageError, describeError } from '../../scripts/cli/errors';
import { formatDuration, formatLeaseLeft, formatOutcome, formatRecord, table } from '../../scripts/cli/format';
import { formatInstances } from '../../scripts/cli/instances';
import { nextPageCommand } from '../../scripts/cli/tasks';
import { LogFollower } from '../../scripts/cli/log-file';
import { sessionStatusOf } from '../../scripts/lib/abca-adapter';
import { EnqueueFailedError, FleetRequestError, InvalidSpecError, InvalidTaskIdError, TaskNotFoundError } from '../../scripts/lib/client';
import { deadLetterTaskId, decideRedrive } from '../../scripts/lib/dead-letters';
import { decodeCursor, encodeCursor, hasMore, mergeNewestFirst, nextPositions, type PartitionHead, type Positions } from '../../scripts/lib/task-pages';

const record = (over: Partial<TaskRecord> = {}): TaskRecord => ({
  task_id: 't-1',
  status: TaskStatus.RUNNING,
  spec: { image: 'a' },
  created_at: 1,
  updated_at: 1,
  attempt: 1,
  attempts_left: 2,
  ...over,
});

describe('paging across statuses (task-pages)', () => {
  const item = (id: string, created: number) => ({ task_id: id, created_at: created });

  /** Simulates listTasks over in-memory partitions, newest first. */
  function pageThrough(partitions: Record<string, Array<{ task_id: string; created_at: number }>>, limit: number): string[][] {
    const statuses = Object.keys(partitions) as TaskStatus[];
    const pages: string[][] = [];
    let cursor: string | undefined;
    for (let guard = 0; guard < 1000; guard++) {
      const positions: Positions = cursor ? decodeCursor(cursor, statuses) : {};
      const heads: PartitionHead[] = statuses
        .filter((s) => positions[s] !== 'done')
        .map((s) => {
          const sorted = [...partitions[s]].sort((a, b) => b.created_at - a.created_at);
          const pos = positions[s];
          const from = pos && pos !== 'done' ? sorted.findIndex((x) => x.task_id === pos.taskId) + 1 : 0;
          const items = sorted.slice(from, from + limit);
          return { status: s, items, more: from + limit < sorted.length };
        });
      const { page, consumed } = mergeNewestFirst(heads, limit);
      pages.push(page.map((p) => String(p.item.task_id)));
      const next = nextPositions(positions, heads, consumed);
      if (!hasMore(statuses, next)) return pages;
      cursor = encodeCursor(statuses, next);
    }
    throw new Error('paging did not end');
  }

  it('merges newest first and resumes exactly where the page ended', () => {
    const pages = pageThrough({ RUNNING: [item('r1', 10), item('r2', 5)], QUEUED: [item('q1', 8), item('q2', 7), item('q3', 1)], FAILED: [] }, 2);
    expect(pages).toEqual([['r1', 'q1'], ['q2', 'r2'], ['q3']]);
  });

  it('every task appears exactly once, in created_at order, for any partitions and page size', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 12 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 7 }),
        (sizes, limit) => {
          const names = ['QUEUED', 'RUNNING', 'FAILED', 'COMPLETED'];
          const partitions = Object.fromEntries(sizes.map((times, p) => [names[p], times.map((t, i) => item(`${names[p]}-${i}`, t))]));
          const all = pageThrough(partitions, limit).flat();
          const expected = Object.values(partitions).flat();
          expect([...all].sort()).toEqual(expected.map((x) => x.task_id).sort());
          const times = all.map((id) => expected.find((x) => x.task_id === id)!.created_at);
          expect(times).toEqual([...times].sort((a, b) => b - a));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses cursors that are not its own or belong to other statuses', () => {
    const c = encodeCursor(['RUNNING'], { RUNNING: { taskId: 't-1', createdAt: 5 } });
    expect(decodeCursor(c, ['RUNNING'])).toEqual({ RUNNING: { taskId: 't-1', createdAt: 5 } });
    expect(() => decodeCursor(c, ['QUEUED'])).toThrow(/belongs to a list of RUNNING/);
    expect(() => decodeCursor('not a cursor!', ['RUNNING'])).toThrow(/invalid cursor/);
    expect(() => decodeCursor(Buffer.from('{"v":1,"s":["RUNNING"],"p":{"RUNNING":["x","y"]}}').toString('base64url'), ['RUNNING'])).toThrow(/bad position/);
    expect(() => decodeCursor('a'.repeat(9000), ['RUNNING'])).toThrow(/invalid cursor/);
  });
});

describe('dead-letter redrive decisions', () => {
  it('finds the task id in a valid or a malformed envelope', () => {
    expect(deadLetterTaskId(encodeEnvelope('t-1'))).toBe('t-1');
    expect(deadLetterTaskId(JSON.stringify({ v: 9, task_id: 't-2' }))).toBe('t-2');
    expect(deadLetterTaskId('garbage')).toBeUndefined();
  });

  it.each([
    [undefined, {}, 'keep'],
    ['t-1', {}, 'keep'],
    ['t-1', { problems: ['bad'] }, 'keep'],
    ['t-1', { record: record({ status: TaskStatus.COMPLETED }) }, 'drop'],
    ['t-1', { record: record({ status: TaskStatus.CANCELLED }) }, 'drop'],
    ['t-1', { record: record({ status: TaskStatus.QUEUED }) }, 'resend'],
    ['t-1', { record: record({ status: TaskStatus.INTERRUPTED }) }, 'resend'],
    ['t-1', { record: record({ status: TaskStatus.RUNNING }) }, 'resend'],
  ] as const)('task %s with %j → %s', (taskId, lookup, action) => {
    expect(decideRedrive(taskId, lookup).action).toBe(action);
  });
});

describe('ABCA', () => {
  it.each([
    [TaskStatus.QUEUED, { status: 'running', reason: 'QUEUED' }],
    [TaskStatus.RUNNING, { status: 'running', reason: 'RUNNING' }],
    [TaskStatus.CANCEL_REQUESTED, { status: 'running', reason: 'CANCEL_REQUESTED' }],
    [TaskStatus.INTERRUPTED, { status: 'running', reason: 'INTERRUPTED' }],
    [TaskStatus.COMPLETED, { status: 'completed' }],
  ])('the fleet status %s is ABCA %j', (status, expected) => {
    expect(sessionStatusOf(record({ status }))).toEqual(expected);
  });

  it('failed, timed out and cancelled tasks are failed sessions with the reason', () => {
    expect(sessionStatusOf(record({ status: TaskStatus.FAILED, reason: 'exit code 3', exit_code: 3 }))).toEqual({ status: 'failed', error: 'fleet task FAILED: exit code 3 (exit code 3)', reason: 'FAILED' });
    expect(sessionStatusOf(record({ status: TaskStatus.TIMED_OUT, reason: 'timed out after 2 s' })).status).toBe('failed');
    expect(sessionStatusOf(record({ status: TaskStatus.CANCELLED }))).toEqual({ status: 'failed', error: 'fleet task CANCELLED: no reason recorded', reason: 'CANCELLED' });
  });

  it('the mirror reads the ABCA task id from the label, only when it is a plausible id', () => {
    expect(abcaTaskIdOf({ labels: { [ABCA_TASK_ID_LABEL]: '01JD8X5K2M3N4P5Q6R7S8T9V0W' } })).toBe('01JD8X5K2M3N4P5Q6R7S8T9V0W');
    expect(abcaTaskIdOf({ labels: { [ABCA_TASK_ID_LABEL]: 'x; drop' } })).toBeUndefined();
    expect(abcaTaskIdOf({ labels: {} })).toBeUndefined();
    expect(abcaTaskIdOf({})).toBeUndefined();
    expect(abcaTaskIdOf(null)).toBeUndefined();
    expect(abcaTimestamp(Date.UTC(2026, 10, 28, 10, 0, 1, 999))).toBe('2026-11-28T10:00:01Z');
  });
});

describe('error reporting', () => {
  it.each([
    [new UsageError('bad', 'do this'), EXIT.usage, ['fleet: bad', '  hint: do this']],
    [new InvalidTaskIdError('x y'), EXIT.usage, [expect.stringMatching(/^fleet: invalid task id "x y"/), expect.stringMatching(/hint/)]],
    [new InvalidSpecError(['spec.cpus: too many']), EXIT.usage, ['fleet: the task spec is invalid:', '  - spec.cpus: too many', expect.stringMatching(/hint/)]],
    [new TaskNotFoundError('t-9'), EXIT.notFound, ['fleet: no task t-9 in table tasks', expect.stringMatching(/fleet list/)]],
    [new EnqueueFailedError('t-9', new Error('down')), EXIT.failure, [expect.stringMatching(/recorded as QUEUED/), expect.stringMatching(/same --idempotency-key/)]],
    [new FleetRequestError('reading task t-9', Object.assign(new Error('no route'), { name: 'TimeoutError' })), EXIT.failure, ['fleet: reading task t-9 failed: TimeoutError: no route', expect.stringMatching(/AWS_REGION/)]],
    [new TypeError('boom\nsecond line'), EXIT.failure, ['fleet: unexpected error: TypeError: boom second line', expect.stringMatching(/FLEET_DEBUG=1/)]],
  ])('%s → exit %i', (err, code, lines) => {
    const report = describeError(err, { tasksTable: 'tasks' });
    expect(report.code).toBe(code);
    expect(report.lines).toEqual(lines);
  });

  it('a usage error without its own hint points at the help of the command that ran', () => {
    expect(describeError(new UsageError('--limit: got "0"'), { command: 'dlq list' }).lines).toEqual(['fleet: --limit: got "0"', '  hint: "fleet dlq list --help" shows the options and an example']);
  });
});

describe('configuration', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-config-'));
  const full = ['FLEET_QUEUE_URL=q', 'FLEET_DLQ_URL=d', 'FLEET_TASKS_TABLE=t', 'FLEET_EVENTS_TABLE=e', 'FLEET_INSTANCES_TABLE=i', 'FLEET_PAYLOAD_BUCKET=b', 'FLEET_CANCEL_DOCUMENT=c', 'FLEET_NAME=n'].join('\n');

  it('names every missing variable in one usage error', () => {
    try {
      fleetNamesFromEnv({ FLEET_QUEUE_URL: 'q' });
      throw new Error('expected an error');
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toBe('no fleet configured: FLEET_DLQ_URL, FLEET_TASKS_TABLE, FLEET_EVENTS_TABLE, FLEET_INSTANCES_TABLE, FLEET_PAYLOAD_BUCKET are not set');
    }
  });

  it('--env-file wins over the environment; the local stack file only fills gaps, and only without FLEET_QUEUE_URL', () => {
    const file = path.join(dir, 'fleet.env');
    fs.writeFileSync(file, `${full}\nAWS_REGION=eu-west-1\n`);
    const env: NodeJS.ProcessEnv = { FLEET_TASKS_TABLE: 'other', AWS_REGION: 'us-east-1' };
    loadEnvironment(file, env);
    expect(fleetNamesFromEnv(env)).toMatchObject({ tasksTable: 't', cancelDocument: 'c', fleetName: 'n' });
    expect(env.AWS_REGION).toBe('eu-west-1');

    const local: NodeJS.ProcessEnv = { FLEET_TASKS_TABLE: 'mine' };
    const notices: string[] = [];
    expect(loadEnvironment(undefined, local, { file, inCheckout: true }, (l) => notices.push(l))).toBe(file);
    expect(local.FLEET_TASKS_TABLE).toBe('mine');
    expect(local.FLEET_QUEUE_URL).toBe('q');
    expect(notices).toEqual([`fleet: using the local stack's environment from ${file} (FLEET_QUEUE_URL is not set)`]);

    const configured: NodeJS.ProcessEnv = { FLEET_QUEUE_URL: 'mine' };
    expect(loadEnvironment(undefined, configured, { file, inCheckout: true }, (l) => notices.push(l))).toBeUndefined();
    expect(configured.FLEET_DLQ_URL).toBeUndefined();
    expect(notices).toHaveLength(1);
    expect(() => loadEnvironment(path.join(dir, 'missing.env'), {})).toThrow(/--env-file .*missing\.env: cannot be read \(ENOENT\)/);
  });

  it('never guesses the local stack outside a checkout, nor when its file is missing: a usage error says to export FLEET_* or pass --env-file', () => {
    // Prepare: a local.env that exists, but no checkout around it; and a checkout without the file.
    const file = path.join(dir, 'stray.env');
    fs.writeFileSync(file, `${full}\n`);
    const notices: string[] = [];
    const outside: NodeJS.ProcessEnv = {};
    // Act / Assess
    const refused = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err as UsageError;
      }
      throw new Error('expected a usage error');
    };
    const a = refused(() => loadEnvironment(undefined, outside, { file, inCheckout: false }, (l) => notices.push(l)));
    expect(a).toBeInstanceOf(UsageError);
    expect(a.message).toBe('no fleet configured: FLEET_QUEUE_URL is not set (and outside an agent-fleet checkout no local stack is assumed)');
    expect(a.hint).toMatch(/export the fleet's FLEET_\* variables .* or pass --env-file FILE/);
    expect(outside.FLEET_QUEUE_URL).toBeUndefined();
    const b = refused(() => loadEnvironment(undefined, {}, { file: path.join(dir, 'nope', 'local.env'), inCheckout: true }, (l) => notices.push(l)));
    expect(b.message).toMatch(/^no fleet configured: FLEET_QUEUE_URL is not set and the local stack's .*nope\/local\.env does not exist$/);
    expect(b.hint).toMatch(/--env-file FILE, or start the local stack with "npm run local -- up"/);
    expect(notices).toEqual([]);
  });

  it('knows a checkout by its package.json named agent-fleet', () => {
    expect(isCheckout(CHECKOUT_ROOT)).toBe(true);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'something-else' }));
    expect(isCheckout(dir)).toBe(false);
    expect(isCheckout(path.join(dir, 'no-such-dir'))).toBe(false);
  });
});

describe('formatting and the log follower', () => {
  it.each([
    [850, '850ms'],
    [4200, '4.2s'],
    [42_000, '42s'],
    [185_000, '3m 05s'],
    [7_800_000, '2h 10m'],
    [3 * 86_400_000 + 4 * 3_600_000, '3d 4h'],
  ])('formatDuration(%i) = %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('a lease never shows a negative time: "expired … ago" once it passed', () => {
    const now = 1_000_000;
    expect(formatLeaseLeft(now + 90_000, now)).toBe('1m 30s left');
    expect(formatLeaseLeft(now - 12_000, now)).toBe('expired 12s ago');
    expect(formatLeaseLeft(now, now)).toBe('0ms left');
    const running = record({ status: TaskStatus.RUNNING, attempt: 1, instance_id: 'i-1', lease_expires_at: now - 12_000, heartbeat_at: now - 130_000 });
    expect(formatRecord(running, now)).toMatch(/^lease\s+until .* \(expired 12s ago\)$/m);
    expect(formatRecord(running, now)).not.toMatch(/[ (]-\d/);
  });

  it('fleet instances: version, AMI, launch template and the EC2 state; a terminated instance reads terminated', () => {
    const now = 10_000_000;
    const text = formatInstances([
      { instanceId: 'i-0aaa', status: 'idle', running: [], heartbeatAt: now - 5_000, launchedAt: now - 3_600_000, ec2State: 'running', stale: false, version: '0.1.0', commit: '1a2b3c4d5e6f', amiId: 'ami-0123', launchTemplateId: 'lt-0abc', launchTemplateVersion: '4', availabilityZone: 'us-east-1a' },
      { instanceId: 'i-0bbb', status: 'terminated', running: [], heartbeatAt: now - 86_400_000, ec2State: 'not listed', stale: false, version: '0.1.0', commit: 'unknown' },
    ], now);
    const [header, first, second] = text.split('\n');
    expect(header.split(/\s{2,}/)).toEqual(['INSTANCE', 'STATUS', 'EC2', 'TASK', 'HEARTBEAT', 'UPTIME', 'FLEETD', 'AMI', 'LAUNCH TEMPLATE', 'AZ', 'NOTE']);
    expect(first.split(/\s{2,}/)).toEqual(['i-0aaa', 'idle', 'running', '-', '5.0s ago', '1h 00m', '0.1.0@1a2b3c4d', 'ami-0123', 'lt-0abc:4', 'us-east-1a']);
    expect(second.split(/\s{2,}/)).toEqual(['i-0bbb', 'terminated', 'not listed', '-', '24h 00m ago', '-', '0.1.0', '-', '-', '-', 'EC2 no longer lists it']);
  });

  it('the next page\'s command keeps every option given, --env-file included, shell-quoted', () => {
    expect(nextPageCommand({ envFile: "/tmp/my env's.env", statusText: 'running,queued', limit: 5 }, 'eyJhIjoxfQ==')).toBe("fleet --env-file '/tmp/my env'\\''s.env' list --status running,queued --limit 5 --cursor eyJhIjoxfQ==");
    expect(nextPageCommand({ limit: 20 }, 'c')).toBe('fleet list --limit 20 --cursor c');
  });

  it('tables and outcomes', () => {
    expect(table(['a', 'bb'], [['xxx', 'y']])).toBe('A    BB\nxxx  y');
    expect(formatOutcome(record({ status: TaskStatus.FAILED, duration_ms: 3200, exit_code: 3, reason: 'exit code 3' }))).toBe('t-1 FAILED in 3.2s (exit code 3): exit code 3');
  });

  it('follows a growing file by lines, holds a partial line and a cut UTF-8 character, restarts after truncation', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cli-log-')), 't.log');
    const f = new LogFollower(file);
    expect(f.available()).toBe(false);
    fs.writeFileSync(file, 'one\ntw');
    expect(f.readLines()).toEqual(['one']);
    const euro = Buffer.from('€');
    fs.appendFileSync(file, Buffer.concat([Buffer.from('o\nthree '), euro.subarray(0, 1)]));
    expect(f.readLines()).toEqual(['two']);
    fs.appendFileSync(file, Buffer.concat([euro.subarray(1), Buffer.from('\n')]));
    expect(f.readLines()).toEqual(['three €']);
    fs.writeFileSync(file, 'new\n');
    expect(f.readLines()).toEqual(['new']);
    fs.appendFileSync(file, 'last');
    expect(f.readLines(true)).toEqual(['last']);
  });
});
