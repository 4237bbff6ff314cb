/**
 * The instance's view of itself: its tags (for people and SSM targeting) and its row in the
 * instances table (for `fleet instances` and the reconciler). Tag writes are serialized so two
 * slots finishing together cannot leave a stale tag behind (EC2 tags are last-writer-wins).
 */
import { SetInstanceHealthCommand, type AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { InstanceStatus, LAUNCH_TEMPLATE_TAGS, instanceHeartbeatDelayMs, tagKeys, type TagKeys, type Timings } from './contract';
import type { ImdsClient } from './imds';
import type { InstanceTags } from './instance-tags';
import type { Logger } from './log';
import { InstanceStore } from './store';
import { BUILD_COMMIT, PACKAGE_VERSION } from './version';

/** What the instance runs, recorded in its row: fleetd's build, the AMI, the launch template. */
export interface InstanceBuild {
  readonly version: string;
  readonly commit: string;
  readonly amiId?: string;
  readonly launchTemplateId?: string;
  readonly launchTemplateVersion?: string;
}

/**
 * Reads once at boot what this instance runs. The AMI from IMDS (`ami-id`). The launch template
 * from the instance's `aws:ec2launchtemplate:*` tags: through IMDS when the launch template
 * enables instance metadata tags, else with one ec2:DescribeTags on this instance (`tags`). Best effort:
 * whatever cannot be read is left out of the row (the CLI then reads it from EC2) and logged.
 */
export async function readInstanceBuild(o: { imds: ImdsClient; tags: InstanceTags; instanceId: string; log: Logger }): Promise<InstanceBuild> {
  const build = { version: PACKAGE_VERSION, commit: BUILD_COMMIT };
  const amiId = await o.imds.amiId().catch((err: unknown) => void o.log.warn('IMDS ami-id could not be read', { error: err }));
  type Pair = Array<string | undefined>;
  let lt: Pair = await Promise.all([o.imds.instanceTag(LAUNCH_TEMPLATE_TAGS.id), o.imds.instanceTag(LAUNCH_TEMPLATE_TAGS.version)]).catch((): Pair => []);
  if (lt[0] === undefined) {
    // Instance metadata tags are off (the default): ask EC2 about our own instance.
    const keys = [LAUNCH_TEMPLATE_TAGS.id, LAUNCH_TEMPLATE_TAGS.version];
    lt = await o.tags
      .read(o.instanceId, keys)
      .then((found): Pair => keys.map((k) => found[k]))
      .catch((err: unknown) => {
        o.log.warn('the launch template could not be read (instance metadata tags are off and ec2:DescribeTags failed); the instance row leaves it out', { error: err });
        return [];
      });
  }
  return {
    ...build,
    ...(amiId ? { amiId } : {}),
    ...(lt[0] ? { launchTemplateId: lt[0] } : {}),
    ...(lt[1] ? { launchTemplateVersion: lt[1] } : {}),
  };
}

export interface InstanceStateOptions {
  /** The instance's EC2 tags: a helper process in fleetd (instance-tags.ts), in-process in tests. */
  readonly tags: InstanceTags;
  readonly ddb: DynamoDBDocumentClient;
  /** Unknown only when the config could not be read (a config failure is still reported). */
  readonly instancesTable?: string;
  readonly instanceId: string;
  readonly tagPrefix: string;
  readonly slots: number;
  readonly asgName?: string;
  readonly availabilityZone: string;
  /** What the instance runs (readInstanceBuild); fleetd's own version when not given. */
  readonly build?: InstanceBuild;
  readonly log: Logger;
}

/**
 * How long a change that another one may soon follow waits before it is written (set): a change
 * of the running tasks alone, and busy → idle (in a backlog the next claim comes within ms).
 */
export const RUNNING_ONLY_WAIT_MS = 1000;

export class InstanceState {
  private readonly keys: TagKeys;
  private chain: Promise<void> = Promise.resolve();
  /** The queued write that has not begun yet (set() replaces its state; `now` ends its wait). */
  private waiting?: { snapshot: { status: InstanceStatus; running: string[]; reason?: string }; done: Promise<void>; now: () => void };
  private readonly bootedAt = Date.now();
  private readonly rows?: InstanceStore;
  private heartbeatTimer?: NodeJS.Timeout;
  status: InstanceStatus = InstanceStatus.BOOTING;
  running: string[] = [];
  reason?: string;

  constructor(private readonly o: InstanceStateOptions) {
    this.keys = tagKeys(o.tagPrefix);
    if (o.instancesTable) this.rows = new InstanceStore({ ddb: o.ddb, instancesTable: o.instancesTable });
  }

  /**
   * Sets status and running tasks; tags and the instance row follow, in order. Every task start
   * and end sets the state, and at 4 busy slots writing each one cost 2 tag calls and a PutItem
   * per event (issue #18, docs/benchmarks.md "Throughput"), so:
   * - a state set while an earlier one still waits for its turn replaces it (the waiting write
   *   takes the newest state);
   * - a change of the running tasks alone (same status and reason) waits up to
   *   RUNNING_ONLY_WAIT_MS for more, and so does busy → idle: a slot working through a backlog
   *   goes busy → idle → busy once per task, and the next task's busy state (a status change)
   *   then ends the wait and is written alone, so tags and row see one write per task, not
   *   three calls for idle and two for busy again (docs/architecture.md "What an idle instance
   *   costs"). Any other status change is written at once (with what waits).
   * The newest state is always written, and each caller's promise resolves once a write that
   * carries its state or a newer one is done. `flush` ends any wait.
   */
  set(status: InstanceStatus, running: string[] = this.running, reason?: string): Promise<void> {
    const sameReason = reason === this.reason;
    const runningOnly = status === this.status && sameReason;
    const wentIdle = status === InstanceStatus.IDLE && this.status === InstanceStatus.BUSY && sameReason;
    const mayWait = runningOnly || wentIdle;
    this.status = status;
    this.running = [...running];
    this.reason = reason;
    const snapshot = { status, running: [...running], reason };
    if (this.waiting) {
      this.waiting.snapshot = snapshot;
      if (!mayWait) this.waiting.now();
      return this.waiting.done;
    }
    let timer: NodeJS.Timeout | undefined;
    let endWait = () => undefined as void;
    const wait = mayWait ? new Promise<void>((resolve) => ((endWait = resolve), (timer = setTimeout(resolve, RUNNING_ONLY_WAIT_MS)))) : undefined;
    const waiting = { snapshot, done: Promise.resolve(), now: () => (clearTimeout(timer), endWait()) };
    this.waiting = waiting;
    waiting.done = Promise.all([this.chain, wait])
      .then(() => {
        // From here a new state queues a write of its own.
        this.waiting = undefined;
        return this.write(waiting.snapshot);
      })
      .catch((err) => this.o.log.warn('updating the instance row failed', { error: err }));
    this.chain = waiting.done;
    return this.chain;
  }

  /** Tags, then the row: the row is written even when tagging failed. */
  private async write(s: { status: InstanceStatus; running: string[]; reason?: string }): Promise<void> {
    await this.writeTags(s).catch((err) => this.o.log.warn('updating instance tags failed', { error: err }));
    await this.heartbeat(s);
  }

  private async writeTags(s: { status: InstanceStatus; running: string[] }): Promise<void> {
    await this.o.tags.put(this.o.instanceId, {
      [this.keys.status]: s.status,
      ...(s.running.length ? { [this.keys.taskId]: s.running.join(',').slice(0, 256) } : {}),
    });
    if (!s.running.length) await this.o.tags.remove(this.o.instanceId, [this.keys.taskId]);
  }

  /** The instance row; also written on its own every instance heartbeat (startHeartbeat). */
  async heartbeat(s: { status: InstanceStatus; running: string[]; reason?: string } = { status: this.status, running: this.running, reason: this.reason }): Promise<void> {
    if (!this.rows) return;
    const now = Date.now();
    const b = this.o.build ?? { version: PACKAGE_VERSION, commit: BUILD_COMMIT };
    await this.rows.put({
      instance_id: this.o.instanceId,
      status: s.status,
      updated_at: now,
      heartbeat_at: now,
      booted_at: this.bootedAt,
      slots: this.o.slots,
      running: s.running,
      asg_name: this.o.asgName,
      availability_zone: this.o.availabilityZone,
      reason: s.reason,
      version: b.version,
      commit: b.commit,
      ami_id: b.amiId,
      launch_template_id: b.launchTemplateId,
      launch_template_version: b.launchTemplateVersion,
      ...(s.status === InstanceStatus.UNHEALTHY ? { boot_failed_at: now } : {}),
    });
  }

  /** What the instance runs (its launch template version: the rollout watcher compares it). */
  get build(): InstanceBuild | undefined {
    return this.o.build;
  }

  /**
   * Instance heartbeat: the instance row (fleet instances, the reconciler's stale-instance
   * report) every `timings.instanceHeartbeatSeconds` (360 s by default) +0–10 % jitter
   * (contract/timings.ts `instanceHeartbeatDelayMs`): 10 writes an idle hour. A status change
   * writes the row at once besides (set); readers call a row stale after 2.5 heartbeats
   * (`instanceStaleAfterMs`). A failed write is logged and the next one comes on schedule.
   */
  startHeartbeat(timings: Pick<Timings, 'instanceHeartbeatSeconds'>): void {
    this.heartbeatTimer = setTimeout(() => {
      void this.heartbeat().catch((err) => this.o.log.warn('instance heartbeat failed', { error: err }));
      if (this.heartbeatTimer) this.startHeartbeat(timings);
    }, instanceHeartbeatDelayMs(timings));
    this.heartbeatTimer.unref();
  }

  stopHeartbeat(): void {
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  /** Resolves when the tag and row writes already queued are done. */
  flush(): Promise<void> {
    this.waiting?.now();
    return this.chain;
  }

  /**
   * A failed boot: tag `unhealthy`, the instance row with the reason (`boot_failed_at`), and
   * SetInstanceHealth Unhealthy so the group replaces the instance. Best effort: each step is
   * tried even when the one before failed, and failures are logged.
   */
  async reportUnhealthy(autoscaling: AutoScalingClient, reason: string): Promise<void> {
    this.o.log.error('boot preflight failed; reporting the instance unhealthy', { reason });
    await this.set(InstanceStatus.UNHEALTHY, [], reason);
    await autoscaling
      .send(new SetInstanceHealthCommand({ InstanceId: this.o.instanceId, HealthStatus: 'Unhealthy', ShouldRespectGracePeriod: false }))
      .catch((err) => this.o.log.error('SetInstanceHealth failed', { error: err }));
  }
}
