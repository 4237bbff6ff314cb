/**
 * The intake end to end on the local stack (docs/integration.md): a producer with nothing but
 * the AWS CLI and sqs:SendMessage submits a task; the local intake runner (the intake Lambda's
 * and the task-events Lambda's code, as `npm run local -- up` runs it) creates and enqueues it;
 * a real fleetd runs it; an EventBridge rule with an SQS target, made here in moto, receives
 * every state change in order. Then idempotency: one key sent twice, and one SQS message
 * delivered twice to the intake Lambda's handler, each make one task.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PutRuleCommand, PutTargetsCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, DeleteMessageBatchCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import {
  EventType,
  TASK_EVENT_SOURCE,
  TASK_STATE_CHANGE_DETAIL_TYPE,
  TaskStatus,
  TaskStateChangeSchema,
  taskIdForIdempotencyKey,
  taskIdForMessageId,
  type TaskStateChange,
} from '../../daemon/src/contract';
import { FleetClient, TaskNotFoundError } from '../../scripts/lib/client';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';
import { handler as intakeHandler } from '../../infra/handlers/intake';
import { RunnerChild } from '../helpers/intake-runner-child';

const run = promisify(execFile);

let fleet: TestFleet;
let client: FleetClient;
let runner: RunnerChild;
let daemon: TestDaemon;
let ruleQueueUrl: string;

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
  client = new FleetClient(fleet.clients, fleet.resources);
  // A rule on the default bus for this fleet's state changes, delivering to a queue of the test's.
  const sqs = fleet.clients.sqs;
  ruleQueueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${fleet.resources.fleetName}-state-changes` }))).QueueUrl!;
  const ruleQueueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: ruleQueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const eventbridge = new EventBridgeClient({ region: fleet.clients.region });
  const rule = `${fleet.resources.fleetName}-task-state`;
  await eventbridge.send(new PutRuleCommand({
    Name: rule,
    EventPattern: JSON.stringify({ source: [TASK_EVENT_SOURCE], 'detail-type': [TASK_STATE_CHANGE_DETAIL_TYPE], detail: { fleet: [fleet.resources.fleetName] } }),
  }));
  await eventbridge.send(new PutTargetsCommand({ Rule: rule, Targets: [{ Id: 'state-changes', Arn: ruleQueueArn }] }));
  eventbridge.destroy();
  runner = new RunnerChild(fleet);
  daemon = new TestDaemon(fleet, fleet.resources.instanceIds[0]).start();
  await Promise.all([daemon.ready(), runner.waitForLog(/runner\.started/)]);
});

afterAll(async () => {
  await Promise.all([daemon?.stop(), runner?.stop()]);
});

/** The record once the intake wrote it. */
async function waitForRecord(taskId: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await client.getTask(taskId);
    } catch (err) {
      if (!(err instanceof TaskNotFoundError) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** State-change events of `taskId` from the rule's queue, until one with status `until`. */
async function stateChangesUntil(taskId: string, until: TaskStatus, timeoutMs = 60_000): Promise<TaskStateChange[]> {
  const sqs = new SQSClient({ region: fleet.clients.region });
  const got: TaskStateChange[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    while (!got.some((e) => e.status === until)) {
      if (Date.now() > deadline) throw new Error(`no ${until} event for ${taskId} within ${timeoutMs} ms; got ${got.map((e) => e.status).join(', ')}`);
      const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: ruleQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      const messages = res.Messages ?? [];
      for (const m of messages) {
        const event = JSON.parse(m.Body!) as { source: string; 'detail-type': string; detail: unknown };
        expect(event.source).toBe(TASK_EVENT_SOURCE);
        expect(event['detail-type']).toBe(TASK_STATE_CHANGE_DETAIL_TYPE);
        const detail = TaskStateChangeSchema.parse(event.detail);
        if (detail.task_id === taskId) got.push(detail);
      }
      if (messages.length > 0) await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: ruleQueueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    }
  } finally {
    sqs.destroy();
  }
  return got;
}

async function submittedEvents(taskId: string): Promise<number> {
  const res = await fleet.clients.ddb.send(new QueryCommand({ TableName: fleet.resources.eventsTable, KeyConditionExpression: 'task_id = :id', ExpressionAttributeValues: { ':id': taskId }, ConsistentRead: true }));
  return (res.Items ?? []).filter((e) => e.type === EventType.SUBMITTED).length;
}

test('a message sent with nothing but the AWS CLI runs to COMPLETED, and a rule with an SQS target receives QUEUED … COMPLETED in order', async () => {
  // Prepare: a shell environment with only the CLI's credentials (no FLEET_* names, no SDK config).
  const body = JSON.stringify({ v: 1, spec: { image: fleet.demoImage, env: { DEMO_SLEEP_S: '0' }, memory_mb: 128, cpus: 0.5, timeout_s: 60, labels: { team: 'intake-test' } } });
  const shellEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', AWS_ACCESS_KEY_ID: fleet.env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: fleet.env.AWS_SECRET_ACCESS_KEY };
  // Act
  const { stdout } = await run('aws', ['sqs', 'send-message', '--region', 'us-east-1', '--endpoint-url', fleet.env.AWS_ENDPOINT_URL, '--queue-url', fleet.resources.intakeQueueUrl, '--message-body', body], { env: shellEnv, timeout: 60_000 });
  const messageId = (JSON.parse(stdout) as { MessageId: string }).MessageId;
  const taskId = taskIdForMessageId(messageId);
  // Assess: the task, sealed like a `fleet submit`, ran to COMPLETED.
  const queued = await waitForRecord(taskId);
  expect(queued.seal).toMatchObject({ key_id: fleet.resources.sealKeyId });
  const done = await client.waitForTerminal(taskId, { timeoutMs: 90_000 });
  expect(done.status).toBe(TaskStatus.COMPLETED);
  const events = await stateChangesUntil(taskId, TaskStatus.COMPLETED);
  expect(events.map((e) => e.status)).toEqual([TaskStatus.QUEUED, TaskStatus.CLAIMED, TaskStatus.RUNNING, TaskStatus.COMPLETED]);
  expect(events.map((e) => e.previous_status)).toEqual([null, TaskStatus.QUEUED, TaskStatus.CLAIMED, TaskStatus.RUNNING]);
  const completed = events[3];
  expect(completed).toMatchObject({ fleet: fleet.resources.fleetName, attempt: 1, exit_code: 0, instance_id: fleet.resources.instanceIds[0], labels: { team: 'intake-test' }, has_task_token: false, finished_at: done.finished_at, updated_at: done.updated_at });
  expect(completed.event_id).toBe(`${taskId}:1:COMPLETED:${done.updated_at}`);
});

test('the same idempotency key sent twice makes one task', async () => {
  const key = `intake-twice-${Date.now()}`;
  const body = JSON.stringify({ v: 1, idempotency_key: key, spec: { image: fleet.demoImage, env: { DEMO_SLEEP_S: '0' }, memory_mb: 128, cpus: 0.5, timeout_s: 60 } });
  await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.intakeQueueUrl, MessageBody: body }));
  await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.intakeQueueUrl, MessageBody: body }));
  const taskId = taskIdForIdempotencyKey(key);
  const done = await (await waitForRecord(taskId), client.waitForTerminal(taskId, { timeoutMs: 90_000 }));
  expect(done.status).toBe(TaskStatus.COMPLETED);
  expect(done.idempotency_key).toBe(key);
  // Both messages were handled (the second found the task), and only one was ever submitted.
  const ids = [...runner.lines.join('\n').matchAll(new RegExp(`"event":"intake.submitted"[^\\n]*"task_id":"${taskId}","created":(true|false)`, 'g'))].map((m) => m[1]);
  expect(ids.sort()).toEqual(['false', 'true']);
  expect(await submittedEvents(taskId)).toBe(1);
  expect(done.attempt).toBe(1);
});

test('one SQS message delivered twice to the intake Lambda handler makes one task', async () => {
  // The Lambda handler reads the fleet's names from its environment, as the construct sets them.
  Object.assign(process.env, fleet.env);
  const record = { messageId: `redelivered-${Date.now()}`, body: JSON.stringify({ v: 1, spec: { image: fleet.demoImage, env: { DEMO_SLEEP_S: '0' }, memory_mb: 128, cpus: 0.5, timeout_s: 60 } }), attributes: { ApproximateReceiveCount: '1' } };
  const first = await intakeHandler({ Records: [record] });
  const second = await intakeHandler({ Records: [{ ...record, attributes: { ApproximateReceiveCount: '2' } }] });
  expect(first.batchItemFailures).toEqual([]);
  expect(second.batchItemFailures).toEqual([]);
  const taskId = taskIdForMessageId(record.messageId);
  const done = await client.waitForTerminal(taskId, { timeoutMs: 90_000 });
  expect(done.status).toBe(TaskStatus.COMPLETED);
  expect(await submittedEvents(taskId)).toBe(1);
  expect(done.attempt).toBe(1);
});
