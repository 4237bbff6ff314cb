/**
 * A deterministic discrete-event model of one fleet under one scaling policy.
 *
 * What is modelled (times in seconds):
 * - tasks arrive (workload), wait in the queue, run for their duration on one slot;
 * - instances boot (uniform boot time, billed from launch), then take tasks;
 * - spot interruptions hit instances at a per-instance-hour rate with a 2-minute notice;
 * - the policy decides how many instances there are:
 *   - `scaler` (this design): every scaler tick, desired = nextDesiredCapacity(desired, queue)
 *     from the contract; instances are protected from scale-in and terminate themselves after
 *     the idle timeout (decrementing desired). On a spot notice fleetd releases its tasks at once
 *     (INTERRUPTED, the message visible again, the attempt given back);
 *   - `target-tracking`: an AWS target-tracking policy on backlog per instance
 *     ((visible + in flight) / InService), one datapoint a minute; scale-out after 3 datapoints
 *     above target, scale-in after 15 below 90 % of target with a 5-minute cooldown. It cannot
 *     scale from zero (no InService instance, no datapoint), so it runs with min 1. Scale-in
 *     picks victims like the ASG does, without knowing which are busy (no scale-in protection,
 *     no lifecycle hook: the plain setup of AWS's "scaling based on SQS" guide). A killed task
 *     keeps its message invisible until its lease expires, then another instance takes it over
 *     with the next attempt; past the attempt cap it fails. Tasks run by fleetd, so spot
 *     notices release tasks as in `scaler`;
 *   - `push-pool` (the replaced design): a fixed pool; each arriving task is pushed to an
 *     instance tagged idle, and fails when there is none. Its known defects are modelled as its
 *     review describes them: AWS-RunShellScript's 1-hour execution timeout fails longer tasks;
 *     instances are tagged idle at launch, so a task pushed to a booting replacement fails; an
 *     instance lost to spot leaves its task "running" forever (unknown SSM status), i.e. lost.
 *
 * Cold start (`coldStart`, absent by default; see ColdStartParams): the image pull on an
 * instance's first task, readiness failures (a boot that never becomes capacity and is replaced
 * after a bounded wait), and a warm pool of stopped, pre-initialised instances. `minInstances`
 * keeps this scaler's group at a floor of running instances. With neither set the model is
 * exactly the one before them (test/unit/simulator-regression.test.ts pins its figures).
 *
 * Not modelled: SQS/CloudWatch metric lag (beyond target tracking's datapoints), EC2 launch
 * throttling and capacity shortages, per-AZ balancing, more than one image.
 */
import { DEFAULT_TIMINGS, nextDesiredCapacity, type Timings } from '../../../daemon/src/contract';
import { EventQueue } from './event-queue';
import { Prng } from './prng';
import type { Workload } from './workloads';

export const POLICIES = ['scaler', 'target-tracking', 'push-pool'] as const;
export type PolicyName = (typeof POLICIES)[number];

export const POLICY_LABELS: Readonly<Record<PolicyName, string>> = {
  scaler: 'this scaler',
  'target-tracking': 'target tracking',
  'push-pool': 'fixed pool, push',
};

/**
 * The cold-start model. Every part is off at zero: imageBytes 0 (or imagePrepulled), no
 * readiness failures, pool size 0 (NO_COLD_START).
 */
export interface ColdStartParams {
  /**
   * Bytes of the (one) agent image to pull and the effective pull rate (download + extract):
   * an instance's first task waits imageBytes / pullBytesPerSecond; later tasks find it cached.
   */
  readonly imageBytes: number;
  readonly pullBytesPerSecond: number;
  /** The image is baked into the AMI (packer --prepull): nothing to pull on any instance. */
  readonly imagePrepulled: boolean;
  /** Fraction of launches from scratch whose readiness check (fleetd preflight) fails. */
  readonly readinessFailureRate: number;
  /**
   * How long after its boot a failed instance is detected and terminated (then the group
   * replaces it); it is billed until then and never takes a task.
   */
  readonly readinessTimeoutSeconds: number;
  /**
   * A warm pool of stopped, pre-initialised instances (images pulled, readiness passed). A
   * scale-out takes a stopped one first (`startSeconds` to fleetd ready instead of a boot),
   * and the pool refills by launching a new instance that boots, pulls, and stops (billed while
   * it runs). Stopped instances cost only their EBS volume. The pool is full at t = 0.
   */
  readonly warmPool: { readonly size: number; readonly startSeconds: { readonly min: number; readonly max: number } };
}

