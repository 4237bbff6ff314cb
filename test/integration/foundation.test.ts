/**
 * The foundation on real parts: moto's SQS long poll, the demo image on the local Docker
 * engine through dockerode, DynamoDB conditional writes, and `npm run local -- status`.
 */
import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { encodeEnvelope, newTaskId, TaskStatus } from '../../daemon/src/contract';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
beforeAll(async () => {
  fleet = await freshFleet();
});

test('a message sent during a 20 s long poll comes back before the poll times out', async () => {
  // Prepare: start the long poll first.
  const started = Date.now();
  const receiving = fleet.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: fleet.resources.queueUrl, WaitTimeSeconds: 20, MaxNumberOfMessages: 1 }));
  await new Promise((r) => setTimeout(r, 1000));
  // Act
  const body = encodeEnvelope(newTaskId());
  await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.queueUrl, MessageBody: body }));
  const received = await receiving;
  // Assess: the poll returned with our message, well before its 20 s wait ran out.
  expect(received.Messages?.map((m) => m.Body)).toEqual([body]);
  expect(Date.now() - started).toBeLessThan(15_000);
});

test('the demo image runs through dockerode with env vars, its exit code and demultiplexed output', async () => {
  // Prepare
  const container = await fleet.docker.createContainer({
    Image: fleet.demoImage,
    Cmd: ['sh', '-c', 'echo "out:$GREETING"; echo "err:$GREETING" >&2; exit 7'],
    Env: ['GREETING=hello fleet'],
    HostConfig: { AutoRemove: false },
  });
  try {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const chunks = { out: '', err: '' };
    stdout.on('data', (c: Buffer) => (chunks.out += c.toString()));
    stderr.on('data', (c: Buffer) => (chunks.err += c.toString()));
    container.modem.demuxStream(stream, stdout, stderr);
    // Act
    await container.start();
    const result = (await container.wait()) as { StatusCode: number };
    await new Promise((r) => setTimeout(r, 100));
    // Assess
    expect(result.StatusCode).toBe(7);
    expect(chunks.out).toBe('out:hello fleet\n');
    expect(chunks.err).toBe('err:hello fleet\n');
  } finally {
    await container.remove({ force: true });
  }
});

test('a conditional update on the tasks table fails with ConditionalCheckFailedException when the state differs', async () => {
  // Prepare: a QUEUED task.
  const taskId = newTaskId();
  const table = fleet.resources.tasksTable;
  await fleet.clients.ddb.send(new PutCommand({ TableName: table, Item: { task_id: taskId, status: TaskStatus.QUEUED, attempt: 0 } }));
  const claim = () =>
    fleet.clients.ddb.send(new UpdateCommand({
      TableName: table,
      Key: { task_id: taskId },
      UpdateExpression: 'SET #s = :claimed ADD attempt :one',
      ConditionExpression: '#s = :queued',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':claimed': TaskStatus.CLAIMED, ':queued': TaskStatus.QUEUED, ':one': 1 },
    }));
  // Act + Assess: the first claim wins, the second is refused by the condition.
  await expect(claim()).resolves.toBeDefined();
  await expect(claim()).rejects.toBeInstanceOf(ConditionalCheckFailedException);
});

test('npm run local -- status lists dockerd, moto, imds and the ssm agent as up', () => {
  const r = spawnSync(process.execPath, ['--require', 'tsx/cjs', 'scripts/dev/local.ts', 'status', '--json'], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  const s = JSON.parse(r.stdout) as { components: Array<{ name: string; up: boolean }>; resources: { asgName: string } };
  expect(Object.fromEntries(s.components.map((c) => [c.name, c.up]))).toEqual({ dockerd: true, moto: true, imds: true, 'ssm-agent': true, 'demo-image': true, intake: true });
  expect(s.resources.asgName).toBe('local-asg');
});
