/**
 * Which AWS errors the boot preflight retries (isTransientAwsError): a network blip or a
 * throttled API must not mark an instance unhealthy; a missing resource or a denied call must
 * fail the boot at once.
 */
import { ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { QueueDoesNotExist } from '@aws-sdk/client-sqs';
import { isTransientAwsError } from '../../daemon/src/daemon';

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
