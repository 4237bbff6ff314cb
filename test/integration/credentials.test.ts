/**
 * Per-task credentials on real Docker + moto: fleetd assumes the task role (STS with session
 * tags) and serves it on an ECS-compatible endpoint bound to 169.254.170.2 (added to `lo`
 * here, as the AMI does; docs/lifecycle.md, per-task credentials). A container on the default
 * bridge fetches its credentials with busybox `nc`; the token rules are checked from the host.
 */
import { execFileSync } from 'node:child_process';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type Docker from 'dockerode';
import { DEFAULT_CREDENTIALS_HOST, TaskStatus, type TaskSpecInput } from '../../daemon/src/contract';
import { FleetClient } from '../../scripts/lib/client';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
let client: FleetClient;
let roleArn: string;
const daemons: TestDaemon[] = [];

// Fetches the credentials the way an SDK's container provider does, with busybox only.
const FETCH_AND_HOLD = [
  'u=${AWS_CONTAINER_CREDENTIALS_FULL_URI#http://}; hp=${u%%/*}; p=/${u#*/}; h=${hp%:*}; port=${hp##*:}',
  '[ "$port" = "$hp" ] && port=80',
  `printf 'GET %s HTTP/1.0\\r\\nAuthorization: %s\\r\\n\\r\\n' "$p" "$AWS_CONTAINER_AUTHORIZATION_TOKEN" | nc "$h" "$port"`,
  'echo; echo "credentials fetched"',
  'sleep "$HOLD_S"',
].join('\n');

function spec(holdS: number, repo?: string): TaskSpecInput {
  return { image: fleet.demoImage, command: ['/bin/sh', '-c', FETCH_AND_HOLD], env: { HOLD_S: String(holdS) }, memory_mb: 64, cpus: 0.25, ...(repo ? { repo } : {}) };
}

/** The container's credentials environment, read from Docker as the container got it. */
async function containerCredentials(taskId: string): Promise<{ uri: string; token: string; region?: string }> {
  let list: Docker.ContainerInfo[] = [];
  for (let i = 0; i < 300 && !list.length; i++) {
    list = await fleet.docker.listContainers({ filters: { label: [`agent-fleet.task-id=${taskId}`], status: ['running'] } });
    if (!list.length) await new Promise((r) => setTimeout(r, 200));
  }
  if (!list.length) throw new Error(`no running container for ${taskId}`);
  const env = (await fleet.docker.getContainer(list[0].Id).inspect()).Config.Env;
  const value = (name: string) => env.find((e) => e.startsWith(`${name}=`))?.slice(name.length + 1);
  return { uri: value('AWS_CONTAINER_CREDENTIALS_FULL_URI')!, token: value('AWS_CONTAINER_AUTHORIZATION_TOKEN')!, region: value('AWS_REGION') };
}

async function fetchCredentials(uri: string, token?: string): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(uri, { headers: token === undefined ? {} : { Authorization: token } });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

