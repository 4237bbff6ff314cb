/**
 * Compile-time proof (`npx tsc --noEmit -p tsconfig.json`; never run) that the fleet's adapter
 * is assignable, unchanged, to ABCA's ComputeStrategy as PR #32 and main declare it
 * (scripts/lib/abca/types-*.ts restate both). For main, with and without the two upstream type
 * edits docs/abca.md counts: without them it must NOT compile (@ts-expect-error).
 */
import { createFleetComputeStrategy, type Ec2ComputeStrategy } from '../../scripts/lib/abca-adapter';
import type * as Pr32 from '../../scripts/lib/abca/types-pr32';
import type * as Main from '../../scripts/lib/abca/types-main';

/** True only when A is assignable to B (checked without method bivariance). */
type Assignable<A, B> = [A] extends [B] ? true : false;
const yes = <T extends true>(): T => true as T;

// PR #32: the strategy as its resolveComputeStrategy would return it.
export const pr32: Pr32.ComputeStrategy = createFleetComputeStrategy();
// main with `ComputeType | 'ec2'` and PR #32's ec2 handle variant.
export const mainWithEc2: Main.ComputeStrategyWithEc2 = createFleetComputeStrategy();
// main untouched: `type` 'ec2' is not a ComputeType there, nor is the ec2 handle a SessionHandle.
// @ts-expect-error main without the two type edits cannot take an ec2 strategy
export const mainUntouched: Main.ComputeStrategy = createFleetComputeStrategy();

// Strict (contravariant) parameter checks: every input each version passes is accepted.
type StartInput = Parameters<Ec2ComputeStrategy['startSession']>[0];
type PollHandle = Parameters<Ec2ComputeStrategy['pollSession']>[0];
type StopHandle = Parameters<Ec2ComputeStrategy['stopSession']>[0];
yes<Assignable<Pr32.StartSessionInput, StartInput>>();
yes<Assignable<Main.StartSessionInput<Main.BlueprintConfigWithEc2>, StartInput>>();
yes<Assignable<Pr32.SessionHandle, PollHandle>>();
yes<Assignable<Pr32.SessionHandle, StopHandle>>();
yes<Assignable<Main.SessionHandleWithEc2, PollHandle>>();
// What it returns is exactly PR #32's ec2 variant and each version's SessionStatus.
type Handle = Awaited<ReturnType<Ec2ComputeStrategy['startSession']>>;
yes<Assignable<Handle, Extract<Pr32.SessionHandle, { strategyType: 'ec2' }>>>();
yes<Assignable<Extract<Pr32.SessionHandle, { strategyType: 'ec2' }>, Handle>>();
yes<Assignable<Awaited<ReturnType<Ec2ComputeStrategy['pollSession']>>, Pr32.SessionStatus>>();
yes<Assignable<Awaited<ReturnType<Ec2ComputeStrategy['pollSession']>>, Main.SessionStatus>>();
yes<Assignable<Awaited<ReturnType<Ec2ComputeStrategy['stopSession']>>, void>>();
