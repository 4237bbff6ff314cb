/**
 * Rollouts without interruption (docs/operations.md "Rolling out a new launch template
 * version"): the client side of contract/rollout.ts. `start` points the Auto Scaling group at
 * the new launch template version (new launches use it), then writes the rollout marker on the
 * group; every fleetd of another version retires (claims nothing new, finishes its tasks
 * however long they run, then terminates itself); the scaler counts retiring instances as no
 * capacity, so it brings up new ones for the queue. `abort` restores the group's previous
 * version, then removes the marker: retiring instances that have not left serve again.
 * `finish` removes the marker once no old instance is left. `status` lists old and new
 * instances and the tasks still on old ones.
 *
 * Order of the writes, so that a failure half-way is safe and running the command again
 * repairs it: start sets the version before the marker (a marker without the version would
 * retire old instances while the group still launches old ones); abort restores the version
 * before it removes the marker (old instances keep retiring until the group launches them again).
 */
import {
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  UpdateAutoScalingGroupCommand,
  type AutoScalingGroup,
  type LaunchTemplateSpecification,
} from '@aws-sdk/client-auto-scaling';
import { DescribeLaunchTemplateVersionsCommand } from '@aws-sdk/client-ec2';
import type { AwsClients } from '../../daemon/src/aws';
import {
  LAUNCH_TEMPLATE_VERSION_PATTERN,
  ROLLOUT_TAG_KEY,
  decideRollout,
  decodeRolloutMarker,
  encodeRolloutMarker,
  type RolloutMarker,
} from '../../daemon/src/contract';
import type { FleetClient, InstanceView } from './client';
import { RolloutAwsError, RolloutRefusedError } from './errors';

export { RolloutAwsError, RolloutRefusedError };

export interface RolloutInstance {
  readonly instanceId: string;
  /** `old`: retires under the marker; `new`: runs the target; `unknown`: its version is not known. */
  readonly generation: 'old' | 'new' | 'unknown';
  readonly launchTemplateVersion?: string;
  /** From the instances table (fleetd's row), else the group's lifecycle state. */
  readonly status: string;
  readonly lifecycleState?: string;
  readonly running: string[];
}

export interface RolloutStatus {
  readonly asgName: string;
  readonly marker?: RolloutMarker;
  /** The group's launch template version setting (a number, `$Latest` or `$Default`). */
  readonly groupVersion?: string;
  readonly instances: RolloutInstance[];
  /** Tasks still running on old instances. */
  readonly tasksOnOld: Array<{ taskId: string; instanceId: string }>;
  /** True when a rollout is under way and no old instance is left (run `finish`). */
  readonly done: boolean;
  readonly warnings: string[];
}

/** The group's launch template spec, plain or inside a mixed instances policy. */
function templateOf(g: AutoScalingGroup): LaunchTemplateSpecification | undefined {
  return g.LaunchTemplate ?? g.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
}

export class FleetRollout {
  constructor(
    private readonly clients: AwsClients,
    readonly asgName: string,
    private readonly fleet?: FleetClient,
  ) {}

