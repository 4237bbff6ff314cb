/**
 * `npm run local -- up | down | status`: the local stack on this machine. `up` is idempotent:
 * each component is kept when it answers, started when absent, and reported in one line when
 * it runs but does not answer. `down` stops only what `up` started, by PID. The resulting
 * environment goes to one file (.fleet/local.env) that the CLI, the daemon and the tests read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createAwsClients } from '../../../daemon/src/aws';
import { dockerAnswers, dockerClient } from '../../../daemon/src/docker';
import { DOCKERD_MARKER, ensureDockerEngine, type DockerEngineState } from './docker-engine';
import { DEMO_IMAGE, ensureDemoImage, imageExists } from './demo-image';
import { ensureMoto, motoAnswers, MOTO_MARKER, type MotoState } from './moto';
import { ENV_FILE, FLEET_DIR, PROJECT_ROOT, STATE_FILE } from './paths';
import { freePort, httpOk, isOurProcess, logFile, spawnDetached, stopProcess, waitUntil } from './processes';
import { fleetEnvironment, provisionFleet, type FleetResources } from './provision';

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_FLEET = 'local';

export interface StackState {
  docker?: DockerEngineState;
  moto?: MotoState;
  imds?: { pid: number; url: string };
  ssmAgent?: { pid: number };
  /** Plays the intake's two Lambda event sources (intake queue, tasks stream) for the stack's fleet. */
  intakeRunner?: { pid: number };
  resources?: FleetResources;
}

const IMDS_SCRIPT = path.join(__dirname, 'imds-server.ts');
const SSM_AGENT_SCRIPT = path.join(__dirname, 'ssm-agent.ts');
const INTAKE_RUNNER_SCRIPT = path.join(__dirname, 'intake-runner.ts');
/**
 * What identifies each process in /proc/<pid>/cmdline: the script's path inside a checkout, not
 * its absolute path, so a stack brought up from one git worktree is recognised from another
 * that shares it (FLEET_LOCAL_DIR) instead of being started a second time next to it.
 */
const IMDS_MARKER = 'scripts/dev/local/imds-server.ts';
const SSM_AGENT_MARKER = 'scripts/dev/local/ssm-agent.ts';
const INTAKE_RUNNER_MARKER = 'scripts/dev/local/intake-runner.ts';

export function readState(): StackState {
  try {
    return JSON.parse(fs.readFileSync(STATE_FILE, 'utf8')) as StackState;
  } catch {
    return {};
  }
}

