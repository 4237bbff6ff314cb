/**
 * The credentials endpoint (daemon/src/credentials.ts) on loopback with STS mocked at the SDK
 * boundary: session tags and names, the token rules, refresh before expiry, revocation,
 * redaction of the secret parts.
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { CredentialsServer, refreshAtMs, roleSessionName, sessionTagValue } from '../../daemon/src/credentials';
import { Logger, Redactor } from '../../daemon/src/log';

const ROLE = 'arn:aws:iam::123456789012:role/task';
const sts = mockClient(STSClient);
let issued = 0;
let lifetimeMs = 3600_000;
let server: CredentialsServer;
let redactor: Redactor;

beforeEach(async () => {
  sts.reset();
  issued = 0;
  lifetimeMs = 3600_000;
  sts.on(AssumeRoleCommand).callsFake(() => {
    issued++;
    return { Credentials: { AccessKeyId: `ASIA${issued}`, SecretAccessKey: `secret-key-${issued}`, SessionToken: `session-token-${issued}`, Expiration: new Date(Date.now() + lifetimeMs) } };
  });
  redactor = new Redactor();
  server = new CredentialsServer({ sts: new STSClient({ region: 'us-east-1' }), roleArn: ROLE, host: '127.0.0.1', port: 0, durationSeconds: 3600, log: new Logger({}, redactor, 'error', () => undefined) });
  await server.start();
});

afterEach(async () => {
  await server.close();
});

function envOf(lines: string[]): { uri: string; token: string } {
  const get = (n: string) => lines.find((l) => l.startsWith(`${n}=`))!.slice(n.length + 1);
  return { uri: get('AWS_CONTAINER_CREDENTIALS_FULL_URI'), token: get('AWS_CONTAINER_AUTHORIZATION_TOKEN') };
}

async function get(uri: string, token?: string): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(uri, { headers: token === undefined ? {} : { Authorization: token } });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

test('issue: AssumeRole with the task id and repo as session tags; the endpoint serves them to the right token only', async () => {
  // Act
  const a = envOf(await server.issue('t-aaa', 2, 'octo/widgets'));
  const b = envOf(await server.issue('t-bbb', 1));
  // Assess: STS input
  const inputs = sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input);
  expect(inputs[0]).toEqual({ RoleArn: ROLE, RoleSessionName: 'fleet-t-aaa-a2', DurationSeconds: 3600, Tags: [{ Key: 'task-id', Value: 't-aaa' }, { Key: 'repo', Value: 'octo/widgets' }] });
  expect(inputs[1].Tags).toEqual([{ Key: 'task-id', Value: 't-bbb' }]);
  // The endpoint
  expect(a.uri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/credentials\/[0-9a-f]{32}$/);
  expect(await get(a.uri, a.token)).toEqual({ status: 200, body: { AccessKeyId: 'ASIA1', SecretAccessKey: 'secret-key-1', Token: 'session-token-1', Expiration: expect.any(String), RoleArn: ROLE } });
  for (const token of [b.token, undefined, '', `${a.token}x`, a.token.toUpperCase()]) expect((await get(a.uri, token)).status).toBe(403);
  expect((await get(`${a.uri}x`, a.token)).status).toBe(403);
  expect((await fetch(a.uri, { method: 'POST', headers: { Authorization: a.token } })).status).toBe(403);
  // Secret parts are redacted while they live.
  expect(redactor.redact('k=secret-key-1 t=session-token-2')).toBe('k=[REDACTED] t=[REDACTED]');
});

test('revoke: the token gets 403 from then on and the secrets are no longer tracked', async () => {
  const a = envOf(await server.issue('t-aaa', 1));
  server.revoke('t-aaa');
  expect((await get(a.uri, a.token)).status).toBe(403);
  expect(server.activeTasks).toEqual([]);
  expect(redactor.redact('secret-key-1')).toBe('secret-key-1');
});

test('credentials are refreshed before they expire, and the new ones are served', async () => {
  // Prepare: 3 s credentials → refreshed a third of their lifetime before expiry.
  lifetimeMs = 3000;
  const a = envOf(await server.issue('t-aaa', 1));
  expect((await get(a.uri, a.token)).body.AccessKeyId).toBe('ASIA1');
  // Act: wait for the refresh (bounded; no timing asserted).
  for (let i = 0; i < 100 && issued < 2; i++) await new Promise((r) => setTimeout(r, 100));
  // Assess
  expect(issued).toBeGreaterThanOrEqual(2);
  expect((await get(a.uri, a.token)).body.AccessKeyId).not.toBe('ASIA1');
  expect(redactor.redact('secret-key-1')).toBe('secret-key-1');
});

test('adopt: a re-adopted container keeps its path and token', async () => {
  const env = await server.issue('t-aaa', 1);
  const a = envOf(env);
  server.revoke('t-aaa');
  expect(await server.adopt('t-aaa', 1, ['PATH=/bin', ...env])).toBe(true);
  expect((await get(a.uri, a.token)).status).toBe(200);
  expect(await server.adopt('t-bbb', 1, ['PATH=/bin'])).toBe(false);
});

test('refreshAtMs: a third of the lifetime before expiry, at most 15 minutes', () => {
  expect(refreshAtMs(0, 3600_000)).toBe(3600_000 - 900_000);
  expect(refreshAtMs(0, 900_000)).toBe(600_000);
  expect(refreshAtMs(10, 10)).toBe(10);
});

test('session names and tag values are made acceptable to STS', () => {
  expect(roleSessionName('t-01J0ABC_x', 3)).toBe('fleet-t-01J0ABC_x-a3');
  expect(roleSessionName('a'.repeat(64), 1)).toHaveLength(64);
  expect(sessionTagValue('https://github.com/octo/widgets?x=1#y')).toBe('https://github.com/octo/widgets_x=1_y');
});
