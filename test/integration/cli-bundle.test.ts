/**
 * The standalone CLI bundle (`npm run bundle`'s fleet.mjs) against the local stack: `fleet status`
 * and `fleet list` run from fleet-read.cjs with a V8 code cache (scripts/cli/code-cache.ts) and
 * must answer exactly as the checkout's `fleet` (bin/fleet.js, the TypeScript sources) does, on
 * the first run (cache written after it), the next (cache used) and with FLEET_NO_CODE_CACHE=1;
 * paging with --cursor included. `--help` and errors never write a cache.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI_ENTRIES, bundle } from '../../scripts/bundle';
import { FleetClient } from '../../scripts/lib/client';
import { PROJECT_ROOT } from '../../scripts/dev/local/paths';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';
import { runExecutable, runNode, type NodeRun } from '../helpers/run-node';

let fleet: TestFleet;
let dir: string;
let cacheHome: string;
const taskIds: string[] = [];

function exec(bin: string, args: string[], env: Record<string, string> = {}): Promise<NodeRun> {
  return runNode(bin, args, { ...process.env, ...fleet.env, XDG_CACHE_HOME: cacheHome, ...env });
}

const bundled = (args: string[], env?: Record<string, string>) => exec(path.join(dir, 'fleet.mjs'), args, env);
const checkout = (args: string[]) => exec(path.join(PROJECT_ROOT, 'bin', 'fleet.js'), args);
/** The cache files there are, by command (`fleet-status-<key>.v8cache` → `fleet-status`). */
const cacheFiles = () => (fs.existsSync(path.join(cacheHome, 'agent-fleet')) ? fs.readdirSync(path.join(cacheHome, 'agent-fleet')).map((f) => f.replace(/-[0-9a-f]{16}\.v8cache$/, '')).sort() : []);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-cli-bundle-'));
  cacheHome = path.join(dir, 'cache-home');
  [fleet] = await Promise.all([freshFleet(), bundle(CLI_ENTRIES, dir)]);
  const client = new FleetClient(fleet.clients, fleet.resources);
  for (let i = 0; i < 3; i++) {
    taskIds.push(await client.submitTaskRecordOnly({ image: fleet.demoImage, command: ['true'], env: { N: String(i) }, memory_mb: 64, timeout_s: 60 }));
  }
}, 180_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the standalone CLI bundle', () => {
  it('answers --help, each read command\'s help and errors as the checkout does, without writing a cache', async () => {
    const help = await bundled(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: fleet');
    const missing = await bundled(['status', 't-00000000000000000000000000']);
    expect({ code: missing.code, stderr: missing.stderr }).toEqual({ code: 3, stderr: (await checkout(['status', 't-00000000000000000000000000'])).stderr });
    for (const command of ['status', 'list']) {
      const [ownHelp, checkoutHelp] = await Promise.all([bundled([command, '--help']), checkout([command, '--help'])]);
      expect({ code: ownHelp.code, stdout: ownHelp.stdout }).toEqual({ code: 0, stdout: checkoutHelp.stdout });
    }
    const usage = await bundled(['list', '--limit', '0']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe((await checkout(['list', '--limit', '0'])).stderr);
    expect(cacheFiles()).toEqual([]);
  });

  it('runs fleet status as the checkout does: first run writes the cache, the next uses it, the opt-out skips it', async () => {
    const expected = await checkout(['status', taskIds[0], '--json']);
    expect(expected.code).toBe(0);
    const first = await bundled(['status', taskIds[0], '--json'], { FLEET_DEBUG: '1' });
    expect(first.stderr).toMatch(/code cache: no cache yet/);
    expect(cacheFiles()).toEqual(['fleet-status']);
    const second = await bundled(['status', taskIds[0], '--json'], { FLEET_DEBUG: '1' });
    expect(second.stderr).toMatch(/code cache: using .*fleet-status-[0-9a-f]{16}\.v8cache/);
    const optOut = await bundled(['status', taskIds[0], '--json'], { FLEET_DEBUG: '1', FLEET_NO_CODE_CACHE: '1' });
    expect(optOut.stderr).toMatch(/code cache: off \(FLEET_NO_CODE_CACHE=1\)/);
    for (const run of [first, second, optOut]) expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 0, stdout: expected.stdout });
  });

  it('runs from its own launcher (dist/bundle/fleet, sh then node) as from fleet.mjs, with NODE_EXTRA_CA_CERTS left to the first TLS connection', async () => {
    const env = { ...process.env, ...fleet.env, XDG_CACHE_HOME: cacheHome };
    const [viaLauncher, viaNode] = await Promise.all([runExecutable(path.join(dir, 'fleet'), ['status', taskIds[1], '--json'], env), bundled(['status', taskIds[1], '--json'])]);
    expect({ code: viaLauncher.code, stdout: viaLauncher.stdout }).toEqual({ code: 0, stdout: viaNode.stdout });
    // Node would warn at its start about an unreadable file; the launcher hands node none, and --help opens no TLS connection.
    const help = await runExecutable(path.join(dir, 'fleet'), ['--help'], { ...env, NODE_EXTRA_CA_CERTS: path.join(dir, 'no-such-ca.pem') });
    expect({ code: help.code, usage: help.stdout.includes('Usage: fleet'), warned: /Ignoring extra certs/.test(help.stderr) }).toEqual({ code: 0, usage: true, warned: false });
  });

  it('pages fleet list as the checkout does, cached or not', async () => {
    const expected = await checkout(['list', '--limit', '2', '--json']);
    const page = JSON.parse(expected.stdout) as { tasks: Array<{ task_id: string }>; next_cursor: string | null };
    expect(page.tasks.map((t) => t.task_id)).toEqual([taskIds[2], taskIds[1]]);
    expect(page.next_cursor).not.toBeNull();
    const runs = [await bundled(['list', '--limit', '2', '--json']), await bundled(['list', '--limit', '2', '--json']), await bundled(['list', '--limit', '2', '--json'], { FLEET_NO_CODE_CACHE: '1' })];
    for (const run of runs) expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 0, stdout: expected.stdout });
    expect(cacheFiles()).toEqual(['fleet-list', 'fleet-status']);

    const next = ['list', '--limit', '2', '--cursor', page.next_cursor!, '--json'];
    const [nextBundled, nextCheckout] = await Promise.all([bundled(next), checkout(next)]);
    expect(nextBundled.stdout).toBe(nextCheckout.stdout);
    expect((JSON.parse(nextBundled.stdout) as { tasks: Array<{ task_id: string }> }).tasks.map((t) => t.task_id)).toEqual([taskIds[0]]);
  });
});
