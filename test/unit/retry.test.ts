/**
 * The one retry policy (daemon/src/retry.ts): which errors are transient (a network blip or a
 * throttled API must not mark an instance unhealthy; a missing resource or a denied call must
 * fail at once), and how `retry` bounds its tries, on a fake clock (no test waits real backoff).
 */
import { ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { QueueDoesNotExist } from '@aws-sdk/client-sqs';
import { RETRY_POLICIES, retry, type Clock } from '../../daemon/src/retry';
import { isTransient } from '../../daemon/src/retry';

const meta = (httpStatusCode?: number) => ({ $metadata: { httpStatusCode, attempts: 3 } });

test.each([
  ['connection refused (no HTTP answer)', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), { code: 'ECONNREFUSED', ...meta(undefined) })],
  ['an error with no SDK metadata at all', new Error('socket hang up')],
  ['HTTP 500', Object.assign(new Error('InternalError'), { name: 'InternalError', ...meta(500) })],
  ['HTTP 503', Object.assign(new Error('ServiceUnavailable'), { name: 'ServiceUnavailable', ...meta(503) })],
  ['HTTP 429', Object.assign(new Error('Too Many Requests'), meta(429))],
  ['throttling answered as 400', Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', ...meta(400) })],
  ['an Auto Scaling activity in progress (the scaler)', Object.assign(new Error('busy'), { name: 'ScalingActivityInProgressFault', ...meta(400) })],
  ['DynamoDB throughput exceeded', Object.assign(new Error('slow down'), { name: 'ProvisionedThroughputExceededException', ...meta(400) })],
  ['marked retryable by the SDK', Object.assign(new Error('x'), { $retryable: {}, ...meta(400) })],
])('retried: %s', (_what, err) => {
  expect(isTransient(err)).toBe(true);
});

test.each([
  ['a missing queue', new QueueDoesNotExist({ message: 'The specified queue does not exist.', $metadata: { httpStatusCode: 400 } })],
  ['a missing table', new ResourceNotFoundException({ message: 'Requested resource not found', $metadata: { httpStatusCode: 400 } })],
  ['access denied', Object.assign(new Error('not authorized'), { name: 'AccessDeniedException', ...meta(400) })],
  ['a failed condition', Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException', ...meta(400) })],
  ['DynamoDB refusing an item (nesting, size)', Object.assign(new Error('Nesting Levels have exceeded supported limits'), { name: 'ValidationException', ...meta(400) })],
  ['a plain programming error', new TypeError("Cannot read properties of undefined (reading 'x')")],
  ['not an error object', 'boom'],
  ['undefined', undefined],
])('fails the boot at once: %s', (_what, err) => {
  expect(isTransient(err)).toBe(false);
});

test('an AWS error wrapped in one of our typed errors is judged by its cause', () => {
  const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', $metadata: { attempts: 3 } });
  expect(isTransient(new Error('reading task t-1 failed', { cause }))).toBe(true);
  const denied = Object.assign(new Error('denied'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } });
  expect(isTransient(new Error('reading task t-1 failed', { cause: denied }))).toBe(false);
});

/** A clock whose sleeps only move its own time forward. */
function fakeClock(): Clock & { slept: number[] } {
  let t = 1_000_000;
  const slept: number[] = [];
  return {
    slept,
    now: () => t,
    sleep: async (ms) => {
      slept.push(ms);
      t += ms;
    },
    random: () => 0.5,
  };
}

const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', $metadata: { attempts: 1 } });
const denied = () => Object.assign(new Error('not authorized'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } });

describe('retry', () => {
  test('retries transient errors until the call answers, with growing jittered waits', async () => {
    // Prepare
    const clock = fakeClock();
    let calls = 0;
    // Act
    const value = await retry('test', async () => {
      if (++calls < 4) throw refused();
      return 'answered';
    }, { policy: { maxAttempts: 10, baseMs: 100, capMs: 250 }, clock });
    // Assess
    expect(value).toBe('answered');
    expect(calls).toBe(4);
    // random() = 0.5: half of min(cap, base * 2^n) for n = 0, 1, 2
    expect(clock.slept).toEqual([50, 100, 125]);
  });

  test('throws an answer (4xx) at once, without retrying', async () => {
    const clock = fakeClock();
    let calls = 0;
    const missing = new QueueDoesNotExist({ message: 'no such queue', $metadata: { httpStatusCode: 400 } });
    await expect(retry('test', async () => {
      calls++;
      throw missing;
    }, { policy: RETRY_POLICIES.boot, clock })).rejects.toBe(missing);
    expect(calls).toBe(1);
    expect(clock.slept).toEqual([]);
  });

  test('gives up with the last error after maxAttempts tries', async () => {
    const clock = fakeClock();
    let calls = 0;
    const seen: number[] = [];
    await expect(retry('test', async () => {
      calls++;
      throw refused();
    }, { policy: RETRY_POLICIES.taskStep, clock, onRetry: (r) => seen.push(r.attempt) })).rejects.toThrow(/ECONNREFUSED/);
    expect(calls).toBe(RETRY_POLICIES.taskStep.maxAttempts);
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  test('gives up once the time budget is spent', async () => {
    const clock = fakeClock();
    let calls = 0;
    await expect(retry('test', async () => {
      calls++;
      throw refused();
    }, { policy: RETRY_POLICIES.boot, clock })).rejects.toThrow(/ECONNREFUSED/);
    // 60 s of waits of at most 4 s each (random 0.5 of the 8 s cap): more than a handful of tries.
    expect(calls).toBeGreaterThan(10);
    expect(clock.slept.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(RETRY_POLICIES.boot.budgetMs);
  });

  test('a custom classifier decides what is retried', async () => {
    const clock = fakeClock();
    let calls = 0;
    const value = await retry('test', async () => {
      if (++calls < 2) throw denied();
      return calls;
    }, { policy: { maxAttempts: 3, baseMs: 10, capMs: 10 }, clock, retryable: () => true });
    expect(value).toBe(2);
  });

  test('a policy with no bound is refused', async () => {
    await expect(retry('test', async () => 1, { policy: { baseMs: 1, capMs: 1 } })).rejects.toThrow(/neither maxAttempts nor budgetMs/);
  });
});