beforeAll(async () => {
  // The address the AMI adds to lo (packer/files/host-isolation.sh), added idempotently.
  if (!execFileSync('ip', ['-4', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' }).includes(`inet ${DEFAULT_CREDENTIALS_HOST}/32`)) {
    execFileSync('ip', ['addr', 'add', `${DEFAULT_CREDENTIALS_HOST}/32`, 'dev', 'lo']);
  }
  fleet = await freshFleet({ instances: 1 });
  client = new FleetClient(fleet.clients, fleet.resources);
  roleArn = `arn:aws:iam::123456789012:role/${fleet.resources.fleetName}-task`;
});

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

test("a container gets the task role's credentials from its endpoint; wrong, missing, another task's and expired tokens get 403", async () => {
  // Prepare: two slots, a random port on 169.254.170.2 (parallel test files cannot share :80).
  const d = new TestDaemon(fleet, fleet.resources.instanceIds[0], { slots: 2, taskRoleArn: roleArn, credentialsEndpoint: { host: DEFAULT_CREDENTIALS_HOST, port: 0 } }).start();
  daemons.push(d);
  await d.ready();

  // Act: two tasks run side by side; A fetches its credentials from inside its container.
  const a = await client.submitTask(spec(20, 'octo-org/widgets'));
  const b = await client.submitTask(spec(20));
  const [credsA, credsB] = await Promise.all([containerCredentials(a.taskId), containerCredentials(b.taskId)]);
  const right = await fetchCredentials(credsA.uri, credsA.token);
  const wrong = await fetchCredentials(credsA.uri, credsA.token.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')));
  const missing = await fetchCredentials(credsA.uri);
  const othersToken = await fetchCredentials(credsA.uri, credsB.token);
  const asTask = new STSClient({
    region: fleet.resources.region,
    credentials: { accessKeyId: right.body.AccessKeyId, secretAccessKey: right.body.SecretAccessKey, sessionToken: right.body.Token },
  });
  const identity = await asTask.send(new GetCallerIdentityCommand({}));
  asTask.destroy();
  const recordA = await client.waitForTerminal(a.taskId, { timeoutMs: 90_000 });
  // The run ends (container removed, credentials revoked) just after the terminal write.
  await d.waitForLog(new RegExp(`"msg":"task credentials revoked".*"task_id":"${a.taskId}"`));
  const expired = await fetchCredentials(credsA.uri, credsA.token);
  await client.waitForTerminal(b.taskId, { timeoutMs: 90_000 });

  // Assess: the endpoint form the SDKs accept, one token per task.
  expect(credsA.uri).toMatch(new RegExp(`^http://169\\.254\\.170\\.2:\\d+/v1/credentials/[0-9a-f]{32}$`));
  expect(credsB.uri).not.toBe(credsA.uri);
  expect(credsB.token).not.toBe(credsA.token);
  expect(credsA.region).toBe(fleet.resources.region);
  // The task role's credentials, with the task id in the session.
  expect(right.status).toBe(200);
  expect(right.body).toMatchObject({ AccessKeyId: expect.stringMatching(/^ASIA/), RoleArn: roleArn, Expiration: expect.any(String) });
  expect(identity.Arn).toBe(`arn:aws:sts::123456789012:assumed-role/${fleet.resources.fleetName}-task/fleet-${a.taskId}-a1`);
  // The container fetched the same credentials over the bridge; their secret parts never reach the record.
  expect(recordA.status).toBe(TaskStatus.COMPLETED);
  expect(recordA.log_tail).toContain('HTTP/1.1 200 OK');
  expect(recordA.log_tail).toContain(`"AccessKeyId":"${right.body.AccessKeyId}"`);
  expect(recordA.log_tail).toContain('"SecretAccessKey":"[REDACTED]"');
  expect(recordA.log_tail).not.toContain(right.body.SecretAccessKey);
  expect(recordA.log_tail).not.toContain(right.body.Token);
  // Everything else is refused.
  for (const r of [wrong, missing, othersToken, expired]) expect(r).toEqual({ status: 403, body: expect.objectContaining({ code: 'AccessDenied' }) });
});

test('without taskRoleArn no endpoint is served and no credentials variables are set', async () => {
  const d = new TestDaemon(fleet, fleet.resources.instanceIds[0]).start();
  daemons.push(d);
  await d.ready();
  const { taskId } = await client.submitTask({ image: fleet.demoImage, command: ['/bin/sh', '-c', 'env | grep -c AWS_CONTAINER || true; sleep 3'], memory_mb: 64, cpus: 0.25 });
  const creds = await containerCredentials(taskId);
  const record = await client.waitForTerminal(taskId, { timeoutMs: 60_000 });
  expect(creds).toEqual({ uri: undefined, token: undefined, region: undefined });
  expect(record.log_tail?.trim()).toBe('0');
});
