/**
 * What `fleet reconcile` and `fleet scale` need before any configuration is read: their help
 * text and the reconciler's flags, checked. No AWS client here: `fleet --help` and a usage
 * error load none (program.ts imports each command's module only when it runs).
 */
import { DEFAULT_TIMINGS, validateTimings, type Timings } from '../../daemon/src/contract/timings';
import { ReconcilerOptionsError, resolveReconcileOptions, type ReconcileOptions } from '../../infra/handlers/reconcile/decide';
import { UsageError } from './errors';
import { parseDuration } from './parse';

export const RECONCILE_HELP = `
What it does:
  One pass of the reconciler, the same code the scheduled reconciler Lambda runs every 2
  minutes: it reads every task that has not ended and repairs what no daemon will finish by
  itself. A QUEUED task whose message was lost (the submitter died between the record and the
  message) gets its message re-sent; an INTERRUPTED task whose release message was lost goes
  back to QUEUED with a new one; a task whose lease expired with no attempts left ends FAILED;
  a cancel whose daemon is gone ends CANCELLED. It then lists instances whose heartbeat stopped.
  Every repair is conditional on the record it read: a daemon that acts meanwhile wins, and
  the task is reported as "raced", not as an error. Resends are held to what the queue is
  short of, so a busy fleet's backlog is not duplicated. With FLEET_ABCA_TASK_TABLE set (the
  fleet is ABCA's ec2 compute), an ABCA task it ends is also marked FAILED in ABCA's TaskTable,
  with the reason, unless ABCA's record has ended already.

When to use it:
  After an incident (a queue, table or client outage), to repair at once instead of waiting
  for the schedule; on the local stack, which has no Lambdas. It acts: it is not a dry run.
  Running it while the Lambda runs is safe ("raced" and "deferred" in the report are normal).

  --lease and --heartbeat: give them when fleetd runs with timings other than the defaults
  (its config's timings.leaseSeconds, timings.heartbeatSeconds: 2m and 30s); the resend window
  must exceed the lease, or a message a daemon holds would be sent twice.

Exit codes: 0 the pass ran without errors; 1 it ran, but some reads or repairs failed (each
is listed; the next pass retries them); 2 usage; 4 AWS could not be reached.

Examples:
  $ fleet reconcile --once
  $ fleet reconcile --once --json | jq .resent
  $ fleet reconcile --once --lease 40s --heartbeat 4s --resend-after 1m`;

export const SCALE_HELP = `
What it does:
  One tick of the scaler, the same code the scheduled scaler Lambda runs every 10 s: it reads
  the queue (visible + in flight) and the Auto Scaling group, computes the desired capacity
  (ceil(backlog / slots per instance) + buffer, within the group's min and max), raises the
  group when that is above its desired capacity, and publishes the fleet's metrics. It never
  lowers capacity: each instance terminates itself once idle (docs/lifecycle.md).

When to use it:
  To see why a backlog is not served (the decision shows the numbers it used); to scale a
  fleet now, from zero, without waiting for the schedule; on the local stack, which has no
  Lambdas. It acts: a raise is applied. It needs FLEET_ASG_NAME and FLEET_NAME (the CDK stack outputs them; the local
  stack's .fleet/local.env has them); FLEETD_SLOTS (default 1) and FLEET_SCALING_BUFFER
  (default 0) as the scaler Lambda has them.

Exit codes: 0 the tick ran; 2 usage or configuration; 4 AWS could not be reached or refused.

Examples:
  $ fleet scale --once
  $ FLEETD_SLOTS=4 fleet scale --once --json | jq .desired`;

export interface ReconcileFlags {
  readonly resendAfter?: string;
  readonly lease?: string;
  readonly heartbeat?: string;
}

/** The reconciler's options from the command line, checked before any configuration is read. */
export function reconcileOptionsFromFlags(flags: ReconcileFlags): ReconcileOptions {
  let timings: Timings | undefined;
  if (flags.lease !== undefined || flags.heartbeat !== undefined) {
    timings = {
      ...DEFAULT_TIMINGS,
      ...(flags.lease !== undefined ? { leaseSeconds: parseDuration(flags.lease, '--lease') } : {}),
      ...(flags.heartbeat !== undefined ? { heartbeatSeconds: parseDuration(flags.heartbeat, '--heartbeat') } : {}),
    };
    const problems = validateTimings(timings);
    if (problems.length > 0) {
      throw new UsageError(`--lease / --heartbeat: ${problems.join('; ')}`, "give both as fleetd's config has them (timings.leaseSeconds, timings.heartbeatSeconds)");
    }
  }
  const options: ReconcileOptions = {
    ...(flags.resendAfter !== undefined ? { resendAfterMs: parseDuration(flags.resendAfter, '--resend-after') * 1000 } : {}),
    ...(timings ? { timings } : {}),
  };
  try {
    resolveReconcileOptions(options);
  } catch (err) {
    if (!(err instanceof ReconcilerOptionsError)) throw err;
    throw new UsageError(err.message, 'the resend window must exceed the lease: raise --resend-after, or give the fleet\'s own --lease and --heartbeat');
  }
  return options;
}
