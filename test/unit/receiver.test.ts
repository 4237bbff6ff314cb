/**
 * The one receive loop (daemon/src/receiver.ts): each long poll asks for as many messages as
 * there are free slots, every message takes a slot at once until its container exits, and
 * fleetd never holds more messages than free slots plus the outcomes still being recorded. SQS and the store are fakes; each long poll is answered by the test,
 * so nothing here depends on time.
 */
import { ChangeMessageVisibilityCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { DEFAULT_TIMINGS, encodeEnvelope, newTaskId, type TaskRecord } from '../../daemon/src/contract';
import { FleetdStateHolder } from '../../daemon/src/fleetd-state';
import { Logger, Redactor } from '../../daemon/src/log';
import { ReceiveActivity, Receiver } from '../../daemon/src/receiver';
import type { TaskRunResult } from '../../daemon/src/task-run';

const sqsMock = mockClient(SQSClient);
const quiet = new Logger({}, new Redactor(), 'error', () => undefined);

interface Poll {
  readonly asked: number;
  /** Answers the long poll with one message per task id. */
  answer(taskIds: string[]): void;
}

interface FakeRun {
  readonly taskId: string;
  /** The run ended (`finish` was called). */
  readonly ended: boolean;
  /** Resolves when the run ended (TaskRun.ended). */
  readonly gone: Promise<void>;
  /** The run's container exits (its outcome is still to be recorded: the slot frees). */
  exit(): void;
  /** Ends the run (the terminal write is done; the slot frees if `exit` did not free it). */
  finish(): void;
  /** Ends the run's background tail (message deletion, container removal). */
  finishTail(): void;
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets the event loop run until `done()` holds (bounded by iterations, not by time). */
async function settle(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (done()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

/** Cleanup: a drain ends the loop once its last poll is answered and every run and its tail ended. */
async function drainAndEnd(h: ReturnType<typeof harness>, lastPoll: { answer(taskIds: string[]): void }, done: Promise<void>): Promise<void> {
  h.state.to({ kind: 'draining', reason: 'test', since: Date.now() });
  lastPoll.answer([]);
  for (const r of h.runs) {
    r.finish();
    r.finishTail();
  }
  await done;
}

/** Prepare: the loop started and one task running (its first poll answered with it). */
async function withRunningTask(h: ReturnType<typeof harness>): Promise<{ done: Promise<void>; taskId: string }> {
  const done = h.receiver.start();
  const taskId = newTaskId();
  (await h.nextPoll()).answer([taskId]);
  await settle(() => h.running === 1, 'the task running');
  return { done, taskId };
}

interface HarnessOptions {
  /** The claim succeeds even with a run of the task here (that run handed it back: released). */
  readonly claimAlways?: boolean;
}

function harness(slots: number, options: HarnessOptions = {}) {
  const polls: Poll[] = [];
  const runs: FakeRun[] = [];
  const handedBack: string[] = [];
  const hidden: Array<{ receipt: string; seconds: number }> = [];
  let running = 0;
  let mostInHand = 0;
  /** Long polls already returned by nextPoll. */
  let polled = 0;
  const activity = new ReceiveActivity();
  sqsMock.on(ReceiveMessageCommand).callsFake((input: { MaxNumberOfMessages?: number }) => {
    return new Promise((resolve) => {
      polls.push({
        asked: input.MaxNumberOfMessages ?? 1,
        answer: (taskIds) => resolve({ Messages: taskIds.map((id): Message => ({ MessageId: `m-${id}`, ReceiptHandle: `r-${id}`, Body: encodeEnvelope(id) })) }),
      });
    });
  });
  sqsMock.on(ChangeMessageVisibilityCommand).callsFake((input: { ReceiptHandle?: string; VisibilityTimeout?: number }) => {
    if (input.VisibilityTimeout === 0) handedBack.push(input.ReceiptHandle ?? '');
    else hidden.push({ receipt: input.ReceiptHandle ?? '', seconds: input.VisibilityTimeout ?? -1 });
    return Promise.resolve({});
  });
  const state = new FleetdStateHolder();
  state.to({ kind: 'serving' });
  const receiver = new Receiver({
    sqs: new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
    config: { queueUrl: 'https://sqs.local/q', dlqUrl: 'https://sqs.local/dlq', slots, timings: DEFAULT_TIMINGS },
    store: {
      // A task with a live run here holds a live lease: the store answers `leased`.
      claim: (taskId: string, instanceId: string) => {
        return Promise.resolve(
          !options.claimAlways && runs.some((r) => r.taskId === taskId && !r.ended)
            ? { kind: 'leased' as const, record: { task_id: taskId, lease_expires_at: Date.now() + 60_000 } as unknown as TaskRecord }
            : { kind: 'claimed' as const, takeover: false, lease: { taskId, instanceId, attempt: 1 }, record: { task_id: taskId, spec: {} } as unknown as TaskRecord },
        );
      },
    },
    instanceId: 'i-0receiver0000001',
    state,
    gates: { checkDisk: () => undefined, engineAnswers: () => Promise.resolve(true) },
    activity,
    log: quiet,
    runEnded: (taskId) => runs.find((r) => r.taskId === taskId && !r.ended)?.gone,
    newRun: (lease) => {
      const ended = deferred<TaskRunResult>();
      const exited = deferred();
      const tail = deferred();
      let tailDone = false;
      running++;
      mostInHand = Math.max(mostInHand, activity.handling);
      const run = {
        taskId: lease.taskId,
        ended: false,
        gone: ended.promise.then(() => undefined),
        exit: () => exited.resolve(),
        finish: () => {
          if (run.ended) return;
          run.ended = true;
          running--;
          exited.resolve();
          ended.resolve({ taskId: lease.taskId, status: 'COMPLETED' as TaskRunResult['status'] });
        },
        finishTail: () => {
          tailDone = true;
          tail.resolve();
        },
      };
      runs.push(run);
      return {
        execute: () => ended.promise,
        exited: exited.promise,
        get tail() {
          return tailDone ? Promise.resolve() : tail.promise;
        },
      };
    },
    taskEnded: () => undefined,
    messageRejected: () => undefined,
    taskError: (msg, extra) => {
      throw new Error(`unexpected task error: ${msg} ${JSON.stringify(extra)}`);
    },
  });
  return {
    receiver,
    state,
    activity,
    polls,
    runs,
    handedBack,
    hidden,
    get running() {
      return running;
    },
    get mostInHand() {
      return mostInHand;
    },
    /** The next long poll not yet returned here, once the loop sent it (it may have been sent already). */
    async nextPoll(): Promise<Poll> {
      await settle(() => polls.length > polled, 'a long poll');
      return polls[polled++];
    },
  };
}

beforeEach(() => sqsMock.reset());

describe('one receive loop for all slots', () => {
  it('asks for as many messages as there are free slots: 3 of 3, then 2 with one busy, then none while all are busy', async () => {
    // Prepare
    const h = harness(3);
    const done = h.receiver.start();
    // Act / Assess: an idle instance asks for 3 in one long poll.
    const first = await h.nextPoll();
    expect(first.asked).toBe(3);
    const one = newTaskId();
    first.answer([one]);
    // One slot busy of 3: the next long poll asks for 2.
    const second = await h.nextPoll();
    expect(h.running).toBe(1);
    expect(second.asked).toBe(2);
    second.answer([newTaskId(), newTaskId()]);
    await settle(() => h.running === 3, 'three runs');
    // Every slot busy: no long poll is out.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(h.polls).toHaveLength(2);
    expect(h.activity.inFlight).toBe(0);
    // A slot frees: the loop polls again for exactly 1.
    h.runs[0].finish();
    const third = await h.nextPoll();
    expect(third.asked).toBe(1);
    expect(h.receiver.freeSlots).toBe(1);
    // Assess the invariant over the whole run: never more messages in hand than slots.
    expect(h.mostInHand).toBeLessThanOrEqual(3);
    // Cleanup
    await drainAndEnd(h, third, done);
  });

  it('never holds more messages than free slots, whatever each poll brings', async () => {
    // Prepare
    const h = harness(4);
    const done = h.receiver.start();
    // Act: each poll is answered with as many messages as it asked for; runs end one by one.
    for (let round = 0; round < 6; round++) {
      const poll = await h.nextPoll();
      // Assess: a poll asks for exactly the free slots.
      expect(poll.asked).toBe(4 - h.running);
      expect(poll.asked).toBeGreaterThan(0);
      poll.answer(Array.from({ length: poll.asked }, () => newTaskId()));
      await settle(() => h.running === 4, 'every slot busy');
      h.runs.find((r) => !r.ended)!.finish();
      expect(h.activity.handling).toBeLessThanOrEqual(4);
    }
    expect(h.mostInHand).toBeLessThanOrEqual(4);
    // Cleanup
    // the poll for the slot the last round freed
    await drainAndEnd(h, await h.nextPoll(), done);
  });

  it('frees a slot when its container exits, and records at most as many outcomes at once as there are slots', async () => {
    // Prepare: 1 slot, task A running.
    const h = harness(1);
    const done = h.receiver.start();
    (await h.nextPoll()).answer([newTaskId()]);
    await settle(() => h.running === 1, 'task A running');
    expect(h.receiver.freeSlots).toBe(0);
    // Act: A's container exits; its outcome is not recorded yet.
    h.runs[0].exit();
    // Assess: the slot is free for task B while A's terminal write goes on.
    const second = await h.nextPoll();
    expect(second.asked).toBe(1);
    second.answer([newTaskId()]);
    await settle(() => h.running === 2, 'A finishing beside B running');
    expect(h.receiver.freeSlots).toBe(0);
    // Act: B exits too while A's outcome is still being recorded.
    h.runs[1].exit();
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    // Assess: two outcomes in flight on one slot: no poll until one of them is recorded.
    expect(h.receiver.freeSlots).toBe(0);
    expect(h.polls).toHaveLength(2);
    // Act: A's terminal write lands.
    h.runs[0].finish();
    // Assess: a slot again, and never more than 2 × slots messages in hand.
    const third = await h.nextPoll();
    expect(third.asked).toBe(1);
    expect(h.mostInHand).toBeLessThanOrEqual(2);
    // Cleanup
    await drainAndEnd(h, third, done);
  });

  it('sends a duplicate message of a task running here to the claim, which keeps it hidden for the lease', async () => {
    // Prepare: 2 slots, task A running.
    const h = harness(2);
    const { done, taskId: a } = await withRunningTask(h);
    // Act: a duplicate of A's message arrives.
    (await h.nextPoll()).answer([a]);
    // Assess: hidden until A's lease could expire (≥ 60 s); no second run.
    await settle(() => h.hidden.length === 1, 'the duplicate hidden');
    expect(h.hidden[0].receipt).toBe(`r-${a}`);
    expect(h.hidden[0].seconds).toBeGreaterThanOrEqual(60);
    expect(h.runs).toHaveLength(1);
    // Cleanup
    await drainAndEnd(h, await h.nextPoll(), done);
  });

  it('starts a task claimed again while its released run here still cleans up only after that run ended', async () => {
    // Prepare: 1 slot; task A's container exited (slot free) and A was handed back, its run still
    // cleaning up: A's message is visible again and its claim succeeds.
    const h = harness(1, { claimAlways: true });
    const { done, taskId: a } = await withRunningTask(h);
    h.runs[0].exit();
    // Act
    (await h.nextPoll()).answer([a]);
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    // Assess: claimed (not hidden), but the new attempt waits for the old run.
    expect(h.hidden).toEqual([]);
    expect(h.runs).toHaveLength(1);
    h.runs[0].finish();
    await settle(() => h.runs.length === 2, 'the new attempt started after the old run ended');
    expect(h.runs[1].taskId).toBe(a);
    // Cleanup: the one slot is busy with the new attempt, so no poll is out.
    await drainAndEnd(h, { answer: () => undefined }, done);
  });

  it('hands back at once a message that arrives after a drain began, and ends only after the running tasks and their background tails', async () => {
    // Prepare: one task running on 2 slots, the next poll out.
    const h = harness(2);
    const done = h.receiver.start();
    (await h.nextPoll()).answer([newTaskId()]);
    const out = await h.nextPoll();
    expect(out.asked).toBe(1);
    let ended = false;
    void done.then(() => (ended = true));
    // Act: a drain begins while the poll is out; the poll then brings a message.
    h.state.to({ kind: 'draining', reason: 'test', since: Date.now() });
    const late = newTaskId();
    out.answer([late]);
    // Assess: handed back (visibility 0), never run.
    await settle(() => h.handedBack.length === 1, 'the hand-back');
    expect(h.handedBack).toEqual([`r-${late}`]);
    expect(h.runs).toHaveLength(1);
    // The task ends: its slot frees, but the drain still waits for its tail.
    h.runs[0].finish();
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(h.receiver.freeSlots).toBe(2);
    expect(ended).toBe(false);
    h.runs[0].finishTail();
    await done;
    expect(ended).toBe(true);
  });
});