/** The cold-start model switched off: a run with it is the run without it. */
export const NO_COLD_START: ColdStartParams = Object.freeze({
  imageBytes: 0,
  pullBytesPerSecond: 1,
  imagePrepulled: false,
  readinessFailureRate: 0,
  readinessTimeoutSeconds: 300,
  warmPool: { size: 0, startSeconds: { min: 20, max: 40 } },
});

export interface FleetParams {
  readonly timings: Timings;
  readonly slotsPerInstance: number;
  readonly maxInstances: number;
  /** Launch → ready to take a task (baked AMI 45–60 s plus fleetd's preflight). */
  readonly bootSeconds: { readonly min: number; readonly max: number };
  /** Scaler: warm instances above demand while there is demand. */
  readonly buffer: number;
  /**
   * Scaler: the group's MinSize, running (idle) instances that are never scaled in; they are up
   * with the image pulled at t = 0. Absent = 0.
   */
  readonly minInstances?: number;
  /** Image pull, readiness failures, warm pool. Absent = none (the model before cold start). */
  readonly coldStart?: ColdStartParams;
  /** Spot interruptions per instance-hour (exponential time to interruption). */
  readonly spotPerInstanceHour: number;
  readonly spotNoticeSeconds: number;
  readonly targetTracking: {
    readonly min: number;
    /** Target backlog per instance, (visible + in flight) / InService. */
    readonly target: number;
    readonly periodSeconds: number;
    readonly scaleOutPeriods: number;
    readonly scaleInPeriods: number;
    readonly scaleInRatio: number;
    readonly scaleInCooldownSeconds: number;
  };
  readonly push: {
    /** Pool size; when absent the caller sizes it (simulate.ts: this scaler's mean fleet). */
    readonly poolSize?: number;
    /** AWS-RunShellScript's default execution timeout. */
    readonly ssmTimeoutSeconds: number;
  };
  /** Time-series sample interval for the chart. */
  readonly sampleSeconds: number;
  /** Give up this long after the last arrival; whatever is not finished then is lost. */
  readonly drainLimitSeconds: number;
}

export const DEFAULT_FLEET_PARAMS: FleetParams = Object.freeze({
  timings: DEFAULT_TIMINGS,
  slotsPerInstance: 1,
  maxInstances: 1000,
  bootSeconds: { min: 50, max: 90 },
  buffer: 0,
  spotPerInstanceHour: 0.01,
  spotNoticeSeconds: 120,
  targetTracking: {
    min: 1,
    target: 1,
    periodSeconds: 60,
    scaleOutPeriods: 3,
    scaleInPeriods: 15,
    scaleInRatio: 0.9,
    scaleInCooldownSeconds: 300,
  },
  push: { ssmTimeoutSeconds: 3600 },
  sampleSeconds: 60,
  drainLimitSeconds: 48 * 3600,
});

export type FailureReason = 'no idle instance' | 'ssm 1-hour timeout' | 'pushed to a booting instance' | 'attempt cap (killed by scale-in)';

export interface Series {
  readonly t: number[];
  /** Instances launched and not yet terminated (booting included: they are billed). */
  readonly instances: number[];
  readonly running: number[];
  readonly queued: number[];
}

export interface SimResult {
  readonly workload: string;
  readonly policy: PolicyName;
  readonly tasks: number;
  readonly completed: number;
  readonly failed: number;
  readonly failedBy: Partial<Record<FailureReason, number>>;
  /** Tasks that never reached a terminal state (must be 0 for this design). */
  readonly lost: number;
  /** Queue wait (s) from arrival to first start, over tasks that started. */
  readonly wait: { readonly p50: number; readonly p95: number; readonly max: number };
  readonly instanceHours: number;
  /** Busy slot time / billed slot time. */
  readonly utilisation: number;
  readonly peakInstances: number;
  readonly launches: number;
  /** Runs cut short (spot release, scale-in kill) and started again later. */
  readonly restarts: number;
  readonly spotInterruptions: number;
  readonly poolSize?: number;
  /** Present when params.coldStart is set. */
  readonly coldStart?: ColdStartStats;
  /** Simulated seconds until the fleet was idle again (accounting end). */
  readonly endS: number;
  readonly series: Series;
}

