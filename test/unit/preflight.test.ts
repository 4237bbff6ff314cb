/**
 * Which AWS errors the boot preflight retries (isTransientAwsError): a network blip or a
 * throttled API must not mark an instance unhealthy; a missing resource or a denied call must
 * fail the boot at once.
 */
import { ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { QueueDoesNotExist } from '@aws-sdk/client-sqs';
import { Logger } from '../../daemon/src/log';
import { isTransientAwsError, retryTransient } from '../../daemon/src/transient';

const meta = (httpStatusCode?: number) => ({ $metadata: { httpStatusCode, attempts: 3 } });

test.each([
  ['connection refused (no HTTP answer)', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), { code: 'ECONNREFUSED', ...meta(undefined) })],
  ['an error with no SDK metadata at all', new Error('socket hang up')],
  ['HTTP 500', Object.assign(new Error('InternalError'), { name: 'InternalError', ...meta(500) })],
  ['HTTP 503', Object.assign(new Error('ServiceUnavailable'), { name: 'ServiceUnavailable', ...meta(503) })],
  ['HTTP 429', Object.assign(new Error('Too Many Requests'), meta(429))],
  ['throttling answered as 400', Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', ...meta(400) })],
  ['marked retryable by the SDK', Object.assign(new Error('x'), { $retryable: {}, ...meta(400) })],
])('retried: %s', (_what, err) => {
  expect(isTransientAwsError(err)).toBe(true);
});

test.each([
  ['a missing queue', new QueueDoesNotExist({ message: 'The specified queue does not exist.', $metadata: { httpStatusCode: 400 } })],
  ['a missing table', new ResourceNotFoundException({ message: 'Requested resource not found', $metadata: { httpStatusCode: 400 } })],
  ['access denied', Object.assign(new Error('not authorized'), { name: 'AccessDeniedException', ...meta(400) })],
  ['not an error object', 'boom'],
  ['undefined', undefined],
])('fails the boot at once: %s', (_what, err) => {
  expect(isTransientAwsError(err)).toBe(false);
});

test('an AWS error wrapped in one of our typed errors is judged by its cause', () => {
  const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', $metadata: { attempts: 3 } });
  expect(isTransientAwsError(new Error('reading task t-1 failed', { cause }))).toBe(true);
  const denied = Object.assign(new Error('denied'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } });
  expect(isTransientAwsError(new Error('reading task t-1 failed', { cause: denied }))).toBe(false);
});

describe('retryTransient', () => {
  const log = new Logger({ component: 'test' }, undefined, 'error', () => undefined);
  const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', $metadata: { attempts: 1 } });

  test('retries transient errors until the call answers', async () => {
    let calls = 0;
    const value = await retryTransient('test', log, async () => {
      if (++calls < 3) throw refused();
      return 'answered';
    }, 10_000);
    expect(value).toBe('answered');
    expect(calls).toBe(3);
  });

  test('throws an answer (4xx) at once, without retrying', async () => {
    let calls = 0;
    const missing = new QueueDoesNotExist({ message: 'no such queue', $metadata: { httpStatusCode: 400 } });
    await expect(retryTransient('test', log, async () => {
      calls++;
      throw missing;
    })).rejects.toBe(missing);
    expect(calls).toBe(1);
  });

  test('gives up with the last error once the budget is spent', async () => {
    let calls = 0;
    await expect(retryTransient('test', log, async () => {
      calls++;
      throw refused();
    }, 0)).rejects.toThrow(/ECONNREFUSED/);
    expect(calls).toBe(1);
  });
});
