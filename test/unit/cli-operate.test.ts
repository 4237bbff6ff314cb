/**
 * The flags of `fleet reconcile --once` and `fleet scale --once`, checked before any fleet is
 * read: each mistake is a UsageError naming the flag or variable. The commands themselves run
 * against moto in test/integration/cli-operate.test.ts.
 */
import { DEFAULT_TIMINGS } from '../../daemon/src/contract';
import { UsageError } from '../../scripts/cli/errors';
import { reconcileOptionsFromFlags, scalerConfigForCli, type ReconcileFlags } from '../../scripts/cli/operate';

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('reconcileOptionsFromFlags', () => {
  it('gives no options without flags (the Lambda defaults)', () => {
    // Act / Assess
    expect(reconcileOptionsFromFlags({})).toEqual({});
  });

  it("takes the resend window and the fleet's timings", () => {
    // Prepare
    const flags: ReconcileFlags = { lease: '40s', heartbeat: '4s', resendAfter: '1m' };
    // Act
    const options = reconcileOptionsFromFlags(flags);
    // Assess
    expect(options).toEqual({ resendAfterMs: 60_000, timings: { ...DEFAULT_TIMINGS, leaseSeconds: 40, heartbeatSeconds: 4 } });
  });

  it.each<[string, ReconcileFlags, RegExp]>([
    ['a window within the default lease', { resendAfter: '2m' }, /resendAfterMs: got 120000, expected more than the lease \(120000 ms\)/],
    ['a window within a given lease', { lease: '10m', resendAfter: '5m' }, /resendAfterMs: got 300000, expected more than the lease \(600000 ms\)/],
    ['a lease shorter than two heartbeats', { lease: '40s' }, /--lease \/ --heartbeat: heartbeatSeconds \(30\) must be at most half of leaseSeconds \(40\)/],
    ['a duration that is not one', { resendAfter: 'soon' }, /--resend-after: got "soon"/],
    ['a zero heartbeat', { heartbeat: '0s' }, /--heartbeat: got "0s", expected a duration above zero/],
  ])('refuses %s', (_name, flags, message) => {
    // Act / Assess
    expect(usageMessage(() => reconcileOptionsFromFlags(flags))).toMatch(message);
  });
});

describe('scalerConfigForCli', () => {
  const env = { FLEET_NAME: 'prod', FLEET_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/q', FLEET_ASG_NAME: 'prod-asg', FLEET_TASKS_TABLE: 'prod-tasks' };

  it("reads the scaler Lambda's variables", () => {
    // Act / Assess
    expect(scalerConfigForCli({ ...env, FLEETD_SLOTS: '4' })).toMatchObject({ asgName: 'prod-asg', slotsPerInstance: 4, buffer: 0 });
  });

  it('names a missing group as a usage error', () => {
    // Act / Assess
    expect(usageMessage(() => scalerConfigForCli({ ...env, FLEET_ASG_NAME: undefined }))).toMatch(/FLEET_ASG_NAME is not set/);
  });
});
