/**
 * One chaos run against the running local stack: a fresh fleet, several real fleetd daemons
 * behind the AWS fault proxy, N seeded tasks, and while they run: kill -9 and restarts, one
 * dockerd restart, AWS faults (short and longer than a lease), duplicate and delayed
 * deliveries, visibility expiry while tasks run, misbehaving containers, cancels at every
 * stage, and bad input (parsers directly, a sample as real SQS messages and records). Then a
 * bounded drain and the figures (report.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { localStackDir } from '../../lib/local-env-file';
import { PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { DEFAULT_TIMINGS, DLQ_REASON_ATTRIBUTE, TaskStatus, encodeEnvelope, isTerminal, newTaskId, parseTaskRecord, type TaskEvent, type TaskRecord } from '../../../daemon/src/contract';
import { reconcileOnce } from '../../../infra/handlers/reconcile/run';
import { FleetClient } from '../../lib/client';
import { freshFleet, type TestFleet } from '../harness/fleet';
import { planTask, type Behaviour, type PlannedTask } from './behaviours';
import { CHAOS_TIMINGS, ChaosDaemon, removeContainersOf, type DaemonCrash } from './daemons';
import { canRestartDockerd, restartDockerd } from './dockerd';
import { ContainerWatch, overlaps } from './docker-watch';
import { FaultProxy, type Fault } from './fault-proxy';
import { badInputs, baseSpec, checkParsers, sqsAcceptsBody, type ParserCheck } from './fuzz';
import { Rng } from './rng';
import type { ChaosReport } from './report';

export interface ChaosOptions {
  readonly seed: number;
  readonly tasks: number;
  readonly daemons: number;
  readonly slots: number;
  /** 'full': every fault kind, a long outage, one dockerd restart; 'light': fewer, no dockerd restart. */
  readonly intensity: 'full' | 'light';
  readonly dockerRestart: boolean;
  /** Bad inputs per kind fed to the parsers directly. */
  readonly fuzzPerKind: number;
  /** Bad envelopes sent as real SQS messages (plus bad-spec and invalid records through the daemons). */
  readonly badMessages: number;
  /** Only these behaviours, cycled (tests); default: drawn from the seed. */
  readonly behaviours?: readonly Behaviour[];
  /** Hard bound on the active phase and on the drain. */
  readonly activeBudgetMs: number;
  readonly drainBudgetMs: number;
  readonly log: (line: string) => void;
}

