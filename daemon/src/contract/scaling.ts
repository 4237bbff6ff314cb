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
}

export function desiredCapacity(input: ScalingInput): number {
  const { visible, inFlight, slotsPerInstance, buffer, min, max } = input;
  const backlog = Math.max(0, visible) + Math.max(0, inFlight);
  const slots = Math.max(1, Math.floor(slotsPerInstance));
  const demand = backlog === 0 ? 0 : Math.ceil(backlog / slots) + Math.max(0, buffer);
  return Math.min(max, Math.max(min, demand));
}

/** The scaler's rule: never lower desired capacity (instances scale themselves in). */
export function nextDesiredCapacity(current: number, input: ScalingInput): number {
  return Math.max(current, desiredCapacity(input));
}
