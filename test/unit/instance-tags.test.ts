/**
 * fleetd's EC2 tag helper process (daemon/src/instance-tags.ts): the JSON protocol over IPC, an
 * AWS error coming back typed and judged by the one retry policy, a helper that dies being
 * replaced under RETRY_POLICIES.taskStep (on a fake clock: no test waits real backoff).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InstanceTagsError, InstanceTagsProcess, TagHelperExitedError, deserializeAwsError, serializeAwsError } from '../../daemon/src/instance-tags';
import { Logger } from '../../daemon/src/log';
import { isTransient, type Clock } from '../../daemon/src/retry';

const quiet = new Logger({}, undefined, 'error', () => undefined);
const noWait: Clock = { now: () => 0, sleep: () => Promise.resolve(), random: () => 0 };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'instance-tags-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A stand-in helper (plain JS, no SDK) speaking the same protocol; it records what it got. */
function fakeHelper(body: string): { script: string; execArgv: string[] } {
  const script = path.join(dir, `helper-${Math.random().toString(36).slice(2)}.js`);
  fs.writeFileSync(script, `${body}\nprocess.on('disconnect', () => process.exit(0));\n`);
  return { script, execArgv: [] };
}

test('requests and answers cross the IPC channel as data; one child serves calls in a row', async () => {
  // Prepare
  const entry = fakeHelper(`process.on('message', (m) => process.send({ id: m.id, ok: true, ...(m.op === 'read' ? { value: { seen: JSON.stringify(m) } } : {}) }));`);
  const tags = new InstanceTagsProcess({ region: 'eu-west-1', log: quiet, entry });
  try {
    // Act
    await tags.put('i-0abc', { 'agent-fleet:status': 'idle' });
    await tags.remove('i-0abc', ['agent-fleet:task-id']);
    const read = await tags.read('i-0abc', ['aws:ec2launchtemplate:id']);
    // Assess
    expect(JSON.parse(read.seen)).toEqual({ id: 3, op: 'read', instanceId: 'i-0abc', keys: ['aws:ec2launchtemplate:id'] });
    expect(tags.started).toBe(1);
    expect(tags.alive).toBe(true);
  } finally {
    tags.close();
  }
});

test('an AWS error comes back as InstanceTagsError whose cause the retry policy judges', async () => {
  // Prepare: a throttled call (transient) and an access denied (not)
  const entry = fakeHelper(`process.on('message', (m) => process.send({ id: m.id, ok: false, error: m.op === 'put'
    ? { name: 'RequestLimitExceeded', message: 'slow down', $metadata: { httpStatusCode: 503 } }
    : { name: 'UnauthorizedOperation', message: 'not allowed', $metadata: { httpStatusCode: 403 } } }));`);
  const tags = new InstanceTagsProcess({ region: 'eu-west-1', log: quiet, entry });
  try {
    // Act
    const throttled = await tags.put('i-0abc', { k: 'v' }).catch((e: unknown) => e);
    const denied = await tags.remove('i-0abc', ['k']).catch((e: unknown) => e);
    // Assess
    expect(throttled).toBeInstanceOf(InstanceTagsError);
    expect((throttled as Error).message).toMatch(/RequestLimitExceeded: slow down/);
    expect(((throttled as Error).cause as Error).name).toBe('RequestLimitExceeded');
    expect(isTransient(throttled)).toBe(true);
    expect(denied).toBeInstanceOf(InstanceTagsError);
    expect(isTransient(denied)).toBe(false);
    expect(tags.started).toBe(1);
  } finally {
    tags.close();
  }
});

test('a helper that dies holding a call is replaced, and the call tried again in the new one', async () => {
  // Prepare: the first child exits on its first request; later children answer
  const marker = path.join(dir, 'died-once');
  const entry = fakeHelper(`const fs = require('fs');
process.on('message', (m) => { if (!fs.existsSync(${JSON.stringify(marker)})) { fs.writeFileSync(${JSON.stringify(marker)}, ''); process.exit(1); } process.send({ id: m.id, ok: true }); });`);
  const tags = new InstanceTagsProcess({ region: 'eu-west-1', log: quiet, entry, clock: noWait });
  try {
    // Act
    await tags.put('i-0abc', { k: 'v' });
    // Assess
    expect(tags.started).toBe(2);
  } finally {
    tags.close();
  }
});

test('a helper that never runs fails the call with TagHelperExitedError once the policy is spent', async () => {
  // Prepare
  const entry = fakeHelper(`process.exit(3);`);
  const tags = new InstanceTagsProcess({ region: 'eu-west-1', log: quiet, entry, clock: noWait });
  // Act
  const err = await tags.put('i-0abc', { k: 'v' }).catch((e: unknown) => e);
  // Assess
  expect(err).toBeInstanceOf(TagHelperExitedError);
  expect(tags.started).toBe(5);
});

test('the real helper (TypeScript entry through tsx) reports an unreachable endpoint as a transient InstanceTagsError', async () => {
  // Prepare: nothing listens on the discard port
  const saved = { ...process.env };
  Object.assign(process.env, { AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_MAX_ATTEMPTS: '1' });
  const tags = new InstanceTagsProcess({ region: 'eu-west-1', log: quiet });
  try {
    // Act
    const err = await tags.put('i-0abc', { k: 'v' }).catch((e: unknown) => e);
    // Assess
    expect(err).toBeInstanceOf(InstanceTagsError);
    expect(((err as Error).cause as { code?: string }).code).toBe('ECONNREFUSED');
    expect(isTransient(err)).toBe(true);
  } finally {
    tags.close();
    process.env = saved;
  }
}, 60_000);

test('serializing an SDK error keeps what isTransient and the logs read', () => {
  const sdkError = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $fault: 'client', $metadata: { httpStatusCode: 400, requestId: 'r-1', attempts: 4 }, $retryable: { throttling: true } });
  const back = deserializeAwsError(JSON.parse(JSON.stringify(serializeAwsError(sdkError))));
  expect(back).toMatchObject({ name: 'ThrottlingException', message: 'Rate exceeded', $fault: 'client', $metadata: { httpStatusCode: 400, requestId: 'r-1' }, $retryable: { throttling: true } });
  expect(isTransient(back)).toBe(true);
});
