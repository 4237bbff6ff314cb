/**
 * moto's AWS server on loopback. Preferred: `moto_server` on PATH (the machine image's pyenv).
 * Fallback when absent: Debian's python3-moto, fetched with `apt-get download` from a private
 * sources list and unpacked with `dpkg -x` under .fleet/moto (Debian testing's python3-moto with its pure-Python dependencies; bookworm's Flask stack).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { aptInstall } from './docker-engine';
import { FLEET_DIR } from './paths';
import { freePort, httpOk, isOurProcess, logFile, spawnDetached, waitUntil } from './processes';

export interface MotoState {
  readonly pid: number;
  readonly port: number;
  readonly endpoint: string;
  /** `moto_server` or `debian-python3-moto`. */
  readonly flavour: string;
}

export const MOTO_MARKER = 'moto';
const FALLBACK_DIR = path.join(FLEET_DIR, 'moto');
const SID_PACKAGES = ['python3-moto', 'python3-boto3', 'python3-botocore', 'python3-s3transfer', 'python3-responses', 'python3-xmltodict', 'python3-antlr4'];
const BOOKWORM_PACKAGES = ['python3-flask', 'python3-flask-cors', 'python3-werkzeug', 'python3-jinja2', 'python3-requests', 'python3-dateutil', 'python3-jmespath', 'python3-urllib3', 'python3-yaml', 'python3-cryptography'];

export function motoAnswers(endpoint: string): Promise<boolean> {
  // `/moto-api/` is cheap; `data.json` dumps all state and slows down as tests add fleets.
  return httpOk(`${endpoint}/moto-api/`);
}

function findMotoServer(): string | undefined {
  if (process.env.FLEET_MOTO_FALLBACK === '1') return undefined;
  const which = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  const home = process.env.HOME ?? '/root';
  const shim = path.join(home, '.pyenv', 'shims', 'moto_server');
  return fs.existsSync(shim) ? shim : undefined;
}

/** moto's server with DynamoDB calls serialized (moto's transaction rollback can undo concurrent writes). */
const SERIALIZED_LAUNCHER = path.join(__dirname, 'moto-serialized.py');

/** The Python interpreter that runs `moto_server` (the pyenv shim's sibling), if it imports moto. */
function pythonWithMoto(binary: string): string | undefined {
  const candidate = path.join(path.dirname(binary), 'python3');
  if (!fs.existsSync(candidate)) return undefined;
  const probe = spawnSync(candidate, ['-c', 'import moto.server, moto.moto_server.werkzeug_app'], { encoding: 'utf8', timeout: 60_000 });
  return probe.status === 0 ? candidate : undefined;
}

/** Unpacks Debian's python3-moto and its pure-Python deps into .fleet/moto (once). */
function prepareDebianMoto(): string {
  const root = path.join(FALLBACK_DIR, 'root');
  const sitePackages = path.join(root, 'usr', 'lib', 'python3', 'dist-packages');
  if (fs.existsSync(path.join(sitePackages, 'moto', 'server.py'))) return sitePackages;
  aptInstall(BOOKWORM_PACKAGES);
  const aptDir = path.join(FALLBACK_DIR, 'apt');
  const debs = path.join(FALLBACK_DIR, 'debs');
  for (const d of [path.join(aptDir, 'lists', 'partial'), debs, root]) fs.mkdirSync(d, { recursive: true });
  const sources = path.join(aptDir, 'sources.list');
  fs.writeFileSync(sources, 'deb http://deb.debian.org/debian sid main\n');
  const aptOpts = [
    '-o', `Dir::Etc::SourceList=${sources}`,
    '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${path.join(aptDir, 'lists')}`,
    '-o', `Dir::Cache=${path.join(aptDir, 'cache')}`,
  ];
  const run = (cmd: string, args: string[], cwd?: string) => {
    const r = spawnSync(cmd, args, { stdio: 'inherit', cwd });
    if (r.status !== 0) throw new Error(`moto fallback: ${cmd} ${args.join(' ')} failed`);
  };
  run('apt-get', [...aptOpts, 'update', '-qq']);
  run('apt-get', [...aptOpts, 'download', ...SID_PACKAGES], debs);
  for (const deb of fs.readdirSync(debs).filter((f) => f.endsWith('.deb'))) run('dpkg', ['-x', path.join(debs, deb), root]);
  return sitePackages;
}

export async function ensureMoto(previous?: MotoState): Promise<MotoState> {
  if (previous && isOurProcess(previous.pid, MOTO_MARKER) && (await motoAnswers(previous.endpoint))) return previous;
  if (previous && isOurProcess(previous.pid, MOTO_MARKER)) {
    throw new Error(`moto (pid ${previous.pid}) runs but does not answer on ${previous.endpoint}; see ${logFile('moto')} or run "npm run local -- down"`);
  }
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const binary = findMotoServer();
  let pid: number;
  let flavour: string;
  const args = ['-H', '127.0.0.1', '-p', String(port)];
  const python = binary ? pythonWithMoto(binary) : undefined;
  if (python) {
    // The same moto, started through SERIALIZED_LAUNCHER (see its docstring for why).
    pid = spawnDetached('moto', python, [SERIALIZED_LAUNCHER, ...args]);
    flavour = 'moto_server';
  } else if (binary) {
    console.warn(`moto: no Python next to ${binary} imports moto; starting moto_server itself, without serialized DynamoDB calls (see ${SERIALIZED_LAUNCHER})`);
    pid = spawnDetached('moto', binary, args);
    flavour = 'moto_server';
  } else {
    const sitePackages = prepareDebianMoto();
    pid = spawnDetached('moto', '/usr/bin/python3', [SERIALIZED_LAUNCHER, ...args], {
      ...process.env,
      PYTHONPATH: sitePackages,
    });
    flavour = 'debian-python3-moto';
  }
  await waitUntil(`moto to answer on ${endpoint} (log: ${logFile('moto')})`, () => motoAnswers(endpoint), 60_000, 200);
  return { pid, port, endpoint, flavour };
}
