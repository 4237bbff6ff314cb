/**
 * What sealing adds to a submit (issue 15): the client library's submit (PutItem of the record
 * with its SUBMITTED event, then SendMessage) with the seal (one KMS GenerateMac first) and
 * without it, in pairs whose order alternates, against the local stack's moto; and GenerateMac
 * alone. The submits go to a queue no daemon polls, so nothing runs.
 *
 * Part of `npm run bench` (bench.ts); alone, without fleetd or containers:
 *
 *   npx tsx scripts/dev/bench/submit-seal.ts [pairs]      (default 40; needs `npm run local -- up`)
 */
import '../../../daemon/src/quiet-sdk-warning';
import { createAwsClients, type AwsClients } from '../../../daemon/src/aws';
import { newTaskId, type TaskSpecInput } from '../../../daemon/src/contract';
import { SpecSealer } from '../../../daemon/src/seal';
import { FleetClient } from '../../lib/client';
import { provisionFleet, type FleetResources } from '../local/provision';
import { formatLoad, loadAverage } from './machine';
import { summarize, type Summary } from './stats';
import { runStandalone } from './standalone';
import { stackEnv as localStackEnv } from '../harness/fleet';

export interface SubmitSealResult {
  readonly pairs: number;
  /** One submit with the seal (GenerateMac + PutItem + SendMessage), ms. */
  readonly sealedMs: Summary;
  /** The same submit without a seal key, ms. */
  readonly unsealedMs: Summary;
  /** Per pair: sealed − unsealed, ms. */
  readonly addedMs: Summary;
  /** GenerateMac alone (SpecSealer.seal), ms. */
  readonly generateMacMs: Summary;
}

const SPEC: TaskSpecInput & Record<string, unknown> = { image: 'agent-fleet/demo-agent:latest', command: ['true'], env: { BENCH: 'submit-seal' }, payload: { note: 'a small inline payload' }, memory_mb: 64, timeout_s: 60 };

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** `pairs` sealed/unsealed submit pairs (order alternating) after 3 warm-up rounds, then as many GenerateMac calls. */
export async function submitSealPhase(clients: AwsClients, resources: FleetResources, pairs: number): Promise<SubmitSealResult> {
  if (!resources.sealKeyId) throw new Error('submit-seal: the fleet has no seal key');
  const sealed = new FleetClient(clients, resources);
  const unsealed = new FleetClient(clients, { ...resources, sealKeyId: undefined });
  const sealer = new SpecSealer(clients.kms, resources.sealKeyId);
  for (let i = 0; i < 3; i++) await Promise.all([sealed.submitTask(SPEC), unsealed.submitTask(SPEC), sealer.seal({ task_id: newTaskId(), spec: SPEC })]);
  const withSeal: number[] = [];
  const withoutSeal: number[] = [];
  const added: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const first = i % 2 === 0 ? sealed : unsealed;
    const second = first === sealed ? unsealed : sealed;
    const a = await timed(() => first.submitTask(SPEC));
    const b = await timed(() => second.submitTask(SPEC));
    const [s, u] = first === sealed ? [a, b] : [b, a];
    withSeal.push(s);
    withoutSeal.push(u);
    added.push(s - u);
  }
  const mac: number[] = [];
  for (let i = 0; i < pairs; i++) mac.push(await timed(() => sealer.seal({ task_id: newTaskId(), spec: SPEC, max_attempts: 3 })));
  return { pairs, sealedMs: summarize(withSeal), unsealedMs: summarize(withoutSeal), addedMs: summarize(added), generateMacMs: summarize(mac) };
}

export function renderSubmitSeal(r: SubmitSealResult): string {
  const f = (s: Summary) => `p50 ${s.median.toFixed(1)} ms · p95 ${s.p95.toFixed(1)} ms (n ${s.n}, min ${s.min.toFixed(1)}, max ${s.max.toFixed(1)})`;
  return [
    `submit with seal (GenerateMac + PutItem + SendMessage)   ${f(r.sealedMs)}`,
    `submit without seal (PutItem + SendMessage)              ${f(r.unsealedMs)}`,
    `added by the seal, per pair (sealed − unsealed)          ${f(r.addedMs)}`,
    `GenerateMac alone                                        ${f(r.generateMacMs)}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const pairs = Number(process.argv[2] ?? 40);
  if (!Number.isInteger(pairs) || pairs < 1) throw new Error(`pairs: got ${process.argv[2]}, expected a positive integer`);
  localStackEnv();
  const clients = createAwsClients();
  const fleet = await provisionFleet(clients, `sealbench${Date.now().toString(36)}`, { instances: 1, minSize: 1, maxSize: 1 });
  const before = formatLoad(loadAverage());
  const result = await submitSealPhase(clients, fleet, pairs);
  console.log(renderSubmitSeal(result));
  console.log(`load average before ${before}, after ${formatLoad(loadAverage())} (1/5/15 min)`);
}

if (require.main === module) runStandalone('submit-seal', main);
