/**
 * The foundation on real parts: moto's SQS long poll, the demo image on the local Docker
 * engine through dockerode, DynamoDB conditional writes, and `npm run local -- status`.
 */
import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { ConditionalCheckFailedException, CreateTableCommand, DescribeTableCommand, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import { GetCommand, ScanCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { encodeEnvelope, newTaskId, TaskStatus } from '../../daemon/src/contract';
import { freshFleet, uniqueName, type TestFleet } from '../../scripts/dev/harness/fleet';

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

test('the local moto undoes a failed TransactWriteItems item by item: earlier writes, new items and stream records', async () => {
  // Prepare: a streamed table with a range key and a plain one, as the fleet's tasks and events
  // tables are (moto-serialized.py replaces moto's table-wide rollback with this one).
  const streamed = uniqueName('txs');
  const plain = uniqueName('txp');
  const ddb = fleet.clients.ddb;
  await ddb.send(new CreateTableCommand({ TableName: streamed, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }], StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' } }));
  await ddb.send(new CreateTableCommand({ TableName: plain, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }] }));
  await ddb.send(new TransactWriteCommand({ TransactItems: [{ Put: { TableName: plain, Item: { id: 'a', x: 1 } } }, { Put: { TableName: streamed, Item: { pk: 'p', sk: 'kept' } } }] }));
  const streams = new DynamoDBStreamsClient({ region: fleet.clients.region }) // endpoint and keys: the local stack's environment (stackEnv);
  const streamRecords = async () => {
    const arn = (await ddb.send(new DescribeTableCommand({ TableName: streamed }))).Table!.LatestStreamArn!;
    const shardId = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!.Shards![0].ShardId!;
    const it = await streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }));
    return ((await streams.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator }))).Records ?? []).map((r) => `${r.eventName} ${r.dynamodb?.Keys?.sk?.S}`);
  };
  expect(await streamRecords()).toEqual(['INSERT kept']);
  // Act: three writes that succeed, then a condition that fails.
  const failed = ddb.send(new TransactWriteCommand({
    TransactItems: [
      { Put: { TableName: streamed, Item: { pk: 'p', sk: 'new' } } },
      { Update: { TableName: plain, Key: { id: 'a' }, UpdateExpression: 'SET x = :two', ExpressionAttributeValues: { ':two': 2 } } },
      { Delete: { TableName: streamed, Key: { pk: 'p', sk: 'kept' } } },
      { ConditionCheck: { TableName: plain, Key: { id: 'missing' }, ConditionExpression: 'attribute_exists(id)' } },
    ],
  }));
  // Assess: cancelled for the condition alone, and nothing of it is left anywhere.
  const err = await failed.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TransactionCanceledException);
  expect((err as TransactionCanceledException).CancellationReasons?.map((r) => r.Code)).toEqual(['None', 'None', 'None', 'ConditionalCheckFailed']);
  expect((await ddb.send(new GetCommand({ TableName: plain, Key: { id: 'a' } }))).Item).toEqual({ id: 'a', x: 1 });
  expect((await ddb.send(new ScanCommand({ TableName: streamed }))).Items).toEqual([{ pk: 'p', sk: 'kept' }]);
  expect(await streamRecords()).toEqual(['INSERT kept']);
});
