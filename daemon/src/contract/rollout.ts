/**
 * The rollout marker (docs/operations.md "Rolling out a new launch template version"): a tag on
 * the Auto Scaling group, written by `fleet rollout start` and removed by `fleet rollout abort`
 * (or by `fleet rollout finish` once no old instance is left). fleetd reads it on a cadence and
 * compares the target version with its own instance's `aws:ec2launchtemplate:version`; an
 * instance of another version retires (fleetd-state.ts `retiring`): it claims nothing new,
 * finishes what it runs, then terminates itself.
 *
 * Decision: a group tag, not a row in the instances table nor an SSM parameter. The marker
 * describes the group and lives and dies with it; fleetd already reads the group
 * (DescribeAutoScalingGroups, for idle self-termination), so it needs no new permission; the
 * scaler reads the group on every tick and counts the retiring instances from the same answer;
 * and `fleet instances` (a scan of the instances table) stays a list of instances. The tag is
 * not propagated at launch (PropagateAtLaunch false).
 */
import * as z from 'zod';

/** The group tag holding the marker (a fixed key: the scaler reads it without the tag prefix). */
export const ROLLOUT_TAG_KEY = 'agent-fleet:rollout';

/** A launch template version as Auto Scaling names it: a number, `$Latest` or `$Default`. */
export const LAUNCH_TEMPLATE_VERSION_PATTERN = /^([1-9][0-9]{0,9}|\$Latest|\$Default)$/;

export const RolloutMarkerSchema = z
  .object({
    /** Marker format version. */
    v: z.literal(1),
    /** The launch template the group uses. */
    launch_template_id: z.string().regex(/^lt-[0-9a-f]{1,32}$/),
    /** The version every instance should run (a number: what the instance's tag carries). */
    target_version: z.string().regex(/^[1-9][0-9]{0,9}$/),
    /** The group's version setting before the rollout, which `fleet rollout abort` restores. */
    previous_version: z.string().regex(LAUNCH_TEMPLATE_VERSION_PATTERN),
    /** ISO 8601, when `fleet rollout start` ran. */
    started_at: z.string().datetime(),
  })
  .strict();
export type RolloutMarker = z.infer<typeof RolloutMarkerSchema>;

/** The tag value (compact JSON, well under Auto Scaling's 256 characters). */
export function encodeRolloutMarker(m: RolloutMarker): string {
  const value = JSON.stringify(RolloutMarkerSchema.parse(m));
  if (value.length > 256) throw new Error(`rollout marker: ${value.length} characters, expected at most 256`);
  return value;
}

export type DecodedRolloutMarker = { ok: true; marker: RolloutMarker } | { ok: false; problem: string };

/** The marker from the tag value; a malformed one is reported, never guessed at. */
export function decodeRolloutMarker(value: string | undefined): DecodedRolloutMarker {
  if (value === undefined) return { ok: false, problem: 'no rollout tag' };
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    return { ok: false, problem: `tag ${ROLLOUT_TAG_KEY} is not JSON: ${JSON.stringify(value.slice(0, 80))}` };
  }
  const parsed = RolloutMarkerSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, problem: `tag ${ROLLOUT_TAG_KEY}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ')}` };
  return { ok: true, marker: parsed.data };
}

/** What an instance should do about the marker (pure; fleetd's rollout watcher acts on it). */
export type RolloutDecision = { retire: false; why: string } | { retire: true; why: string };

/**
 * Retire when a rollout is under way, the instance was launched from the rollout's launch
 * template, and its version is not the target. An instance whose own version is unknown (its
 * tags could not be read) or that comes from another launch template keeps serving: retiring it
 * would be a guess, and the guess could empty the fleet.
 */
export function decideRollout(marker: RolloutMarker | undefined, own: { launchTemplateId?: string; launchTemplateVersion?: string }): RolloutDecision {
  if (!marker) return { retire: false, why: 'no rollout under way' };
  if (own.launchTemplateVersion === undefined) return { retire: false, why: 'this instance\'s launch template version is unknown: serving on' };
  if (own.launchTemplateId !== undefined && own.launchTemplateId !== marker.launch_template_id) {
    return { retire: false, why: `this instance comes from launch template ${own.launchTemplateId}, the rollout is of ${marker.launch_template_id}: serving on` };
  }
  if (own.launchTemplateVersion === marker.target_version) return { retire: false, why: `this instance runs the rollout's version ${marker.target_version}` };
  return { retire: true, why: `rollout to launch template version ${marker.target_version} (this instance runs ${own.launchTemplateVersion})` };
}

/** The group's instances that retire under this marker (the scaler counts them as no capacity). */
export function retiringInstances<I extends { LaunchTemplate?: { LaunchTemplateId?: string; Version?: string } }>(marker: RolloutMarker | undefined, instances: readonly I[]): I[] {
  return instances.filter((i) => decideRollout(marker, { launchTemplateId: i.LaunchTemplate?.LaunchTemplateId, launchTemplateVersion: i.LaunchTemplate?.Version }).retire);
}
