/**
 * The instance's view of itself: its tags (for people and SSM targeting) and its row in the
 * instances table (for `fleet instances` and the reconciler). Tag writes are serialized so two
 * slots finishing together cannot leave a stale tag behind (EC2 tags are last-writer-wins).
 */
import { SetInstanceHealthCommand, type AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CreateTagsCommand, DeleteTagsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { InstanceStatus, tagKeys, type TagKeys } from './contract';
import type { Logger } from './log';
import { InstanceStore } from './store';

export interface InstanceStateOptions {
  readonly ec2: EC2Client;
  readonly ddb: DynamoDBDocumentClient;
  /** Unknown only when the config could not be read (a config failure is still reported). */
  readonly instancesTable?: string;
  readonly instanceId: string;
  readonly tagPrefix: string;
  readonly slots: number;
  readonly asgName?: string;
  readonly availabilityZone: string;
  readonly log: Logger;
}

export class InstanceState {
  private readonly keys: TagKeys;
  private chain: Promise<void> = Promise.resolve();
  private readonly bootedAt = Date.now();
  private readonly rows?: InstanceStore;
  status: InstanceStatus = InstanceStatus.BOOTING;
  running: string[] = [];
  reason?: string;

  constructor(private readonly o: InstanceStateOptions) {
    this.keys = tagKeys(o.tagPrefix);
    if (o.instancesTable) this.rows = new InstanceStore({ ddb: o.ddb, instancesTable: o.instancesTable });
  }

  /** Sets status and running tasks; tags and the instance row follow, in order. */
  set(status: InstanceStatus, running: string[] = this.running, reason?: string): Promise<void> {
    this.status = status;
    this.running = [...running];
    this.reason = reason;
    const snapshot = { status, running: [...running], reason };
    this.chain = this.chain.then(() => this.write(snapshot)).catch((err) => this.o.log.warn('updating the instance row failed', { error: err }));
    return this.chain;
  }

  /** Tags, then the row: the row is written even when tagging failed. */
  private async write(s: { status: InstanceStatus; running: string[]; reason?: string }): Promise<void> {
    await this.writeTags(s).catch((err) => this.o.log.warn('updating instance tags failed', { error: err }));
    await this.heartbeat(s);
  }

  private async writeTags(s: { status: InstanceStatus; running: string[] }): Promise<void> {
    const resources = [this.o.instanceId];
    await this.o.ec2.send(new CreateTagsCommand({
      Resources: resources,
      Tags: [
        { Key: this.keys.status, Value: s.status },
        ...(s.running.length ? [{ Key: this.keys.taskId, Value: s.running.join(',').slice(0, 256) }] : []),
      ],
    }));
    if (!s.running.length) await this.o.ec2.send(new DeleteTagsCommand({ Resources: resources, Tags: [{ Key: this.keys.taskId }] }));
  }

  /** The instance row; also written on its own every heartbeat interval. */
  async heartbeat(s: { status: InstanceStatus; running: string[]; reason?: string } = { status: this.status, running: this.running, reason: this.reason }): Promise<void> {
    if (!this.rows) return;
    const now = Date.now();
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
      ...(s.status === InstanceStatus.UNHEALTHY ? { boot_failed_at: now } : {}),
    });
  }

  flush(): Promise<void> {
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