function writeState(state: StackState): void {
  fs.mkdirSync(FLEET_DIR, { recursive: true });
  fs.writeFileSync(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
}

/** The AWS SDK's standard variables pointing at the local stand-ins (moto accepts any keys). */
export function awsEnvironment(motoEndpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: motoEndpoint,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
}

function tsNodeArgs(script: string): string[] {
  return ['--require', require.resolve('tsx/cjs'), script];
}

export function stackEnvironment(state: Required<Pick<StackState, 'docker' | 'moto' | 'imds' | 'resources'>>): Record<string, string> {
  const r = state.resources;
  return {
    ...awsEnvironment(state.moto.endpoint),
    DOCKER_HOST: state.docker.host,
    // The default instance; a daemon acting as another instance uses `<url>/<instance-id>/`.
    AWS_EC2_METADATA_SERVICE_ENDPOINT: `${state.imds.url}/${r.instanceIds[0]}/`,
    FLEET_LOCAL_IMDS_URL: state.imds.url,
    FLEET_LOCAL_INSTANCES: r.instanceIds.join(','),
    FLEET_LOCAL_SECRET_ARN: r.demoSecretArn,
    FLEET_LOCAL_SECRET_ARN_PREFIX: r.secretArnPrefix,
    FLEET_LOCAL_DEMO_IMAGE: DEMO_IMAGE,
    ...fleetEnvironment(r),
  };
}

function writeEnvFile(env: Record<string, string>): void {
  const lines = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  fs.writeFileSync(ENV_FILE, `# written by "npm run local -- up"; read by fleet, fleetd and the tests\n${lines.join('\n')}\n`);
}

const say = (line: string) => console.error(`[local] ${line}`);

export async function up(): Promise<StackState> {
  const state = readState();
  const t0 = Date.now();

  state.docker = await ensureDockerEngine(state.docker);
  say(`docker engine: ${state.docker.host}${state.docker.pid ? ` (pid ${state.docker.pid}, ours)` : ' (external)'}`);

  state.moto = await ensureMoto(state.moto);
  say(`moto: ${state.moto.endpoint} (pid ${state.moto.pid}, ${state.moto.flavour})`);
  writeState(state);

  if (!(state.imds && isOurProcess(state.imds.pid, IMDS_MARKER) && (await httpOk(`${state.imds.url}/_health`)))) {
    if (state.imds && isOurProcess(state.imds.pid, IMDS_MARKER)) await stopProcess(state.imds.pid, IMDS_MARKER);
    const port = await freePort();
    const pid = spawnDetached('imds', process.execPath, tsNodeArgs(IMDS_SCRIPT), { ...process.env, IMDS_PORT: String(port), AWS_REGION: LOCAL_REGION });
    state.imds = { pid, url: `http://127.0.0.1:${port}` };
    await waitUntil(`the IMDS server (log: ${logFile('imds')})`, () => httpOk(`${state.imds!.url}/_health`), 30_000);
  }
  say(`imds: ${state.imds.url} (pid ${state.imds.pid})`);
  writeState(state);

  Object.assign(process.env, awsEnvironment(state.moto.endpoint));
  const clients = createAwsClients({ region: LOCAL_REGION });
  state.resources = await provisionFleet(clients, LOCAL_FLEET);
  say(`fleet "${LOCAL_FLEET}": queue, dead-letter queue, intake queue + DLQ, 3 tables (tasks with a stream), bucket, secret, cancel document, group ${state.resources.asgName} (${state.resources.instanceIds.join(', ')})`);
  writeState(state);

  if (!(state.ssmAgent && isOurProcess(state.ssmAgent.pid, SSM_AGENT_MARKER))) {
    const pid = spawnDetached('ssm-agent', process.execPath, tsNodeArgs(SSM_AGENT_SCRIPT), { ...process.env, ...awsEnvironment(state.moto.endpoint) });
    state.ssmAgent = { pid };
  }
  say(`ssm agent: polling ListCommands (pid ${state.ssmAgent.pid})`);

  if (!(state.intakeRunner && isOurProcess(state.intakeRunner.pid, INTAKE_RUNNER_MARKER))) {
    // The fleet's env (names, endpoint) as the Lambdas get it; it starts after the stream's retained records.
    const env = { ...process.env, ...awsEnvironment(state.moto.endpoint), ...fleetEnvironment(state.resources) };
    const pid = spawnDetached('intake-runner', process.execPath, [...tsNodeArgs(INTAKE_RUNNER_SCRIPT), '--from', 'latest'], env);
    state.intakeRunner = { pid };
  }
  say(`intake runner: intake queue → tasks, tasks stream → EventBridge + Step Functions (pid ${state.intakeRunner.pid})`);

  await ensureDemoImage(dockerClient(state.docker.host));
  say(`demo image: ${DEMO_IMAGE}`);

  writeState(state);
  writeEnvFile(stackEnvironment(state as Required<StackState>));
  say(`up in ${((Date.now() - t0) / 1000).toFixed(1)} s; environment in ${path.relative(PROJECT_ROOT, ENV_FILE)}`);
  return state;
}

export async function down(): Promise<void> {
  const state = readState();
  const stopped: string[] = [];
  if (await stopProcess(state.intakeRunner?.pid, INTAKE_RUNNER_MARKER)) stopped.push('intake runner');
  if (await stopProcess(state.ssmAgent?.pid, SSM_AGENT_MARKER)) stopped.push('ssm agent');
  if (await stopProcess(state.imds?.pid, IMDS_MARKER)) stopped.push('imds');
  if (await stopProcess(state.moto?.pid, MOTO_MARKER)) stopped.push('moto');
  if (await stopProcess(state.docker?.pid, DOCKERD_MARKER, 30_000)) stopped.push('dockerd');
  fs.rmSync(ENV_FILE, { force: true });
  writeState({});
  say(stopped.length ? `stopped ${stopped.join(', ')}` : 'nothing of ours was running');
}

export interface ComponentStatus {
  name: string;
  up: boolean;
  pid?: number;
  address?: string;
  note?: string;
  /** False for a component the tests start for themselves (jest's global setup does not bring the stack up for it). */
  neededByTests?: boolean;
}

export async function status(): Promise<{ components: ComponentStatus[]; resources?: FleetResources }> {
  const s = readState();
  const docker = s.docker ? await dockerAnswers(dockerClient(s.docker.host)) : false;
  const components: ComponentStatus[] = [
    { name: 'dockerd', up: docker, pid: s.docker?.pid, address: s.docker?.host, note: s.docker && !s.docker.pid ? 'external (DOCKER_HOST)' : undefined },
    { name: 'moto', up: s.moto ? await motoAnswers(s.moto.endpoint) : false, pid: s.moto?.pid, address: s.moto?.endpoint },
    { name: 'imds', up: s.imds ? await httpOk(`${s.imds.url}/_health`) : false, pid: s.imds?.pid, address: s.imds?.url },
    { name: 'ssm-agent', up: isOurProcess(s.ssmAgent?.pid, SSM_AGENT_MARKER), pid: s.ssmAgent?.pid, note: 'polls ListCommands' },
    { name: 'intake', up: isOurProcess(s.intakeRunner?.pid, INTAKE_RUNNER_MARKER), pid: s.intakeRunner?.pid, note: 'intake queue + tasks stream', neededByTests: false },
    { name: 'demo-image', up: docker && s.docker ? await imageExists(dockerClient(s.docker.host), DEMO_IMAGE) : false, address: DEMO_IMAGE },
  ];
  return { components, resources: s.resources };
}

/** For tests and the demo: the environment of a running stack, or undefined. */
export function readEnvFile(): Record<string, string> | undefined {
  if (!fs.existsSync(ENV_FILE)) return undefined;
  const env: Record<string, string> = {};
  for (const line of fs.readFileSync(ENV_FILE, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2];
  }
  return env;
}
