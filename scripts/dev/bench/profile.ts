/**
 * The fine profile of one dispatch: every AWS and Docker call one fleetd makes from enqueue to
 * "container gone", taken from the tracing proxies in front of moto and dockerd (fleetd itself
 * is not changed). Offsets are from the record's created_at. The proxies add a hop to every
 * call; that cost is measured here too and reported beside the profile.
 *
 * Part of `npm run bench` (5 samples on its idle daemon). Alone, against the local stack, on a
 * daemon of its own (BENCH_BUNDLE=path profiles another fleetd build, e.g. a base for an A/B):
 *   npx tsx scripts/dev/bench/profile.ts [samples, default 5]
 */
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import '../../../daemon/src/quiet-sdk-warning';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAwsClients } from '../../../daemon/src/aws';
import { dockerClient } from '../../../daemon/src/docker';
import { sleep } from '../../../daemon/src/retry';
import { FleetClient } from '../../lib/client';
import { stackEnv as localStackEnv } from '../harness/fleet';
import { provisionFleet } from '../local/provision';
import { EngineEvents, RawEngine } from './engine';
import { runOneTask, trivialSpec, type BenchContext, type BenchFleet, type TaskTimeline } from './fleet-task';
import { BenchDaemon, buildFleetdBundle } from './fleetd-process';
import { formatLoad, loadAverage } from './machine';
import { AwsProxy, DockerTraceProxy, type TracedCall } from './proxy';
import { runStandalone } from './standalone';
import { summarize, type Summary } from './stats';

/** What the n-th call of an operation does in fleetd's dispatch path (task-run.ts, lease.ts). */
const MEANING: Record<string, string> = {
  'sqs.ReceiveMessage #1': 'long poll that returns the message',
  'dynamodb.GetItem #1': 'claim: read the record',
  'dynamodb.TransactWriteItems #1': 'claim: conditional write + CLAIMED event',
  'ec2.CreateTags #1': 'tag instance busy (not awaited)',
  'dynamodb.PutItem #1': 'instance row busy (after the tags, not awaited)',
  'GET /images/:name/json #1': 'ensureImage: inspect',
  'POST /containers/create #1': 'create container',
  'dynamodb.TransactWriteItems #2': 'first heartbeat: RUNNING + event (before start)',
  'POST /containers/:id/attach #1': 'attach output streams',
  'POST /containers/:id/start #1': 'start container',
  'POST /containers/:id/wait #1': 'wait for exit',
  'GET /containers/:id/json #1': 'inspect exit facts',
  'dynamodb.TransactWriteItems #3': 'terminal write + COMPLETED event',
  'sqs.DeleteMessage #1': 'delete the message',
  'DELETE /containers/:id #1': 'remove container',
  'ec2.CreateTags #2': 'tag instance idle',
  'ec2.DeleteTags #1': 'drop task-id tag',
  'dynamodb.PutItem #2': 'instance row idle',
  'sqs.ReceiveMessage #2': 'next long poll',
};

export interface ProfileStep {
  readonly call: string;
  readonly meaning: string;
  readonly seenIn: number;
  readonly startMs: Summary;
  readonly endMs: Summary;
  readonly durationMs: Summary;
}

export interface ProfileResult {
  readonly samples: number;
  readonly timelines: TaskTimeline[];
  readonly steps: ProfileStep[];
  /** Enqueue → fleetd sends the container start request: the control plane's part of dispatch. */
  readonly toStartRequestMs: Summary;
  readonly proxyOverheadMs: { aws: number; docker: number; awsDirectMs: number; dockerDirectMs: number };
}

interface Offsets {
  start: number;
  end?: number;
}

/** Calls in flight during [from, to], keyed `op #k` in start order. */
function callsOf(calls: readonly TracedCall[], from: number, to: number): Map<string, Offsets> {
  const inWindow = calls.filter((c) => c.start <= to && (c.end ?? Number.POSITIVE_INFINITY) >= from).sort((a, b) => a.start - b.start);
  const seen = new Map<string, number>();
  const out = new Map<string, Offsets>();
  for (const c of inWindow) {
    const k = (seen.get(c.op) ?? 0) + 1;
    seen.set(c.op, k);
    out.set(`${c.op} #${k}`, { start: c.start - from, end: c.end === undefined ? undefined : c.end - from });
  }
  return out;
}

async function medianMs(fn: () => Promise<unknown>, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return summarize(times).median;
}

/** Median cost of one call direct and through each proxy (cheap calls, alternated). */
async function proxyOverhead(ctx: BenchContext, fleet: BenchFleet, aws: AwsProxy, docker: DockerTraceProxy): Promise<ProfileResult['proxyOverheadMs']> {
  const input = { QueueUrl: fleet.resources.queueUrl, AttributeNames: ['QueueArn' as const] };
  const direct = new SQSClient({ region: fleet.resources.region });
  const proxied = new SQSClient({ region: fleet.resources.region, endpoint: aws.url });
  const viaProxy = dockerClient(`unix://${docker.socketPath}`);
  const n = 15;
  const awsDirectMs = await medianMs(() => direct.send(new GetQueueAttributesCommand(input)), n);
  const awsProxiedMs = await medianMs(() => proxied.send(new GetQueueAttributesCommand(input)), n);
  const dockerDirectMs = await medianMs(() => ctx.docker.ping(), n);
  const dockerProxiedMs = await medianMs(() => viaProxy.ping(), n);
  direct.destroy();
  proxied.destroy();
  return { aws: awsProxiedMs - awsDirectMs, docker: dockerProxiedMs - dockerDirectMs, awsDirectMs, dockerDirectMs };
}

