/** The ABCA adapter points ABCA at a session's output (scripts/lib/abca-adapter.ts sessionOutputs, docs/abca.md). */
import { sessionOutputs } from '../../scripts/lib/abca-adapter';

test('the stream, its console URL and the artifacts prefix of an attempt', () => {
  const out = sessionOutputs({ logGroup: '/agent-fleet/task-logs', payloadBucket: 'fleet-payloads' }, 'eu-west-1', 't-01jd8x5k2m3n4p5q6r7s8t9v0w', 2);
  expect(out).toEqual({
    logGroup: '/agent-fleet/task-logs',
    logStream: 't-01jd8x5k2m3n4p5q6r7s8t9v0w/2',
    logsUrl: 'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Fagent-fleet$252Ftask-logs/log-events/t-01jd8x5k2m3n4p5q6r7s8t9v0w$252F2',
    artifactsUri: 's3://fleet-payloads/artifacts/t-01jd8x5k2m3n4p5q6r7s8t9v0w/2/',
  });
});

test('a fleet that does not ship task logs: no group, no URL; the artifacts prefix still', () => {
  const out = sessionOutputs({ payloadBucket: 'b' }, 'us-east-1', 't-x', 1);
  expect(out.logGroup).toBeUndefined();
  expect(out.logsUrl).toBeUndefined();
  expect(out.artifactsUri).toBe('s3://b/artifacts/t-x/1/');
});
