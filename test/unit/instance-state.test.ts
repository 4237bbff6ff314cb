/**
 * The instance's tags and row (daemon/src/instance.ts): a change of the running tasks alone,
 * and busy → idle, wait up to a second for more, any other status change does not; a state set while an earlier write
 * still waits for its turn replaces that write's state (issue #18: task starts and ends at
 * several busy slots); the newest state is always written, in order, and each caller's
 * promise resolves once its state (or a newer one) is written.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { InstanceStatus } from '../../daemon/src/contract';
import { InstanceState, RUNNING_ONLY_WAIT_MS } from '../../daemon/src/instance';
import type { InstanceTags } from '../../daemon/src/instance-tags';
import { Logger } from '../../daemon/src/log';

const quiet = new Logger({}, undefined, 'error', () => undefined);

function recordingTags(): { tags: InstanceTags; calls: string[]; release: () => void } {
  const calls: string[] = [];
  let gate: (() => void) | undefined;
  let blocked: Promise<void> | undefined = new Promise<void>((r) => (gate = r));
  const tags: InstanceTags = {
    put: async (_id, t) => {
      calls.push(`put ${JSON.stringify(t)}`);
      // The first write blocks until released: later states queue behind it.
      const wait = blocked;
      blocked = undefined;
      await wait;
    },
    remove: async (_id, keys) => void calls.push(`remove ${keys.join(',')}`),
    read: async () => ({}),
    close: () => undefined,
  };
  return { tags, calls, release: () => gate!() };
}

test('states set while a write is waiting collapse into one write of the newest state', async () => {
  // Prepare
  const { tags, calls, release } = recordingTags();
  const rows: unknown[] = [];
  const ddb = { send: async (cmd: { input: { Item: unknown } }) => void rows.push(cmd.input.Item) } as unknown as DynamoDBDocumentClient;
  const instance = new InstanceState({ tags, ddb, instancesTable: 'rows', instanceId: 'i-1', tagPrefix: 'p', slots: 4, availabilityZone: 'az', log: quiet });

  // Act
  const first = instance.set(InstanceStatus.BUSY, ['t-1']);
  await new Promise((r) => setImmediate(r));
  const second = instance.set(InstanceStatus.BUSY, ['t-1', 't-2']);
  const third = instance.set(InstanceStatus.BUSY, ['t-2']);
  const fourth = instance.set(InstanceStatus.IDLE, []);
  release();
  await Promise.all([first, second, third, fourth]);

  // Assess
  expect(calls).toEqual(['put {"p:status":"busy","p:task-id":"t-1"}', 'put {"p:status":"idle"}', 'remove p:task-id']);
  expect(rows.map((r) => (r as { status: string; running: string[] }).running)).toEqual([['t-1'], []]);
  expect(instance.status).toBe(InstanceStatus.IDLE);
});

test('a state set after the waiting write began gets a write of its own', async () => {
  // Prepare
  const { tags, calls, release } = recordingTags();
  release();
  const ddb = { send: async () => undefined } as unknown as DynamoDBDocumentClient;
  const instance = new InstanceState({ tags, ddb, instancesTable: 'rows', instanceId: 'i-1', tagPrefix: 'p', slots: 4, availabilityZone: 'az', log: quiet });

  // Act
  await instance.set(InstanceStatus.BUSY, ['t-1']);
  await instance.set(InstanceStatus.DRAINING, [], 'drain');

  // Assess
  expect(calls).toEqual(['put {"p:status":"busy","p:task-id":"t-1"}', 'put {"p:status":"draining"}', 'remove p:task-id']);
});

test('a change of the running tasks alone waits up to a second for more; a status change or flush ends the wait', async () => {
  // Prepare
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
  const { tags, calls, release } = recordingTags();
  release();
  const ddb = { send: async () => undefined } as unknown as DynamoDBDocumentClient;
  const instance = new InstanceState({ tags, ddb, instancesTable: 'rows', instanceId: 'i-1', tagPrefix: 'p', slots: 4, availabilityZone: 'az', log: quiet });
  const settle = () => new Promise((r) => setImmediate(r));
  try {
    await instance.set(InstanceStatus.BUSY, ['t-1']);

    // Act / Assess: running tasks alone: nothing written until the second is up
    const a = instance.set(InstanceStatus.BUSY, ['t-1', 't-2']);
    const b = instance.set(InstanceStatus.BUSY, ['t-2', 't-3']);
    await settle();
    expect(calls).toHaveLength(1);
    jest.advanceTimersByTime(RUNNING_ONLY_WAIT_MS);
    await Promise.all([a, b]);
    expect(calls).toEqual(['put {"p:status":"busy","p:task-id":"t-1"}', 'put {"p:status":"busy","p:task-id":"t-2,t-3"}']);

    // a status change does not wait, and takes what waited with it
    const c = instance.set(InstanceStatus.BUSY, ['t-3']);
    const d = instance.set(InstanceStatus.DRAINING, [], 'drain');
    await Promise.all([c, d]);
    expect(calls.slice(2)).toEqual(['put {"p:status":"draining"}', 'remove p:task-id']);

    // flush ends a wait
    void instance.set(InstanceStatus.DRAINING, ['t-4'], 'drain');
    await instance.flush();
    expect(calls.slice(4)).toEqual(['put {"p:status":"draining","p:task-id":"t-4"}']);
  } finally {
    jest.useRealTimers();
  }
});

test('busy → idle waits a second: the next task of a backlog is one write, a last task ends idle', async () => {
  // Prepare
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
  const { tags, calls, release } = recordingTags();
  release();
  const rows: Array<{ status: string; running: string[] }> = [];
  const ddb = { send: async (cmd: { input: { Item: { status: string; running: string[] } } }) => void rows.push(cmd.input.Item) } as unknown as DynamoDBDocumentClient;
  const instance = new InstanceState({ tags, ddb, instancesTable: 'rows', instanceId: 'i-1', tagPrefix: 'p', slots: 1, availabilityZone: 'az', log: quiet });
  const settle = () => new Promise((r) => setImmediate(r));
  try {
    await instance.set(InstanceStatus.BUSY, ['t-1']);

    // Act / Assess: t-1 ends and t-2 is claimed within the wait: busy with t-2, written once
    const idle = instance.set(InstanceStatus.IDLE, []);
    await settle();
    expect(calls).toHaveLength(1);
    const busy = instance.set(InstanceStatus.BUSY, ['t-2']);
    await Promise.all([idle, busy]);
    expect(calls).toEqual(['put {"p:status":"busy","p:task-id":"t-1"}', 'put {"p:status":"busy","p:task-id":"t-2"}']);
    expect(rows.map((r) => [r.status, r.running])).toEqual([['busy', ['t-1']], ['busy', ['t-2']]]);

    // t-2 ends and nothing follows: idle is written once the second is up
    const last = instance.set(InstanceStatus.IDLE, []);
    await settle();
    expect(calls).toHaveLength(2);
    jest.advanceTimersByTime(RUNNING_ONLY_WAIT_MS);
    await last;
    expect(calls.slice(2)).toEqual(['put {"p:status":"idle"}', 'remove p:task-id']);
    expect(rows[rows.length - 1]).toMatchObject({ status: 'idle', running: [] });
  } finally {
    jest.useRealTimers();
  }
});