export async function profilePhase(ctx: BenchContext, fleet: BenchFleet, aws: AwsProxy, docker: DockerTraceProxy, samples: number): Promise<ProfileResult> {
  const spec = trivialSpec(ctx.demoImage);
  const timelines: TaskTimeline[] = [];
  const perSample: Array<Map<string, Offsets>> = [];
  for (let i = 0; i < samples; i++) {
    const t = await runOneTask(ctx, fleet, spec);
    await sleep(1500); // the idle tag writes after removal belong to the same dispatch
    timelines.push(t);
    const end = (t.engine.destroy ?? t.finishedAt ?? t.createdAt) + 1500;
    perSample.push(new Map([...callsOf(aws.calls, t.createdAt, end), ...callsOf(docker.calls, t.createdAt, end)]));
    ctx.say(`profile ${i + 1}/${samples}: ${perSample[i].size} calls traced`);
  }
  const keys = [...new Set(perSample.flatMap((m) => [...m.keys()]))];
  const steps = keys.map((call) => {
    const hits = perSample.map((m) => m.get(call)).filter((o): o is Offsets => o !== undefined);
    const ended = hits.filter((h) => h.end !== undefined);
    return {
      call,
      meaning: MEANING[call] ?? '',
      seenIn: hits.length,
      startMs: summarize(hits.map((h) => h.start)),
      endMs: summarize(ended.map((h) => h.end!)),
      durationMs: summarize(ended.map((h) => h.end! - h.start)),
    };
  });
  // The long poll started before the enqueue: order by when each call completes its part.
  steps.sort((a, b) => (Number.isFinite(a.endMs.median) && a.startMs.median < 0 ? a.endMs.median : a.startMs.median) - (Number.isFinite(b.endMs.median) && b.startMs.median < 0 ? b.endMs.median : b.startMs.median));
  const start = steps.find((s) => s.call === 'POST /containers/:id/start #1');
  return { samples, timelines, steps, toStartRequestMs: start?.startMs ?? summarize([]), proxyOverheadMs: await proxyOverhead(ctx, fleet, aws, docker) };
}

/** The profile alone: one 1-slot daemon behind both tracing proxies, `samples` dispatches. */
async function main(): Promise<void> {
  const samples = Number(process.argv[2] ?? 5);
  if (!Number.isInteger(samples) || samples < 1) throw new Error(`usage: profile.ts [samples]; got ${process.argv[2]}`);
  const bundlePath = process.env.BENCH_BUNDLE ?? (await buildFleetdBundle()).path;
  if (!fs.existsSync(bundlePath)) throw new Error(`BENCH_BUNDLE: ${bundlePath} does not exist`);
  const stackEnv = localStackEnv();
  const say = (line: string) => console.error(`[profile] ${line}`);
  const dockerSocket = stackEnv.DOCKER_HOST?.startsWith('unix://') ? stackEnv.DOCKER_HOST.slice('unix://'.length) : undefined;
  if (!dockerSocket) throw new Error(`the Docker trace proxy needs a unix socket DOCKER_HOST; got ${stackEnv.DOCKER_HOST}`);
  const docker = dockerClient(stackEnv.DOCKER_HOST);
  const clients = createAwsClients();
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-profile-'));
  const run = `prof${Date.now().toString(36)}`;
  const resources = await provisionFleet(clients, run, { instances: 1, minSize: 1, maxSize: 1 });
  const aws = await AwsProxy.start(stackEnv.AWS_ENDPOINT_URL);
  const dockerTrace = await DockerTraceProxy.start(dockerSocket, path.join(runDir, 'docker.sock'));
  const events = await EngineEvents.start(docker);
  // The SQS client sends each request to its QueueUrl's host: the queue URLs name the proxy too.
  const viaProxy = (url: string) => `${aws.url}${new URL(url).pathname}`;
  const daemon = new BenchDaemon({
    name: 'profile', fleet: { ...resources, queueUrl: viaProxy(resources.queueUrl), dlqUrl: viaProxy(resources.dlqUrl) }, instanceId: resources.instanceIds[0], slots: 1,
    stackEnv, bundlePath, runDir, awsEndpoint: aws.url, dockerHost: `unix://${dockerTrace.socketPath}`,
  });
  const ctx: BenchContext = { docker, events, raw: new RawEngine(docker, runDir, `${run}-raw`), demoImage: stackEnv.FLEET_LOCAL_DEMO_IMAGE, say };
  say(`load average ${formatLoad(loadAverage())}; fleetd ${bundlePath}`);
  try {
    await daemon.boot();
    await sleep(5000); // past the boot's own calls, as the bench's idle daemon is
    const result = await profilePhase(ctx, { resources, daemon, client: new FleetClient(clients, resources) }, aws, dockerTrace, samples);
    for (const s of result.steps) {
      console.log(`${s.call.padEnd(34)} seen ${s.seenIn}/${samples}  start ${s.startMs.median.toFixed(0).padStart(5)}  end ${Number.isFinite(s.endMs.median) ? s.endMs.median.toFixed(0).padStart(5) : '    —'} ms  ${s.meaning}`);
    }
    const t = result.toStartRequestMs;
    console.log(`enqueue → start request: median ${t.median.toFixed(0)} ms (${result.samples} samples; min ${t.min.toFixed(0)}, max ${t.max.toFixed(0)})`);
    console.log(`proxy hop: aws ${result.proxyOverheadMs.aws.toFixed(1)} ms, docker ${result.proxyOverheadMs.docker.toFixed(1)} ms; load average at end ${formatLoad(loadAverage())}`);
  } finally {
    await daemon.kill();
    events.close();
    await aws.close();
    await dockerTrace.close();
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone('profile', main);
