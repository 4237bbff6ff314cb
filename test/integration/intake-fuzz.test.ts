/**
 * A thousand bad intake messages (scripts/dev/chaos/fuzz.ts, kind "intake") sent to the intake
 * queue of a fresh fleet: each lands in the intake dead-letter queue with its reason as the
 * DLQ_REASON_ATTRIBUTE, and nothing else changes: no record, no event row, no message on the
 * task queue. The local intake runner (the intake Lambda's code) handles them.
 */
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand, DeleteMessageBatchCommand } from '@aws-sdk/client-sqs';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { DLQ_REASON_ATTRIBUTE } from '../../daemon/src/contract';
import { badInputs, checkParsers, sqsAcceptsBody } from '../../scripts/dev/chaos/fuzz';
import { Rng } from '../../scripts/dev/chaos/rng';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';
import { RunnerChild } from '../helpers/intake-runner-child';

const COUNT = 1000;
let fleet: TestFleet;
let runner: RunnerChild;

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
  runner = new RunnerChild(fleet);
  await runner.waitForLog(/runner\.started/);
});

afterAll(async () => {
  await runner?.stop();
});

async function queueCounts(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const a = (await fleet.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes ?? {};
  return { visible: Number(a.ApproximateNumberOfMessages ?? 0), inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) };
}

// A thousand messages through moto on a shared 2-core machine: minutes, not seconds.
test(`${COUNT} fuzzed intake bodies all land in the intake DLQ with a reason, and change nothing else`, async () => {
  // Prepare: bodies real SQS would accept (others never reach the intake), each invalid by construction.
  const rng = new Rng(17);
  const bodies: string[] = [];
  while (bodies.length < COUNT) {
    for (const bad of badInputs(rng, 'intake', 200)) if (sqsAcceptsBody(bad.input) && bodies.length < COUNT) bodies.push(bad.input);
  }
  const [parserCheck] = checkParsers(bodies.map((input) => ({ kind: 'intake', mutation: 'intake.sent', input })));
  expect(parserCheck.accepted).toEqual([]);
  expect(parserCheck.broken).toEqual([]);
  // Act
  for (let i = 0; i < bodies.length; i += 10) {
    const res = await fleet.clients.sqs.send(new SendMessageBatchCommand({
      QueueUrl: fleet.resources.intakeQueueUrl,
      Entries: bodies.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: body })),
    }));
    expect(res.Failed ?? []).toEqual([]);
  }
  // Assess: every one dead-lettered with a one-line reason …
  const deadline = Date.now() + 600_000;
  while ((await queueCounts(fleet.resources.intakeDlqUrl)).visible < COUNT) {
    if (Date.now() > deadline) throw new Error(`only ${(await queueCounts(fleet.resources.intakeDlqUrl)).visible} of ${COUNT} in the intake DLQ; runner:\n${runner.lines.slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const reasons = new Map<string, string>();
  for (let round = 0; reasons.size < COUNT && round < 400; round++) {
    const res = await fleet.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: fleet.resources.intakeDlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: [DLQ_REASON_ATTRIBUTE] }));
    const messages = res.Messages ?? [];
    for (const m of messages) reasons.set(m.MessageId!, m.MessageAttributes?.[DLQ_REASON_ATTRIBUTE]?.StringValue ?? '');
    if (messages.length > 0) await fleet.clients.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: fleet.resources.intakeDlqUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
  }
  expect(reasons.size).toBe(COUNT);
  const withoutReason = [...reasons.values()].filter((r) => r.length === 0 || /[\r\n]/.test(r));
  expect(withoutReason).toEqual([]);
  expect(runner.lines.filter((l) => /"event":"intake\.(submitted|failed)"/.test(l))).toEqual([]);
  // … and nothing else changed: the intake queue is drained, no record, no event, no task message.
  expect(await queueCounts(fleet.resources.intakeQueueUrl)).toEqual({ visible: 0, inFlight: 0 });
  expect(await queueCounts(fleet.resources.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  for (const table of [fleet.resources.tasksTable, fleet.resources.eventsTable]) {
    expect((await fleet.clients.ddb.send(new ScanCommand({ TableName: table, Select: 'COUNT' }))).Count).toBe(0);
  }
}, 900_000);
