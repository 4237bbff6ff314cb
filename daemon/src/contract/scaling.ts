/**
 * The scaling decision, as a pure function: desired = clamp(ceil(backlog / slots) + buffer,
 * min, max). The scaler only ever raises desired capacity with it; scale-in is each instance's
 * own idle self-termination.
 */
export interface ScalingInput {
  /** ApproximateNumberOfMessages on the task queue. */
  readonly visible: number;
  /** ApproximateNumberOfMessagesNotVisible: tasks being run (or claimed). */
  readonly inFlight: number;
  readonly slotsPerInstance: number;
  /** Extra warm instances kept above demand while there is any demand. */
  readonly buffer: number;
  readonly min: number;
  readonly max: number;
  /**
   * Instances retiring in a rollout (contract/rollout.ts): they finish the tasks they hold but
   * take no new one. @default 0
   */
  readonly retiring?: number;
}

/**
 * With instances retiring, each is counted as one instance holding up to a full set of slots of
 * the in-flight tasks, and new instances are sized for the rest: retiring + ceil((visible +
 * max(0, inFlight - retiring × slots)) / slots) + buffer. Queued tasks always count in full, so
 * a queue behind half-empty retiring instances still gets new ones; tasks on retiring instances
 * never do, so a long rollout does not launch instances that would idle and leave, again and
 * again. With none retiring this is ceil(backlog / slots) + buffer.
 */
export function desiredCapacity(input: ScalingInput): number {
  const { visible, inFlight, slotsPerInstance, buffer, min, max } = input;
  const backlog = Math.max(0, visible) + Math.max(0, inFlight);
  const slots = Math.max(1, Math.floor(slotsPerInstance));
  const retiring = Math.max(0, Math.floor(input.retiring ?? 0));
  const forNew = Math.max(0, visible) + Math.max(0, Math.max(0, inFlight) - retiring * slots);
  const demand = backlog === 0 ? 0 : retiring + Math.ceil(forNew / slots) + Math.max(0, buffer);
  return Math.min(max, Math.max(min, demand));
}

/** The scaler's rule: never lower desired capacity (instances scale themselves in). */
export function nextDesiredCapacity(current: number, input: ScalingInput): number {
  return Math.max(current, desiredCapacity(input));
}