export const DEFAULT_CHAOS_OPTIONS: Omit<ChaosOptions, 'seed' | 'tasks' | 'log'> = {
  daemons: 3,
  slots: 3,
  intensity: 'full',
  dockerRestart: true,
  fuzzPerKind: 2000,
  badMessages: 60,
  activeBudgetMs: 390_000,
  drainBudgetMs: 120_000,
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Injected {
  kills: number;
  /** fleetd down longer than a lease while its containers ran on. */
  longOutages: number;
  restarts: number;
  instanceDeaths: number;
  dockerRestarts: number;
  dockerDownMs?: number;
  faultWindows: string[];
  duplicateDeliveries: number;
  cancels: Record<string, number>;
  reconcilerRuns: number;
  reconcilerActions: Record<string, number>;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const o = options;
  const t0 = Date.now();
  const rng = new Rng(o.seed);
  const say = (line: string) => o.log(`[chaos +${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${line}`);

  // 1. Bad input straight through the parsers (thousands, seeded).
  const fuzzRng = rng.fork('fuzz');
  const parserChecks: ParserCheck[] = checkParsers([...badInputs(fuzzRng, 'envelope', o.fuzzPerKind), ...badInputs(fuzzRng, 'spec', o.fuzzPerKind), ...badInputs(fuzzRng, 'record', o.fuzzPerKind), ...badInputs(fuzzRng, 'intake', o.fuzzPerKind)]);
  say(`parsers: ${parserChecks.map((c) => `${c.kind} ${c.rejectedWithReason}/${c.total} rejected`).join(', ')}`);

  // 2. A fresh fleet, the proxy, the container watch, the daemons.
  const fleet: TestFleet = await freshFleet({ instances: o.daemons });
  const client = new FleetClient(fleet.clients, fleet.resources);
  const instanceIds = fleet.resources.instanceIds.slice(0, o.daemons);
  const proxyRng = rng.fork('proxy');
  const proxy = await new FaultProxy(process.env.AWS_ENDPOINT_URL!, () => proxyRng.next()).start();
  const watch = new ContainerWatch(() => fleet.docker, new Set(instanceIds));
  await watch.start();
  const crashes: DaemonCrash[] = [];
  const daemons = instanceIds.map((id) => new ChaosDaemon(fleet, id, o.slots, proxy, crashes));
  const injected: Injected = { kills: 0, longOutages: 0, restarts: 0, instanceDeaths: 0, dockerRestarts: 0, faultWindows: [], duplicateDeliveries: 0, cancels: {}, reconcilerRuns: 0, reconcilerActions: {} };
  const reconcileDeps = { ddb: fleet.clients.ddb, sqs: fleet.clients.sqs, names: fleet.resources, log: () => undefined };
  // Just over a lease: a message a live daemon holds stays hidden that long, so it is never resent early.
  const reconcileOptions = { timings: { ...DEFAULT_TIMINGS, ...CHAOS_TIMINGS }, resendAfterMs: (CHAOS_TIMINGS.leaseSeconds + 10) * 1000 };
  const reconcile = async () => {
    const r = await reconcileOnce(reconcileDeps, reconcileOptions).catch((err: Error) => {
      say(`reconciler failed: ${err.message}`);
      return undefined;
    });
    injected.reconcilerRuns++;
    for (const k of ['resent', 'requeued', 'failed', 'cancelled'] as const) injected.reconcilerActions[k] = (injected.reconcilerActions[k] ?? 0) + (r?.[k].length ?? 0);
  };

  const planned = new Map<string, PlannedTask>();
  const records = new Map<string, TaskRecord>();
  const lastBeat = new Map<string, number>();
  const sideRecords = { badSpec: [] as string[], invalidRecord: [] as string[], victims: [] as string[] };
  const sentBadBodies: string[] = [];
  let sqsRefused = 0;
  let storeRefused = 0;
  const stopActive = new AbortController();

  try {
    await Promise.all(daemons.map((d) => d.start().ready()));
    for (const d of daemons) d.startGuard();
    say(`${o.daemons} fleetd × ${o.slots} slots ready on fleet ${fleet.resources.fleetName}; AWS through the fault proxy ${proxy.url}`);

    // Snapshots of every record (one Scan per 1.5 s): progress, cancel stages, last heartbeats.
    const scanOnce = async () => {
      let start: Record<string, unknown> | undefined;
      do {
        const page = await fleet.clients.ddb.send(new ScanCommand({ TableName: fleet.resources.tasksTable, ConsistentRead: true, ExclusiveStartKey: start }));
        for (const item of page.Items ?? []) {
          const parsed = parseTaskRecord(item);
          if (!parsed.ok) continue;
          const r = parsed.value;
          records.set(r.task_id, r);
          const key = `${r.task_id}#${r.attempt}`;
          const beat = Math.max(r.heartbeat_at ?? 0, r.started_at ?? 0, r.claimed_at ?? 0);
          if (beat > (lastBeat.get(key) ?? 0) && !isTerminal(r.status)) lastBeat.set(key, beat);
        }
        start = page.LastEvaluatedKey;
      } while (start);
    };
    const scanner = (async () => {
      while (!stopActive.signal.aborted) {
        await scanOnce().catch(() => undefined);
        await sleep(1500);
      }
    })();

    // 3. The tasks, submitted over a window, each with its behaviour.
    const taskRng = rng.fork('tasks');
    const spacing = o.intensity === 'full' ? 500 : 700;
    const plans = Array.from({ length: o.tasks }, (_, i) => planTask(taskRng, i, fleet.demoImage, Math.round(i * spacing * (0.5 + taskRng.next())), o.behaviours));
    const submitWindowMs = Math.max(...plans.map((p) => p.submitAtMs), 1);
    const waitStatus = async (taskId: string, statuses: TaskStatus[], pollMs: number, deadlineMs: number): Promise<TaskRecord | undefined> => {
      const deadline = Date.now() + deadlineMs;
      while (Date.now() < deadline && !stopActive.signal.aborted) {
        const r = await client.getTask(taskId).catch(() => undefined);
        if (r && statuses.includes(r.status)) return r;
        if (r && isTerminal(r.status)) return undefined;
        await sleep(pollMs);
      }
      return undefined;
    };
    const cancel = async (taskId: string, stage: string) => {
      const res = await client.cancelTask(taskId, { by: `chaos:${stage}` }).catch((err: Error) => ({ outcome: `error ${err.name}` }));
      injected.cancels[`${stage}:${res.outcome}`] = (injected.cancels[`${stage}:${res.outcome}`] ?? 0) + 1;
    };
    const missed = (stage: string) => (injected.cancels[`${stage}:stage not seen`] = (injected.cancels[`${stage}:stage not seen`] ?? 0) + 1);
    const driverErrors: string[] = [];
    const actRng = rng.fork('act');
    const actOn = async (plan: PlannedTask) => {
      await sleep(plan.submitAtMs);
      let taskId: string;
      if (plan.behaviour === 'lost-enqueue' || plan.cancelStage === 'queued') {
        taskId = await client.submitTaskRecordOnly(plan.spec);
        planned.set(taskId, plan);
        if (plan.cancelStage === 'queued') {
          await cancel(taskId, 'queued');
          // A late message for a cancelled task (the store never resends for a terminal one): must be dropped.
          await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.queueUrl, MessageBody: encodeEnvelope(taskId) }));
        }
        return;
      }
      taskId = (await client.submitTask(plan.spec)).taskId;
      planned.set(taskId, plan);
      for (const delay of plan.extraDeliveries ?? []) {
        await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.queueUrl, MessageBody: encodeEnvelope(taskId), DelaySeconds: delay }));
        injected.duplicateDeliveries++;
      }
      switch (plan.cancelStage) {
        case 'claiming':
          await sleep(actRng.int(0, 400));
          return cancel(taskId, 'claiming');
        // No deadline but the end of the active phase: under a backlog a task may wait minutes
        // for a slot. A stage never seen (it ended first, or the phase ended) is counted, so an
        // uncancelled outcome is not mistaken for a lost cancel.
        case 'starting':
          if (await waitStatus(taskId, [TaskStatus.CLAIMED], 150, Infinity)) await cancel(taskId, 'starting');
          else missed('starting');
          return;
        case 'running':
          if (await waitStatus(taskId, [TaskStatus.RUNNING], 200, Infinity)) {
            await sleep(actRng.int(500, 3000));
            await cancel(taskId, 'running');
          } else missed('running');
          return;
        case 'finishing':
          if (await waitStatus(taskId, [TaskStatus.RUNNING], 100, Infinity)) {
            await sleep(actRng.int(2500, 3500)); // the task sleeps 3 s: around its exit
            await cancel(taskId, 'finishing');
          } else missed('finishing');
          return;
      }
    };
    // A submit the harness could not complete is counted (the table's "driver errors"), never waited for.
    const submitters = plans.map((p) =>
      actOn(p).catch((err: Error) => {
        driverErrors.push(`task ${p.index} (${p.behaviour}): ${err.name}: ${err.message}`);
        say(`task ${p.index} (${p.behaviour}): driver error ${err.name}: ${err.message}`);
      }),
    );

    // 4. Bad input through the real daemons: SQS bodies, records with bad specs, invalid records, victims.
    const badRng = rng.fork('bad');
    const badActor = (async () => {
      const bodies = badInputs(badRng, 'envelope', o.badMessages * 3).map((b) => b.input);
      const acceptable = bodies.filter(sqsAcceptsBody);
      sqsRefused = Math.min(o.badMessages, bodies.length - acceptable.length);
      const toSend = acceptable.slice(0, o.badMessages);
      const specs = badInputs(badRng, 'spec', Math.ceil(o.badMessages / 3)).map((b) => b.input).filter((s) => s !== null && typeof s === 'object' && !Array.isArray(s));
      const recs = badInputs(badRng, 'record', Math.ceil(o.badMessages / 6)).map((b) => b.input).filter((r) => r !== null && typeof r === 'object' && !Array.isArray(r));
      const paceMs = Math.max(50, submitWindowMs / (toSend.length + specs.length + recs.length + 4));
      for (const body of toSend) {
        if (stopActive.signal.aborted) return;
        await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.queueUrl, MessageBody: body })).then(
          () => sentBadBodies.push(body),
          () => sqsRefused++,
        );
        await sleep(paceMs);
      }
      const now = Date.now();
      const put = async (item: Record<string, unknown>, list: string[]) => {
        try {
          await fleet.clients.ddb.send(new PutCommand({ TableName: fleet.resources.tasksTable, Item: item }));
        } catch {
          storeRefused++;
          return;
        }
        list.push(item.task_id as string);
        await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.queueUrl, MessageBody: encodeEnvelope(item.task_id as string) }));
        await sleep(paceMs);
      };
      for (const spec of specs) await put({ task_id: newTaskId(), status: 'QUEUED', spec, created_at: now, updated_at: now, attempt: 0, attempts_left: 3 }, sideRecords.badSpec);
      for (const rec of recs) await put({ ...(rec as Record<string, unknown>), task_id: newTaskId() }, sideRecords.invalidRecord);
      // A queued task named by a message from a future client (v: 2): the message is dead-lettered
      // and the task untouched by it (it runs once the reconciler resends its lost message).
      for (let i = 0; i < 3; i++) {
        const victim = await client.submitTaskRecordOnly(baseSpec(fleet.demoImage) as Parameters<FleetClient['submitTaskRecordOnly']>[0]);
        sideRecords.victims.push(victim);
        const body = JSON.stringify({ v: 2, task_id: victim });
        await fleet.clients.sqs.send(new SendMessageCommand({ QueueUrl: fleet.resources.queueUrl, MessageBody: body }));
        sentBadBodies.push(body);
      }
      say(`bad input sent: ${sentBadBodies.length} messages (${sqsRefused} bodies real SQS would refuse, not sent), ${sideRecords.badSpec.length} bad-spec records, ${sideRecords.invalidRecord.length} invalid records`);
    })().catch((err: Error) => say(`bad-input actor: ${err.name}: ${err.message}`));

    // 5. Faults: AWS through the proxy, kill -9 and restarts, one dockerd restart, the reconciler.
    const faultRng = rng.fork('faults');
    const lease = CHAOS_TIMINGS.leaseSeconds * 1000;
    const faultPlan: Array<{ fault: Fault; ms: number; label: string }> = [];
    const shortKinds: Fault[] = [
      { kind: 'latency', ms: faultRng.int(800, 2500), probability: 0.6 },
      { kind: 'http500', probability: 0.4 },
      { kind: 'http503', probability: 0.4 },
      { kind: 'throttle', probability: 0.6 },
      { kind: 'refuse' },
    ];
    for (const f of o.intensity === 'full' ? shortKinds : shortKinds.filter((k) => k.kind !== 'refuse' && k.kind !== 'http500')) {
      faultPlan.push({ fault: f, ms: faultRng.int(2000, 5000), label: `${f.kind} ${f.probability ?? 1}` });
    }
    // Visibility expiry while tasks run: ChangeMessageVisibility fails for longer than a lease.
    faultPlan.push({ fault: { kind: 'http500', ops: /^sqs\.ChangeMessageVisibility$/ }, ms: lease + faultRng.int(4000, 8000), label: 'ChangeMessageVisibility 500 > lease' });
    if (o.intensity === 'full') {
      const long = faultRng.pick<Fault>([{ kind: 'http503' }, { kind: 'refuse' }, { kind: 'throttle' }]);
      faultPlan.push({ fault: long, ms: lease + faultRng.int(3000, 8000), label: `${long.kind} 1 > lease` });
    }
    for (let i = faultPlan.length - 1; i > 0; i--) {
      const j = faultRng.int(0, i);
      [faultPlan[i], faultPlan[j]] = [faultPlan[j], faultPlan[i]];
    }
    const faultActor = (async () => {
      await sleep(faultRng.int(3000, 6000));
      for (const step of faultPlan) {
        if (stopActive.signal.aborted) return;
        const at = ((Date.now() - t0) / 1000).toFixed(0);
        say(`AWS fault: ${step.label} for ${(step.ms / 1000).toFixed(1)} s`);
        await proxy.inject(step.fault, step.ms, stopActive.signal);
        injected.faultWindows.push(`${step.label} ${(step.ms / 1000).toFixed(1)} s @${at} s`);
        await sleep(faultRng.int(3000, 9000));
      }
    })();

    const killRng = rng.fork('kills');
    const killCount = o.intensity === 'full' ? Math.max(3, Math.round(o.tasks / 15)) : 2;
    const killActor = (async () => {
      for (let k = 0; k < killCount; k++) {
        await sleep(killRng.int(4000, Math.max(6000, (submitWindowMs + 20_000) / killCount)));
        if (stopActive.signal.aborted) return;
        const alive = daemons.filter((d) => d.alive);
        if (alive.length === 0) continue;
        const victim = killRng.pick(alive);
        // In turn: fleetd crash (restart at once), instance death, and fleetd down for longer
        // than a lease while its containers run on (only the lease guard stands between them
        // and a takeover elsewhere). The light run has crashes and deaths only.
        const kind = o.intensity === 'full' ? (['crash', 'death', 'down past its lease'] as const)[k % 3] : k % 2 ? 'death' : 'crash';
        await victim.kill9();
        injected.kills++;
        if (kind === 'down past its lease') {
          injected.longOutages++;
          const downMs = (CHAOS_TIMINGS.leaseSeconds + 5) * 1000;
          say(`kill -9 fleetd on ${victim.instanceId}, back in ${downMs / 1000} s (down past its lease; the lease guard must stop its containers)`);
          // Restarted later without holding up the next kills.
          const restart = setTimeout(() => {
            if (!stopActive.signal.aborted && !victim.alive) {
              victim.start();
              injected.restarts++;
            }
          }, downMs);
          // The drain restarts every daemon anyway: no timer outlives the active phase.
          stopActive.signal.addEventListener('abort', () => clearTimeout(restart), { once: true });
          continue;
        }
        if (kind === 'death') {
          // The instance is gone: its containers die with it; it comes back later as a new boot.
          const removed = await removeContainersOf(fleet.docker, [victim.instanceId]);
          injected.instanceDeaths++;
          say(`kill -9 fleetd on ${victim.instanceId} + its ${removed} container(s) (instance death)`);
          await sleep(killRng.int(5000, 15000));
        } else {
          say(`kill -9 fleetd on ${victim.instanceId} (crash; restarting)`);
          await sleep(killRng.int(300, 1500));
        }
        if (stopActive.signal.aborted) return;
        victim.start();
        injected.restarts++;
      }
    })();

    const dockerActor = (async () => {
      if (!o.dockerRestart) return;
      if (!canRestartDockerd()) {
        say('dockerd restart skipped: the engine was not started by the local stack');
        return;
      }
      await sleep(Math.round(submitWindowMs * (0.3 + 0.3 * rng.fork('docker').next())));
      if (stopActive.signal.aborted) return;
      say('restarting dockerd (the one destructive step; other engineers\' containers die too)');
      const r = await restartDockerd(() => watch.engineStopped());
      await watch.engineBack();
      injected.dockerRestarts++;
      injected.dockerDownMs = r.downMs;
      say(`dockerd back after ${(r.downMs / 1000).toFixed(1)} s (pid ${r.newPid})`);
    })().catch((err: Error) => say(`dockerd restart failed: ${err.message}`));

    const reconcilerActor = (async () => {
      while (!stopActive.signal.aborted) {
        await sleep(15_000);
        if (!stopActive.signal.aborted) await reconcile();
      }
    })();

    // 6. Active phase ends when every task is terminal (or the budget is spent).
    await Promise.all(submitters);
    const activeDeadline = t0 + o.activeBudgetMs;
    for (;;) {
      await sleep(2000);
      const open = [...planned.keys()].filter((id) => !isTerminal(records.get(id)?.status ?? TaskStatus.QUEUED));
      if (open.length === 0) break;
      if (Date.now() > activeDeadline) {
        say(`active budget spent with ${open.length} task(s) open; draining`);
        break;
      }
    }
    stopActive.abort();
    await Promise.all([faultActor, killActor, dockerActor, reconcilerActor, badActor, scanner]);
    await proxy.set(undefined);

    // 7. Drain: stop every daemon gracefully, reconcile, run them again until quiescent (bounded).
    say('drain: stopping the daemons (SIGTERM), reconciling, running them again until quiescent');
    await Promise.all(daemons.map((d) => d.stop()));
    await reconcile();
    for (const d of daemons) d.start();
    const drainDeadline = Date.now() + o.drainBudgetMs;
    let lastReconcile = Date.now();
    for (;;) {
      await scanOnce().catch(() => undefined);
      const open = [...planned.keys(), ...sideRecords.badSpec, ...sideRecords.victims].filter((id) => !isTerminal(records.get(id)?.status ?? TaskStatus.QUEUED));
      if (open.length === 0) break;
      if (Date.now() > drainDeadline) {
        say(`drain budget spent with ${open.length} task(s) open: ${open.slice(0, 5).map((id) => `${id}=${records.get(id)?.status}`).join(', ')}`);
        break;
      }
      if (Date.now() - lastReconcile > 10_000) {
        await reconcile();
        lastReconcile = Date.now();
      }
      await sleep(2000);
    }
    await sleep(1500); // the last die events
    await Promise.all(daemons.map((d) => d.stop()));
    await scanOnce().catch(() => undefined);

    // 8. Figures.
    const events = new Map<string, TaskEvent[]>();
    for (const id of planned.keys()) events.set(id, await client.listEvents(id).catch(() => []));
    const dlq = await readDeadLetters(fleet);
    const lifetimes = watch.all();
    const doubles = overlaps(lifetimes);
    const { buildReport } = await import('./report');
    return buildReport({
      seed: o.seed,
      runtimeMs: Date.now() - t0,
      planned,
      records,
      events,
      lastBeat,
      lifetimes,
      doubles,
      parserChecks,
      sentBadBodies,
      sqsRefused,
      storeRefused,
      dlq,
      sideRecords,
      crashes,
      guardStops: daemons.reduce((n, d) => n + d.guardActions.length, 0),
      driverErrors,
      injected,
      proxyStats: proxy.stats,
    });
  } finally {
    stopActive.abort();
    for (const d of daemons) d.retired = true;
    await Promise.all(daemons.map((d) => d.stop().catch(() => undefined)));
    // Every daemon's log, for reading a failed run after the fact.
    const logDir = path.join(localStackDir(), 'chaos', `seed-${o.seed}`);
    fs.mkdirSync(logDir, { recursive: true });
    for (const d of daemons) fs.writeFileSync(path.join(logDir, `${d.instanceId}.jsonl`), `${d.lines.join('\n')}\n`);
    say(`fleetd logs: ${logDir}`);
    for (const d of daemons) d.stopGuard();
    watch.stop();
    await proxy.close();
    await removeContainersOf(fleet.docker, instanceIds);
    for (const d of daemons) d.removeWorkDir();
  }
}

export interface DeadLetterView {
  readonly body: string;
  readonly reason?: string;
}

/** Every message in the run's dead-letter queue with its reason attribute (bounded). */
async function readDeadLetters(fleet: TestFleet): Promise<DeadLetterView[]> {
  const out: DeadLetterView[] = [];
  for (let empty = 0; empty < 2 && out.length < 5000; ) {
    const res = await fleet.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: fleet.resources.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 600, MessageAttributeNames: ['All'] }));
    const msgs = res.Messages ?? [];
    if (msgs.length === 0) empty++;
    for (const m of msgs) out.push({ body: m.Body ?? '', reason: m.MessageAttributes?.[DLQ_REASON_ATTRIBUTE]?.StringValue });
  }
  return out;
}

export type { Injected };