export interface ColdStartStats {
  /** Image pulls started (one per instance that launched without the image). */
  readonly pulls: number;
  /** Boots that failed their readiness check (in the group and in warm-pool refills). */
  readonly readinessFailures: number;
  readonly warmPoolSize: number;
  /** Scale-outs served by a stopped warm-pool instance. */
  readonly warmStarts: number;
  /** Instance-hours of warm-pool refills while running (boot, pull, or a failed boot). */
  readonly poolRunningHours: number;
  /** Instance-hours spent stopped in the pool (billed for EBS only). */
  readonly poolStoppedHours: number;
}

const enum Ev {
  Arrival,
  Finish,
  Booted,
  IdleCheck,
  SpotNotice,
  SpotTerminate,
  LeaseExpired,
  ScalerTick,
  Metric,
  Sample,
  ReadinessFailed,
  PoolReady,
  PoolFailed,
}

const enum TaskState {
  Pending,
  Queued,
  Running,
  /** Killed by scale-in: its message stays invisible until the lease expires. */
  Orphaned,
  Completed,
  Failed,
  /** The replaced design's hung task: "running" on an instance that no longer exists. */
  Hung,
}

const enum InstState {
  Booting,
  Ready,
  Draining,
  Gone,
}

interface Instance {
  readonly id: number;
  readonly launchedAt: number;
  state: InstState;
  endedAt: number;
  running: number[];
  /** Bumped when the instance leaves idleness; a stale IdleCheck is ignored. */
  idleGen: number;
  /** When the image is (or will be) on this instance: NaN = not pulled yet. */
  imageAt: number;
  /** This boot fails its readiness check. */
  failsReadiness: boolean;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function simulate(workload: Workload, policy: PolicyName, params: FleetParams, seed: number): SimResult {
  const rng = new Prng(seed, `${workload.name}/${policy}/fleet`);
  const n = workload.arrivals.length;
  const slots = params.slotsPerInstance;
  const timings = params.timings;
  const tt = params.targetTracking;
  const leaseS = timings.leaseSeconds;
  const minInstances = policy === 'scaler' ? (params.minInstances ?? 0) : 0;
  // Cold start draws from its own stream, so the base model's draws stay where they were.
  const cs = params.coldStart;
  const csRng = new Prng(seed, `${workload.name}/${policy}/cold-start`);
  const pullS = cs && !cs.imagePrepulled && cs.imageBytes > 0 ? cs.imageBytes / cs.pullBytesPerSecond : 0;
  const failRate = cs?.readinessFailureRate ?? 0;
  const poolSize = cs?.warmPool.size ?? 0;

  const state = new Uint8Array(n);
  const attemptsLeft = new Int16Array(n).fill(timings.maxAttempts);
  const runGen = new Int32Array(n);
  const runStart = new Float64Array(n);
  const firstStart = new Float64Array(n).fill(NaN);
  /** Pull wait of the current run (its container starts that long after the claim). */
  const pullWait = new Float64Array(n);
  /** The instance a running task is on. */
  const hostOf = new Int32Array(n).fill(-1);
  const failedBy: Partial<Record<FailureReason, number>> = {};

  const instances: Instance[] = [];
  /**
   * Ready instances with a free slot. SQS hands a new message to any one of the waiting long
   * polls, so the receiving instance is drawn at random (O(1) add, remove and pick).
   */
  const free = new RandomSet();
  const queue: number[] = [];
  let qHead = 0;
  const agenda = new EventQueue<Ev>();

  let now = 0;
  let desired = 0;
  let live = 0;
  let running = 0;
  let terminal = 0;
  let busySlotSeconds = 0;
  let restarts = 0;
  let spotInterruptions = 0;
  let peak = 0;
  let endAt = Infinity;
  const hardStop = workload.horizonS + params.drainLimitSeconds;
  const datapoints: number[] = [];
  let lastScaleIn = -Infinity;
  let orphaned = 0;
  const series: Series = { t: [], instances: [], running: [], queued: [] };
  let pulls = 0;
  let readinessFailures = 0;
  let warmStarts = 0;
  let poolStopped = poolSize;
  let poolStoppedSeconds = 0;
  let poolChangedAt = 0;
  let poolRunningSeconds = 0;
  /** Warm-pool refills in progress: launch time (NaN once done). */
  const refills: number[] = [];

  const queued = () => queue.length - qHead;

  const finishTask = (task: number, s: TaskState, reason?: FailureReason) => {
    state[task] = s;
    if (reason) failedBy[reason] = (failedBy[reason] ?? 0) + 1;
    terminal++;
    if (terminal === n) endAt = Math.max(workload.horizonS, now) + timings.idleBeforeTerminateSeconds;
  };

  const enqueue = (task: number) => {
    state[task] = TaskState.Queued;
    queue.push(task);
  };

  const leaveIdle = (inst: Instance) => {
    inst.idleGen++;
  };

  const becomeIdle = (inst: Instance) => {
    inst.idleGen++;
    if (policy === 'scaler') agenda.push(now + timings.idleBeforeTerminateSeconds, Ev.IdleCheck, inst.id, inst.idleGen);
  };

  /** Take a task off the instance (finished, released, killed): frees the slot. */
  const detach = (inst: Instance, task: number) => {
    const k = inst.running.indexOf(task);
    inst.running.splice(k, 1);
    running--;
    // runStart is when the container started; a run cut short during its pull did no work and
    // has not started yet (its first start is still to come).
    busySlotSeconds += Math.max(0, now - runStart[task]);
    if (firstStart[task] > now) firstStart[task] = NaN;
    runGen[task]++;
    if (inst.state === InstState.Ready) {
      free.add(inst.id);
      if (inst.running.length === 0) becomeIdle(inst);
    }
  };

  const start = (inst: Instance, task: number) => {
    if (inst.running.length === 0) leaveIdle(inst);
    inst.running.push(task);
    hostOf[task] = inst.id;
    if (inst.running.length >= slots) free.delete(inst.id);
    running++;
    state[task] = TaskState.Running;
    // The first task on an instance without the image pulls it; a task claimed while that pull
    // is under way waits for the same pull.
    let wait = 0;
    if (pullS > 0) {
      if (Number.isNaN(inst.imageAt)) {
        inst.imageAt = now + pullS;
        pulls++;
      }
      wait = Math.max(0, inst.imageAt - now);
    }
    pullWait[task] = wait;
    const begins = wait > 0 ? now + wait : now;
    runStart[task] = begins;
    if (Number.isNaN(firstStart[task])) firstStart[task] = begins;
    attemptsLeft[task]--; // the claim takes an attempt (the fencing token goes up)
    const d = workload.durations[task];
    // The push design's SSM command pulls the image inside its 1-hour execution timeout.
    const cut = policy === 'push-pool' ? Math.min(wait + d, params.push.ssmTimeoutSeconds) : wait + d;
    agenda.push(now + cut, Ev.Finish, task, runGen[task]);
  };

  /** Pull dispatch: every free slot long-polls, so a waiting task is received at once. */
  const dispatch = () => {
    if (policy === 'push-pool') return;
    while (qHead < queue.length && free.size > 0) {
      const task = queue[qHead++];
      const id = free.pick(rng);
      start(instances[id], task);
    }
    if (qHead > 4096 && qHead * 2 > queue.length) {
      queue.splice(0, qHead);
      qHead = 0;
    }
  };

  const poolChange = (delta: number) => {
    poolStoppedSeconds += poolStopped * (now - poolChangedAt);
    poolChangedAt = now;
    poolStopped += delta;
  };

  /** A warm-pool refill: a new instance boots, pulls the image, passes readiness, stops. */
  const refill = () => {
    const ref = refills.length;
    refills.push(now);
    const boot = csRng.uniform(params.bootSeconds.min, params.bootSeconds.max);
    if (failRate > 0 && csRng.next() < failRate) agenda.push(now + boot + (cs?.readinessTimeoutSeconds ?? 0), Ev.PoolFailed, ref);
    else agenda.push(now + boot + pullS, Ev.PoolReady, ref);
  };

  /** A launch by the group; `initial`: the fleet already up at t = 0 (no pool, no failure). */
  const launch = (initial = false) => {
    const inst: Instance = {
      id: instances.length,
      launchedAt: now,
      state: InstState.Booting,
      endedAt: NaN,
      running: [],
      idleGen: 0,
      imageAt: NaN,
      failsReadiness: false,
    };
    instances.push(inst);
    live++;
    peak = Math.max(peak, live);
    // Drawn even when the pool serves the launch, so the base stream stays aligned across runs.
    let ready = now + rng.uniform(params.bootSeconds.min, params.bootSeconds.max);
    if (initial) {
      inst.imageAt = -Infinity;
    } else if (poolStopped > 0 && cs) {
      // Auto Scaling starts a stopped warm-pool instance: initialised, image pulled, already
      // past its readiness check. The pool refills behind it.
      poolChange(-1);
      warmStarts++;
      ready = now + csRng.uniform(cs.warmPool.startSeconds.min, cs.warmPool.startSeconds.max);
      inst.imageAt = -Infinity;
      refill();
    } else if (failRate > 0 && csRng.next() < failRate) {
      inst.failsReadiness = true;
    }
    agenda.push(ready, Ev.Booted, inst.id);
    if (params.spotPerInstanceHour > 0) agenda.push(now + rng.exponential(3600 / params.spotPerInstanceHour), Ev.SpotNotice, inst.id);
    return inst;
  };

  const terminate = (inst: Instance) => {
    inst.state = InstState.Gone;
    inst.endedAt = now;
    free.delete(inst.id);
    live--;
  };

  /** Scale-in by the group (target tracking): victims picked without knowing who is busy. */
  const killForScaleIn = (inst: Instance) => {
    for (const task of [...inst.running]) {
      detach(inst, task);
      restarts++;
      state[task] = TaskState.Orphaned;
      orphaned++;
      // Heartbeats every 30 s keep the lease 90–120 s ahead: that is how long the message stays
      // invisible before another instance can take the task over.
      agenda.push(now + rng.uniform(leaseS - timings.heartbeatSeconds, leaseS), Ev.LeaseExpired, task, runGen[task]);
    }
    terminate(inst);
  };

  /** The Auto Scaling group converging on `desired`. */
  const converge = () => {
    while (live < desired) launch();
    if (live > desired) {
      const candidates = instances.filter((i) => i.state === InstState.Booting || i.state === InstState.Ready);
      while (live > desired && candidates.length > 0) {
        const [victim] = candidates.splice(rng.int(candidates.length), 1);
        killForScaleIn(victim);
      }
    }
  };

  /** Push dispatch: pick any instance tagged idle (booting ones are tagged idle at launch). */
  const push = (task: number) => {
    let count = 0;
    for (const inst of instances) if (inst.state === InstState.Booting || (inst.state === InstState.Ready && inst.running.length < slots)) count++;
    if (count === 0) return finishTask(task, TaskState.Failed, 'no idle instance');
    let k = rng.int(count);
    for (const inst of instances) {
      if (!(inst.state === InstState.Booting || (inst.state === InstState.Ready && inst.running.length < slots))) continue;
      if (k-- > 0) continue;
      if (inst.state === InstState.Booting) {
        return finishTask(task, TaskState.Failed, 'pushed to a booting instance');
      }
      return start(inst, task);
    }
  };

  // Initial fleet.
  if (policy === 'push-pool') {
    desired = params.push.poolSize ?? 1;
  } else if (policy === 'target-tracking') {
    desired = tt.min;
  } else {
    desired = minInstances;
  }
  for (let i = 0; i < desired; i++) {
    const inst = launch(true);
    inst.state = InstState.Ready; // the initial fleet is already up at t = 0, its image pulled
    free.add(inst.id);
  }
  for (let i = 0; i < n; i++) agenda.push(workload.arrivals[i], Ev.Arrival, i);
  if (policy === 'scaler') agenda.push(0, Ev.ScalerTick);
  if (policy === 'target-tracking') agenda.push(tt.periodSeconds, Ev.Metric);
  agenda.push(0, Ev.Sample);

  for (let e = agenda.pop(); e !== undefined; e = agenda.pop()) {
    if (e.t > endAt || e.t > hardStop) break;
    now = e.t;
    switch (e.kind) {
      case Ev.Arrival:
        if (policy === 'push-pool') push(e.ref);
        else {
          enqueue(e.ref);
          dispatch();
        }
        break;
      case Ev.Finish: {
        const task = e.ref;
        if (runGen[task] !== e.gen || state[task] !== TaskState.Running) break;
        detach(instances[hostOf[task]], task);
        const timedOut = policy === 'push-pool' && pullWait[task] + workload.durations[task] > params.push.ssmTimeoutSeconds;
        finishTask(task, timedOut ? TaskState.Failed : TaskState.Completed, timedOut ? 'ssm 1-hour timeout' : undefined);
        dispatch();
        break;
      }
      case Ev.Booted: {
        const inst = instances[e.ref];
        if (inst.state !== InstState.Booting) break;
        if (inst.failsReadiness) {
          // Preflight failed (or fleetd never came up): no task is ever received here; the
          // instance is reported unhealthy / found dead and replaced after a bounded wait.
          readinessFailures++;
          agenda.push(now + (cs?.readinessTimeoutSeconds ?? 0), Ev.ReadinessFailed, inst.id);
          break;
        }
        inst.state = InstState.Ready;
        free.add(inst.id);
        becomeIdle(inst);
        dispatch();
        break;
      }
      case Ev.IdleCheck: {
        const inst = instances[e.ref];
        if (inst.state !== InstState.Ready || inst.idleGen !== e.gen || inst.running.length > 0) break;
        if (minInstances > 0 && desired <= minInstances) {
          // At MinSize Auto Scaling refuses; fleetd resumes polling and checks again later.
          becomeIdle(inst);
          break;
        }
        // fleetd stops polling, then TerminateInstanceInAutoScalingGroup with decrement: above
        // MinSize it goes.
        desired = Math.max(0, desired - 1);
        terminate(inst);
        break;
      }
      case Ev.SpotNotice: {
        const inst = instances[e.ref];
        if (inst.state === InstState.Gone) break;
        spotInterruptions++;
        inst.state = InstState.Draining;
        free.delete(inst.id);
        if (policy !== 'push-pool') {
          // fleetd: stop claiming, release every running task at once (INTERRUPTED, message
          // visible, the attempt given back).
          for (const task of [...inst.running]) {
            detach(inst, task);
            restarts++;
            attemptsLeft[task]++;
            enqueue(task);
          }
          dispatch();
        }
        agenda.push(now + params.spotNoticeSeconds, Ev.SpotTerminate, inst.id);
        break;
      }
      case Ev.SpotTerminate: {
        const inst = instances[e.ref];
        if (inst.state === InstState.Gone) break;
        for (const task of [...inst.running]) {
          // Only the push design still has tasks here: its orchestrator never hears back.
          detach(inst, task);
          finishTask(task, TaskState.Hung);
        }
        terminate(inst);
        converge(); // the group replaces the instance (desired is unchanged)
        dispatch();
        break;
      }
      case Ev.LeaseExpired: {
        const task = e.ref;
        if (state[task] !== TaskState.Orphaned || runGen[task] !== e.gen) break;
        orphaned--;
        if (attemptsLeft[task] <= 0) finishTask(task, TaskState.Failed, 'attempt cap (killed by scale-in)');
        else {
          enqueue(task);
          dispatch();
        }
        break;
      }
      case Ev.ScalerTick: {
        desired = nextDesiredCapacity(desired, {
          visible: queued(),
          inFlight: running,
          slotsPerInstance: slots,
          buffer: params.buffer,
          min: minInstances,
          max: params.maxInstances,
        });
        converge();
        dispatch();
        agenda.push(now + timings.scalerTickSeconds, Ev.ScalerTick);
        break;
      }
      case Ev.Metric: {
        let inService = 0;
        for (const inst of instances) if (inst.state === InstState.Ready) inService++;
        // No InService instance → no datapoint → INSUFFICIENT_DATA: target tracking cannot act.
        datapoints.push(inService === 0 ? NaN : (queued() + running + orphaned) / inService);
        const last = (k: number) => datapoints.slice(-k);
        const backlog = queued() + running + orphaned;
        const wanted = Math.ceil(backlog / tt.target);
        if (datapoints.length >= tt.scaleOutPeriods && last(tt.scaleOutPeriods).every((m) => m > tt.target)) {
          desired = Math.min(params.maxInstances, Math.max(desired, wanted));
        } else if (
          datapoints.length >= tt.scaleInPeriods &&
          last(tt.scaleInPeriods).every((m) => m < tt.target * tt.scaleInRatio) &&
          now - lastScaleIn >= tt.scaleInCooldownSeconds &&
          Math.max(tt.min, wanted) < desired
        ) {
          desired = Math.max(tt.min, wanted);
          lastScaleIn = now;
        }
        converge();
        dispatch();
        agenda.push(now + tt.periodSeconds, Ev.Metric);
        break;
      }
      case Ev.ReadinessFailed: {
        const inst = instances[e.ref];
        if (inst.state === InstState.Gone) break;
        terminate(inst);
        converge(); // the group replaces it (desired is unchanged)
        dispatch();
        break;
      }
      case Ev.PoolReady:
        poolRunningSeconds += now - refills[e.ref];
        refills[e.ref] = NaN;
        poolChange(+1);
        break;
      case Ev.PoolFailed:
        readinessFailures++;
        poolRunningSeconds += now - refills[e.ref];
        refills[e.ref] = NaN;
        refill();
        break;
      case Ev.Sample:
        series.t.push(now);
        series.instances.push(live);
        series.running.push(running);
        series.queued.push(queued());
        agenda.push(now + params.sampleSeconds, Ev.Sample);
        break;
    }
  }

  // Close the books at the accounting end.
  const end = Math.min(endAt, hardStop);
  now = end;
  series.t.push(end);
  series.instances.push(live);
  series.running.push(running);
  series.queued.push(queued());
  let instanceSeconds = 0;
  for (const inst of instances) {
    for (const task of inst.running) busySlotSeconds += Math.max(0, end - runStart[task]);
    instanceSeconds += (inst.state === InstState.Gone ? inst.endedAt : end) - inst.launchedAt;
  }
  let completed = 0;
  let failed = 0;
  const waits: number[] = [];
  for (let i = 0; i < n; i++) {
    if (state[i] === TaskState.Completed) completed++;
    else if (state[i] === TaskState.Failed) failed++;
    if (firstStart[i] <= end) waits.push(firstStart[i] - workload.arrivals[i]);
  }
  const sortedWaits = Float64Array.from(waits).sort();
  poolChange(0);
  for (const at of refills) if (!Number.isNaN(at)) poolRunningSeconds += end - at;
  return {
    workload: workload.name,
    policy,
    tasks: n,
    completed,
    failed,
    failedBy,
    lost: n - completed - failed,
    wait: { p50: percentile(sortedWaits, 50), p95: percentile(sortedWaits, 95), max: sortedWaits.length ? sortedWaits[sortedWaits.length - 1] : 0 },
    instanceHours: instanceSeconds / 3600,
    utilisation: instanceSeconds > 0 ? busySlotSeconds / (instanceSeconds * slots) : 0,
    peakInstances: peak,
    launches: instances.length,
    restarts,
    spotInterruptions,
    poolSize: policy === 'push-pool' ? (params.push.poolSize ?? 1) : undefined,
    ...(cs
      ? {
          coldStart: {
            pulls,
            readinessFailures,
            warmPoolSize: poolSize,
            warmStarts,
            poolRunningHours: poolRunningSeconds / 3600,
            poolStoppedHours: poolStoppedSeconds / 3600,
          },
        }
      : {}),
    endS: end,
    series,
  };
}

/** A set of small integers with O(1) add, delete and uniform random pick. */
class RandomSet {
  private readonly items: number[] = [];
  private readonly pos: number[] = [];

  get size(): number {
    return this.items.length;
  }

  add(id: number): void {
    if ((this.pos[id] ?? -1) >= 0) return;
    this.pos[id] = this.items.length;
    this.items.push(id);
  }

  delete(id: number): void {
    const at = this.pos[id] ?? -1;
    if (at < 0) return;
    const last = this.items.pop() as number;
    if (last !== id) {
      this.items[at] = last;
      this.pos[last] = at;
    }
    this.pos[id] = -1;
  }

  pick(rng: Prng): number {
    return this.items[rng.int(this.items.length)];
  }
}
