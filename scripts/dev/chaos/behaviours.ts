/**
 * What each chaos task does, drawn from the seed: the demo agent's modes (DEMO_SLEEP_S,
 * DEMO_EXIT_CODE, DEMO_MODE) and argv overrides give every container misbehaviour the suite
 * injects; the driver adds the submit-side ones (lost enqueue, duplicate and delayed
 * deliveries) and the cancels, each aimed at one stage of the task's life.
 */
import type { TaskSpecInput, TaskStatus } from '../../../daemon/src/contract';
import { INJECTIONS } from './fuzz';
import type { Rng } from './rng';

export type CancelStage = 'queued' | 'claiming' | 'starting' | 'running' | 'finishing';

export const BEHAVIOURS = [
  'ok',
  'long',
  'exit',
  'crash',
  'oom',
  'hang',
  'ignore-term',
  'flood',
  'bad-result',
  'huge-result',
  'injection',
  'lost-enqueue',
  'duplicate',
  'cancel-queued',
  'cancel-claiming',
  'cancel-starting',
  'cancel-running',
  'cancel-finishing',
] as const;
export type Behaviour = (typeof BEHAVIOURS)[number];

/** Relative weights: mostly ordinary work, every misbehaviour present in a run of 100. */
const WEIGHTS: Record<Behaviour, number> = {
  ok: 20,
  long: 6,
  exit: 5,
  crash: 4,
  oom: 3,
  hang: 4,
  'ignore-term': 3,
  flood: 3,
  'bad-result': 3,
  'huge-result': 3,
  injection: 4,
  'lost-enqueue': 4,
  duplicate: 8,
  'cancel-queued': 3,
  'cancel-claiming': 3,
  'cancel-starting': 3,
  'cancel-running': 4,
  'cancel-finishing': 3,
};

export interface PlannedTask {
  readonly index: number;
  readonly behaviour: Behaviour;
  readonly spec: TaskSpecInput & Record<string, unknown>;
  /** Statuses this behaviour should end in when no fault hits it (informational). */
  readonly expected: readonly TaskStatus[];
  readonly cancelStage?: CancelStage;
  /** duplicate: extra deliveries with these DelaySeconds (reordering). */
  readonly extraDeliveries?: readonly number[];
  /** ms after the run start at which it is submitted. */
  readonly submitAtMs: number;
}

export function pickBehaviour(rng: Rng): Behaviour {
  const total = BEHAVIOURS.reduce((s, b) => s + WEIGHTS[b], 0);
  let r = rng.next() * total;
  for (const b of BEHAVIOURS) {
    r -= WEIGHTS[b];
    if (r < 0) return b;
  }
  return 'ok';
}

export function planTask(rng: Rng, index: number, image: string, submitAtMs: number, only?: readonly Behaviour[]): PlannedTask {
  const behaviour = only ? only[index % only.length] : pickBehaviour(rng);
  const base = { image, payload: { prompt: `chaos task ${index}` }, memory_mb: 96, cpus: 0.25, timeout_s: 120, labels: { chaos: behaviour } };
  const sleep = (s: number) => ({ DEMO_SLEEP_S: String(s) });
  const plan = (spec: Record<string, unknown>, expected: TaskStatus[], extra: Partial<PlannedTask> = {}): PlannedTask => ({
    index,
    behaviour,
    spec: { ...base, ...spec } as TaskSpecInput & Record<string, unknown>,
    expected,
    submitAtMs,
    ...extra,
  });
  switch (behaviour) {
    case 'ok':
    case 'lost-enqueue':
      return plan({ env: sleep(rng.int(1, 4)) }, ['COMPLETED']);
    case 'duplicate':
      return plan({ env: sleep(rng.int(2, 5)) }, ['COMPLETED'], { extraDeliveries: Array.from({ length: rng.int(1, 3) }, () => rng.int(0, 12)) });
    case 'long':
      // Longer than a lease: the heartbeat must keep extending the message's visibility.
      return plan({ env: sleep(rng.int(42, 50)) }, ['COMPLETED']);
    case 'exit':
      return plan({ env: { ...sleep(1), DEMO_EXIT_CODE: String(rng.int(1, 125)) } }, ['FAILED']);
    case 'crash':
      return plan({ command: ['sh', '-c', 'echo about to crash; kill -SEGV $$'] }, ['FAILED']);
    case 'oom':
      return plan({ env: { DEMO_MODE: 'oom' }, memory_mb: 64 }, ['FAILED']);
    case 'hang':
      return plan({ env: sleep(600), timeout_s: rng.int(3, 6) }, ['TIMED_OUT']);
    case 'ignore-term':
      return plan({ env: { ...sleep(600), DEMO_MODE: 'ignore-term' }, timeout_s: rng.int(3, 5) }, ['TIMED_OUT']);
    case 'flood':
      return plan({ command: ['sh', '-c', `yes "flood line to fill the log" | head -c ${rng.int(2, 8) * 1_000_000}; echo done`] }, ['COMPLETED']);
    case 'bad-result':
      return plan({ env: { ...sleep(1), DEMO_MODE: 'bad-result' } }, ['COMPLETED']);
    case 'huge-result':
      return plan({ env: { ...sleep(1), DEMO_MODE: 'huge-result' } }, ['COMPLETED']);
    case 'injection': {
      // Hostile but valid: free-form fields may hold anything; it must stay data (argv, env, JSON).
      const s = rng.pick(INJECTIONS);
      return plan({ command: ['echo', s], env: { CHAOS_VALUE: s }, payload: { prompt: s, [s]: s }, labels: { chaos: 'injection' } }, ['COMPLETED']);
    }
    case 'cancel-queued':
    case 'cancel-claiming':
    case 'cancel-starting':
    case 'cancel-running':
    case 'cancel-finishing': {
      const stage = behaviour.slice('cancel-'.length) as CancelStage;
      // finishing: a short task, cancelled close to its end; the rest run long enough to be caught.
      const env = stage === 'finishing' ? sleep(3) : sleep(rng.int(12, 20));
      return plan({ env }, stage === 'finishing' ? ['CANCELLED', 'COMPLETED'] : ['CANCELLED'], { cancelStage: stage });
    }
  }
}
