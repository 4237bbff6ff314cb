/**
 * The rollout marker and the decisions taken from it (daemon/src/contract/rollout.ts,
 * daemon/src/rollout-watch.ts): the tag's encoding, who retires, the decrement, the cadence.
 */
import {
  ROLLOUT_TAG_KEY,
  decideRollout,
  decodeRolloutMarker,
  encodeRolloutMarker,
  retiringInstances,
  type RolloutMarker,
} from '../../daemon/src/contract';
import { readingOf, rolloutReadDelayMs, shouldDecrement } from '../../daemon/src/rollout-watch';

const MARKER: RolloutMarker = { v: 1, launch_template_id: 'lt-0abc123', target_version: '7', previous_version: '6', started_at: '2026-12-02T10:00:00.000Z' };

describe('rollout marker: the group tag', () => {
  it('round-trips through the tag value, within 256 characters', () => {
    // Act
    const value = encodeRolloutMarker(MARKER);
    const decoded = decodeRolloutMarker(value);

    // Assess
    expect(value.length).toBeLessThanOrEqual(256);
    expect(decoded).toEqual({ ok: true, marker: MARKER });
  });

  it('keeps $Latest / $Default as a previous version (what abort restores)', () => {
    // Assess
    expect(decodeRolloutMarker(encodeRolloutMarker({ ...MARKER, previous_version: '$Latest' }))).toMatchObject({ ok: true });
    expect(decodeRolloutMarker(encodeRolloutMarker({ ...MARKER, previous_version: '$Default' }))).toMatchObject({ ok: true });
  });

  it.each([
    ['not JSON', 'target=7', /is not JSON/],
    ['a symbolic target (instances carry numbers)', JSON.stringify({ ...MARKER, target_version: '$Latest' }), /target_version/],
    ['an unknown key', JSON.stringify({ ...MARKER, extra: 1 }), /Unrecognized key/i],
    ['another format version', JSON.stringify({ ...MARKER, v: 2 }), /v:/],
    ['a launch template id that is not one', JSON.stringify({ ...MARKER, launch_template_id: 'my-template' }), /launch_template_id/],
  ])('refuses %s, naming the problem', (_name, value, problem) => {
    // Act
    const decoded = decodeRolloutMarker(value);

    // Assess
    expect(decoded.ok).toBe(false);
    expect(!decoded.ok && decoded.problem).toMatch(problem);
    expect(!decoded.ok && decoded.problem).toContain(ROLLOUT_TAG_KEY);
  });

  it('no tag is no rollout', () => {
    // Assess
    expect(decodeRolloutMarker(undefined)).toEqual({ ok: false, problem: 'no rollout tag' });
  });
});

describe('rollout decision: who retires', () => {
  it.each<[string, RolloutMarker | undefined, { launchTemplateId?: string; launchTemplateVersion?: string }, boolean]>([
    ['no rollout', undefined, { launchTemplateId: 'lt-0abc123', launchTemplateVersion: '6' }, false],
    ['an old instance', MARKER, { launchTemplateId: 'lt-0abc123', launchTemplateVersion: '6' }, true],
    ['an instance newer than the target (a rollback)', MARKER, { launchTemplateId: 'lt-0abc123', launchTemplateVersion: '8' }, true],
    ['a new instance', MARKER, { launchTemplateId: 'lt-0abc123', launchTemplateVersion: '7' }, false],
    ['an unknown version: never a guess', MARKER, { launchTemplateId: 'lt-0abc123' }, false],
    ['another launch template', MARKER, { launchTemplateId: 'lt-0ffff', launchTemplateVersion: '6' }, false],
    ['an old instance whose template id is unknown', MARKER, { launchTemplateVersion: '6' }, true],
  ])('%s', (_name, marker, own, retire) => {
    // Act
    const d = decideRollout(marker, own);

    // Assess
    expect(d.retire).toBe(retire);
    expect(d.why.length).toBeGreaterThan(0);
  });

  it('the scaler counts the group members that retire', () => {
    // Prepare
    const members = [
      { InstanceId: 'i-1', LaunchTemplate: { LaunchTemplateId: 'lt-0abc123', Version: '6' } },
      { InstanceId: 'i-2', LaunchTemplate: { LaunchTemplateId: 'lt-0abc123', Version: '7' } },
      { InstanceId: 'i-3', LaunchTemplate: { LaunchTemplateId: 'lt-0abc123', Version: '6' } },
      { InstanceId: 'i-4' },
    ];

    // Act
    const retiring = retiringInstances(MARKER, members).map((i) => i.InstanceId);

    // Assess
    expect(retiring).toEqual(['i-1', 'i-3']);
    expect(retiringInstances(undefined, members)).toEqual([]);
  });
});

describe('rollout watch: the group reading', () => {
  it('reads the marker, min, desired and this instance\'s lifecycle state', () => {
    // Act
    const r = readingOf({ AutoScalingGroupName: 'g', MinSize: 1, MaxSize: 5, DesiredCapacity: 3, Tags: [{ Key: ROLLOUT_TAG_KEY, Value: encodeRolloutMarker(MARKER) }], Instances: [{ InstanceId: 'i-1', LifecycleState: 'InService' } as never], DefaultCooldown: 0, AvailabilityZones: [], HealthCheckType: 'EC2', CreatedTime: new Date() }, 'i-1');

    // Assess
    expect(r).toEqual({ marker: MARKER, minSize: 1, desiredCapacity: 3, memberState: 'InService' });
  });

  it('a malformed marker is a problem, not a rollout', () => {
    // Act
    const r = readingOf({ AutoScalingGroupName: 'g', MinSize: 0, MaxSize: 5, DesiredCapacity: 1, Tags: [{ Key: ROLLOUT_TAG_KEY, Value: '{' }], DefaultCooldown: 0, AvailabilityZones: [], HealthCheckType: 'EC2', CreatedTime: new Date() }, 'i-1');

    // Assess
    expect(r.marker).toBeUndefined();
    expect(r.problem).toMatch(/is not JSON/);
  });

  it.each([
    [1, 3, true],
    [1, 2, true],
    [1, 1, false],
    [0, 0, false],
  ])('min %i, desired %i: decrement %s (AWS refuses a decrement at MinSize; the group then replaces the instance with a new one)', (minSize, desiredCapacity, expected) => {
    // Assess
    expect(shouldDecrement({ minSize, desiredCapacity })).toBe(expected);
  });

  it('reads once per instance heartbeat, +0–10 % jitter and never less (at most 10 reads an hour by default)', () => {
    // Assess
    expect(rolloutReadDelayMs(360, () => 0)).toBe(360_000);
    expect(rolloutReadDelayMs(360, () => 0.5)).toBe(378_000);
    expect(rolloutReadDelayMs(360, () => 0.999)).toBe(395_964);
    expect(rolloutReadDelayMs(3, () => 0)).toBe(3_000);
  });
});
