/**
 * Instance tag keys. Tags are for people and SSM targeting; the task record is the truth.
 * The prefix is configurable (default `bgagent`, ABCA's), the key suffixes are not.
 */
export const DEFAULT_TAG_PREFIX = 'bgagent';
export const TAG_PREFIX_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;

export const InstanceStatus = {
  /** Booting: preflight has not passed yet. Never advertised idle in this state. */
  BOOTING: 'booting',
  IDLE: 'idle',
  BUSY: 'busy',
  DRAINING: 'draining',
  /**
   * A rollout to another launch template version is under way: claims nothing new, finishes
   * what it runs, then terminates itself (contract/rollout.ts).
   */
  RETIRING: 'retiring',
  UNHEALTHY: 'unhealthy',
  /**
   * In the group's warm pool (target lifecycle state `Warmed:*`): prepared (preflight passed,
   * prepull images pulled), claims nothing; stopped or waiting to be put in service. A stale
   * heartbeat is expected while the instance is stopped in the pool (docs/lifecycle.md "Readiness").
   */
  WARM: 'warm',
} as const;
export type InstanceStatus = (typeof InstanceStatus)[keyof typeof InstanceStatus];

export interface TagKeys {
  /** `<prefix>:status`: one of InstanceStatus. Written by fleetd on its own instance only. */
  readonly status: string;
  /** `<prefix>:task-id`: the running task id(s), comma-separated; written by fleetd only. */
  readonly taskId: string;
  /** `<prefix>:fleet`: the fleet name, set by the launch template; fleetd never writes it. */
  readonly fleet: string;
}

export function tagKeys(prefix: string = DEFAULT_TAG_PREFIX): TagKeys {
  if (!TAG_PREFIX_PATTERN.test(prefix)) {
    throw new Error(`tag prefix: got ${JSON.stringify(prefix)}, expected ${TAG_PREFIX_PATTERN} (for example "bgagent")`);
  }
  if (prefix.toLowerCase() === 'aws') {
    // EC2 refuses tag keys starting with aws: in any letter case.
    throw new Error(`tag prefix: got ${JSON.stringify(prefix)}, expected another prefix: aws: tag keys are reserved for AWS`);
  }
  return { status: `${prefix}:status`, taskId: `${prefix}:task-id`, fleet: `${prefix}:fleet` };
}

/** The tags EC2 itself puts on an instance launched from a launch template (fleetd records them in its row). */
export const LAUNCH_TEMPLATE_TAGS = { id: 'aws:ec2launchtemplate:id', version: 'aws:ec2launchtemplate:version' } as const;

/** Container labels fleetd sets, used to find its containers again after a restart. */
export const CONTAINER_LABELS = {
  managedBy: 'agent-fleet.managed-by',
  taskId: 'agent-fleet.task-id',
  attempt: 'agent-fleet.attempt',
  instanceId: 'agent-fleet.instance-id',
} as const;
export const CONTAINER_LABEL_MANAGED_BY_VALUE = 'fleetd';
