/**
 * `fleet reconcile --once` and `fleet scale --once` as an operator runs them: a spawned CLI
 * (bin/fleet.js) against a fresh fleet on the local stack (moto). The passes themselves are
 * covered in test/integration/reconciler.test.ts and scaler.test.ts; this checks the commands:
 * flags, configuration, output and exit codes.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { decodeEnvelope, encodeEnvelope, newTaskId } from '../../daemon/src/contract';
import { FleetClient } from '../../scripts/lib/client';
import { PROJECT_ROOT } from '../../scripts/dev/local/paths';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

const FLEET = path.join(PROJECT_ROOT, 'bin', 'fleet.js');

let fleet: TestFleet;
let client: FleetClient;

beforeAll(async () => {
  fleet = await freshFleet({ instances: 0, minSize: 0, maxSize: 10 });
  client = new FleetClient(fleet.clients, fleet.resources);
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `fleet …` the way a user's shell runs it (argv, no shell), with this fleet's environment. */
function fleetCli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLEET, ...args], { env: { ...process.env, ...fleet.env, ...env } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('fleet reconcile --once --json re-sends the message of a lost enqueue once its window has passed', async () => {
  // Prepare: a record with no message (a submit that crashed between its two writes), left
  // silent past a short resend window; the fleet's timings are given as a short-lease fleet's.
  const taskId = await client.submitTaskRecordOnly({ image: fleet.demoImage });
  await sleep(3_500);

  // Act
  const run = await fleetCli(['reconcile', '--once', '--json', '--lease', '2s', '--heartbeat', '1s', '--resend-after', '3s']);

  // Assess: exit 0, the snake_case report names the task, its message is on the queue, the
  // record says when it was sent, and the event says who sent it.
  expect(run.code).toBe(0);
  const report = JSON.parse(run.stdout) as Record<string, unknown>;
  expect(report).toMatchObject({ resent: [taskId], requeued: [], failed: [], cancelled: [], raced: [], resend_deferred: 0, errors: [] });
  expect(Object.keys(report).sort()).toEqual(['cancelled', 'duration_ms', 'errors', 'failed', 'raced', 'requeued', 'resend_deferred', 'resent', 'scanned', 'stale_instances', 'started_at']);
  const received = await fleet.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: fleet.resources.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2, VisibilityTimeout: 30 }));
  expect((received.Messages ?? []).map((m) => decodeEnvelope(m.Body ?? ''))).toEqual([expect.objectContaining({ ok: true, value: expect.objectContaining({ task_id: taskId }) })]);
  expect((await client.getTask(taskId)).message_sent_at).toBeGreaterThan(0);
  const events = await client.listEvents(taskId);
  expect(events.map((e) => e.type)).toEqual(['SUBMITTED', 'MESSAGE_RESENT']);
  expect(events[1].detail).toMatchObject({ by: 'reconciler' });

  // Act: a second pass leaves it alone while its new message is younger than the window (a
  // longer one here: starting the CLI alone can take seconds on a loaded machine).
  const again = await fleetCli(['reconcile', '--once', '--json', '--lease', '2s', '--heartbeat', '1s', '--resend-after', '10m']);
  // Assess
  expect(again.code).toBe(0);
  expect(JSON.parse(again.stdout)).toMatchObject({ resent: [], errors: [] });
});

test('fleet reconcile --once refuses a resend window within the lease, before reading anything', async () => {
  // Act
  const run = await fleetCli(['reconcile', '--once', '--resend-after', '1m']);
  // Assess
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/resendAfterMs: got 60000, expected more than the lease \(120000 ms\)/);
  expect(run.stderr).toMatch(/hint: .*--resend-after/);
});

test('fleet scale --once --json prints the decision it applied to the local group', async () => {
  // Prepare: 3 task messages waiting, 2 slots per instance, a group at 0.
  await fleet.clients.sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: fleet.resources.queueUrl,
      Entries: Array.from({ length: 3 }, (_, i) => ({ Id: `m${i}`, MessageBody: encodeEnvelope(newTaskId()) })),
    }),
  );

  // Act
  const run = await fleetCli(['scale', '--once', '--json'], { FLEETD_SLOTS: '2' });

  // Assess: at least ceil(3 / 2) = 2 instances (the first test's resent message may be visible
  // again by now), and the group really was raised to the printed desired capacity.
  expect(run.code).toBe(0);
  const decision = JSON.parse(run.stdout) as Record<string, unknown>;
  expect(decision).toMatchObject({ asg_name: fleet.resources.asgName, slots_per_instance: 2, current: 0, raised: true, min: 0, max: 10 });
  expect(decision.desired).toBe(Math.ceil(((decision.visible as number) + (decision.in_flight as number)) / 2));
  expect(decision.desired).toBeGreaterThanOrEqual(2);
  const group = await fleet.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [fleet.resources.asgName] }));
  expect(group.AutoScalingGroups?.[0]?.DesiredCapacity).toBe(decision.desired);
});

test('fleet scale --once without a group name is a usage error naming the variable', async () => {
  // Act
  const run = await fleetCli(['scale', '--once'], { FLEET_ASG_NAME: '' });
  // Assess
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/FLEET_ASG_NAME is not set/);
});