  private async aws<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw new RolloutAwsError(`${what} failed: ${(err as Error).name}: ${(err as Error).message}`, { cause: err });
    }
  }

  async group(): Promise<AutoScalingGroup> {
    const res = await this.aws(`DescribeAutoScalingGroups ${this.asgName}`, () => this.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [this.asgName] })));
    const g = res.AutoScalingGroups?.[0];
    if (!g) throw new RolloutRefusedError(`no Auto Scaling group ${this.asgName}`, 'FLEET_ASG_NAME names the fleet\'s group (the CDK stack outputs it); check it and AWS_REGION');
    return g;
  }

  private markerOf(g: AutoScalingGroup): RolloutMarker | undefined {
    const decoded = decodeRolloutMarker(g.Tags?.find((t) => t.Key === ROLLOUT_TAG_KEY)?.Value);
    if (decoded.ok) return decoded.marker;
    if (decoded.problem === 'no rollout tag') return undefined;
    throw new RolloutRefusedError(`the group's rollout marker is malformed (${decoded.problem})`, `remove it: aws autoscaling delete-tags --tags ResourceId=${this.asgName},ResourceType=auto-scaling-group,Key=${ROLLOUT_TAG_KEY}`);
  }

  /** A version setting (`7`, `$Latest`, `$Default`) as the number EC2 resolves it to. */
  private async resolveVersion(templateId: string, version: string): Promise<string> {
    const res = await this.aws(`DescribeLaunchTemplateVersions ${templateId} ${version}`, () =>
      this.clients.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: templateId, Versions: [version] })),
    ).catch((err: unknown) => {
      const name = ((err as Error).cause as Error | undefined)?.name ?? '';
      if (/NotFound|InvalidLaunchTemplate/.test(name)) throw new RolloutRefusedError(`launch template ${templateId} has no version ${version}`, `list its versions: aws ec2 describe-launch-template-versions --launch-template-id ${templateId}`);
      throw err;
    });
    const n = res.LaunchTemplateVersions?.[0]?.VersionNumber;
    if (n === undefined) throw new RolloutRefusedError(`launch template ${templateId} has no version ${version}`, `list its versions: aws ec2 describe-launch-template-versions --launch-template-id ${templateId}`);
    return String(n);
  }

  private async setVersion(g: AutoScalingGroup, spec: LaunchTemplateSpecification, version: string): Promise<void> {
    const launchTemplate = { LaunchTemplateId: spec.LaunchTemplateId, Version: version };
    const input = g.MixedInstancesPolicy?.LaunchTemplate
      ? { AutoScalingGroupName: this.asgName, MixedInstancesPolicy: { LaunchTemplate: { LaunchTemplateSpecification: launchTemplate, Overrides: g.MixedInstancesPolicy.LaunchTemplate.Overrides } } }
      : { AutoScalingGroupName: this.asgName, LaunchTemplate: launchTemplate };
    await this.aws(`UpdateAutoScalingGroup ${this.asgName} to launch template version ${version}`, () => this.clients.autoscaling.send(new UpdateAutoScalingGroupCommand(input)));
  }

  /**
   * Points the group at `targetVersion` (default: the launch template's latest version) and
   * writes the marker. Running it again with the same target is a no-op that repairs a half-done
   * start; another target while a rollout is under way is refused (abort or finish it first).
   */
  async start(o: { targetVersion?: string; now?: Date } = {}): Promise<RolloutMarker> {
    if (o.targetVersion !== undefined && !/^[1-9][0-9]{0,9}$/.test(o.targetVersion)) {
      throw new RolloutRefusedError(`launch template version ${JSON.stringify(o.targetVersion)}: expected a version number such as 7`, 'give the number "aws ec2 describe-launch-template-versions" lists');
    }
    const g = await this.group();
    const spec = templateOf(g);
    if (!spec?.LaunchTemplateId && !spec?.LaunchTemplateName) throw new RolloutRefusedError(`group ${this.asgName} uses no launch template`, 'a rollout moves a group between launch template versions; this one uses a launch configuration');
    const templateId = spec.LaunchTemplateId ?? (await this.templateIdByName(spec.LaunchTemplateName!));
    const target = await this.resolveVersion(templateId, o.targetVersion ?? '$Latest');
    const existing = this.markerOf(g);
    if (existing && existing.target_version !== target) {
      throw new RolloutRefusedError(`a rollout to version ${existing.target_version} is under way (started ${existing.started_at})`, '"fleet rollout abort" goes back, "fleet rollout finish" ends it once no old instance is left; then start again');
    }
    const setting = spec.Version ?? '$Default';
    let previous = existing?.previous_version ?? setting;
    if (!existing && (await this.resolveVersion(templateId, setting)) === target) {
      // The group already launches the target (a deploy moved it): the old instances' version is what abort restores.
      const old = (g.Instances ?? []).map((i) => i.LaunchTemplate?.Version).filter((v): v is string => v !== undefined && v !== target);
      if (old.length === 0) throw new RolloutRefusedError(`every instance of ${this.asgName} already runs launch template version ${target}`, 'nothing to roll out; "fleet rollout status" shows the versions');
      previous = mostCommon(old);
    }
    if (!LAUNCH_TEMPLATE_VERSION_PATTERN.test(previous)) throw new RolloutRefusedError(`the group's version setting ${JSON.stringify(previous)} cannot be restored by an abort`, 'set the group to a version number, $Latest or $Default first');
    const marker: RolloutMarker = existing ?? { v: 1, launch_template_id: templateId, target_version: target, previous_version: previous, started_at: (o.now ?? new Date()).toISOString() };
    await this.setVersion(g, { ...spec, LaunchTemplateId: templateId }, target);
    await this.aws(`CreateOrUpdateTags ${ROLLOUT_TAG_KEY} on ${this.asgName}`, () =>
      this.clients.autoscaling.send(new CreateOrUpdateTagsCommand({ Tags: [{ ResourceId: this.asgName, ResourceType: 'auto-scaling-group', Key: ROLLOUT_TAG_KEY, Value: encodeRolloutMarker(marker), PropagateAtLaunch: false }] })),
    );
    return marker;
  }

  /** Restores the group's previous version, then removes the marker. */
  async abort(): Promise<RolloutMarker> {
    const g = await this.group();
    const marker = this.markerOf(g);
    if (!marker) throw new RolloutRefusedError(`no rollout is under way on ${this.asgName}`, '"fleet rollout status" shows the group\'s version and its instances');
    const spec = templateOf(g) ?? {};
    await this.setVersion(g, { ...spec, LaunchTemplateId: marker.launch_template_id }, marker.previous_version);
    await this.removeMarker();
    return marker;
  }

  /** Removes the marker once no old instance is left in the group (or at once with `force`). */
  async finish(o: { force?: boolean } = {}): Promise<{ marker: RolloutMarker; oldLeft: string[] }> {
    const status = await this.status();
    const marker = status.marker;
    if (!marker) throw new RolloutRefusedError(`no rollout is under way on ${this.asgName}`, '"fleet rollout status" shows the group\'s version and its instances');
    const oldLeft = status.instances.filter((i) => i.generation === 'old' && i.lifecycleState !== undefined).map((i) => i.instanceId);
    if (oldLeft.length > 0 && !o.force) {
      throw new RolloutRefusedError(`${oldLeft.length} old instance(s) are still in the group (${oldLeft.join(', ')}); finishing now would let them claim again`, 'wait until "fleet rollout status" shows none, or pass --force');
    }
    await this.removeMarker();
    return { marker, oldLeft };
  }

  private async removeMarker(): Promise<void> {
    await this.aws(`DeleteTags ${ROLLOUT_TAG_KEY} on ${this.asgName}`, () =>
      this.clients.autoscaling.send(new DeleteTagsCommand({ Tags: [{ ResourceId: this.asgName, ResourceType: 'auto-scaling-group', Key: ROLLOUT_TAG_KEY }] })),
    );
  }

  private async templateIdByName(name: string): Promise<string> {
    const res = await this.aws(`DescribeLaunchTemplateVersions ${name}`, () => this.clients.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: name, Versions: ['$Default'] })));
    const id = res.LaunchTemplateVersions?.[0]?.LaunchTemplateId;
    if (!id) throw new RolloutRefusedError(`no launch template ${name}`, 'check the group\'s launch template');
    return id;
  }

  /** Old and new instances (the group's members and fleetd's rows) and the tasks on old ones. */
  async status(): Promise<RolloutStatus> {
    const g = await this.group();
    const marker = this.markerOf(g);
    const list = this.fleet ? await this.fleet.listInstances() : { instances: [] as InstanceView[], warnings: [] };
    const rows = new Map(list.instances.map((i) => [i.instanceId, i]));
    const members = new Map((g.Instances ?? []).map((i) => [i.InstanceId!, i]));
    const ids = [...new Set([...members.keys(), ...[...rows.values()].filter((r) => r.status !== 'terminated').map((r) => r.instanceId)])].sort();
    const instances: RolloutInstance[] = ids.map((id) => {
      const row = rows.get(id);
      const m = members.get(id);
      // fleetd's row first: it is what the instance read from its own tags, what it acts on.
      const version = row?.launchTemplateVersion ?? m?.LaunchTemplate?.Version;
      const templateId = row?.launchTemplateId ?? m?.LaunchTemplate?.LaunchTemplateId;
      const generation = version === undefined ? 'unknown' : marker && decideRollout(marker, { launchTemplateId: templateId, launchTemplateVersion: version }).retire ? 'old' : 'new';
      return {
        instanceId: id,
        generation,
        ...(version !== undefined ? { launchTemplateVersion: version } : {}),
        status: row?.status ?? m?.LifecycleState ?? 'unknown',
        ...(m?.LifecycleState ? { lifecycleState: m.LifecycleState } : {}),
        running: row?.running ?? [],
      };
    });
    const tasksOnOld = instances.filter((i) => i.generation === 'old').flatMap((i) => i.running.map((taskId) => ({ taskId, instanceId: i.instanceId })));
    const oldInGroup = instances.some((i) => i.generation === 'old' && i.lifecycleState !== undefined);
    return { asgName: this.asgName, ...(marker ? { marker } : {}), groupVersion: templateOf(g)?.Version, instances, tasksOnOld, done: Boolean(marker) && !oldInGroup, warnings: list.warnings };
  }
}

function mostCommon(values: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || Number(b[0]) - Number(a[0]))[0][0];
}
