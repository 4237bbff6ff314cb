/**
 * `fleet` over HTTPS with NODE_EXTRA_CA_CERTS, run as a user runs it: bin/fleet.js through its
 * #! (sh first, which defers the variable; scripts/cli/deferred-ca.ts), against an HTTPS endpoint
 * that only a certificate in that file makes trusted: a TLS proxy with a self-signed certificate
 * in front of the local stack's moto. The read path (`status`, read-context.ts) and the full
 * client (`instances`, config.ts) must both trust it, and must refuse it without the variable.
 * With NODE_OPTIONS choosing another root store the launcher leaves the variable to node.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { FleetClient } from '../../scripts/lib/client';
import { PROJECT_ROOT } from '../../scripts/dev/local/paths';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';
import { makeSelfSigned, startHttpsServer, type SelfSigned } from '../helpers/self-signed';
import { runExecutable, type NodeRun } from '../helpers/run-node';

let fleet: TestFleet;
let dir: string;
let cert: SelfSigned;
let proxy: https.Server;
let proxyUrl: string;
let taskId: string;
let proxied = 0;

/** bin/fleet.js executed itself (its #! runs sh), as a shell would; `undefined` removes a variable. */
function fleetCommand(args: string[], env: Record<string, string | undefined>): Promise<NodeRun> {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...fleet.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  return runExecutable(path.join(PROJECT_ROOT, 'bin', 'fleet.js'), args, merged);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-cli-extra-ca-'));
  cert = makeSelfSigned(dir);
  fleet = await freshFleet();
  taskId = await new FleetClient(fleet.clients, fleet.resources).submitTaskRecordOnly({ image: fleet.demoImage, command: ['true'], memory_mb: 64, timeout_s: 60 });
  const moto = new URL(fleet.env.AWS_ENDPOINT_URL);
  // Every request, as sent, to moto over plain http (moto does not check signatures).
  ({ server: proxy, url: proxyUrl } = await startHttpsServer(cert, (req, res) => {
    proxied++;
    const upstream = http.request({ host: moto.hostname, port: moto.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  }));
}, 120_000);

afterAll(async () => {
  await new Promise((resolve) => proxy?.close(resolve));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('fleet over HTTPS with NODE_EXTRA_CA_CERTS deferred by bin/fleet.js', () => {
  it('trusts the file\'s certificate on the read path (status) and on the full client (instances)', async () => {
    const env = { AWS_ENDPOINT_URL: proxyUrl, NODE_EXTRA_CA_CERTS: cert.certFile };
    const before = proxied;
    const status = await fleetCommand(['status', taskId, '--json'], env);
    expect({ code: status.code, stderr: status.stderr }).toEqual({ code: 0, stderr: expect.not.stringMatching(/certificate|Warning/i) });
    expect(JSON.parse(status.stdout)).toMatchObject({ task_id: taskId, status: 'QUEUED' });
    const instances = await fleetCommand(['instances', '--json'], env);
    expect(instances.code).toBe(0);
    expect(proxied).toBeGreaterThanOrEqual(before + 2);
  }, 60_000);

  it('refuses the endpoint without the variable (so the trust above came from the deferred file)', async () => {
    const run = await fleetCommand(['status', taskId], { AWS_ENDPOINT_URL: proxyUrl, NODE_EXTRA_CA_CERTS: undefined });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/self-signed certificate|DEPTH_ZERO_SELF_SIGNED_CERT/);
  }, 60_000);

  it('defers the file (node never reads it for --help) unless NODE_OPTIONS picks another root store', async () => {
    const missing = path.join(dir, 'no-such-ca.pem');
    const deferred = await fleetCommand(['--help'], { NODE_EXTRA_CA_CERTS: missing });
    expect({ code: deferred.code, warned: /Ignoring extra certs/.test(deferred.stderr) }).toEqual({ code: 0, warned: false });
    const leftToNode = await fleetCommand(['--help'], { NODE_EXTRA_CA_CERTS: missing, NODE_OPTIONS: '--use-openssl-ca' });
    expect({ code: leftToNode.code, warned: leftToNode.stderr.includes(`Ignoring extra certs from \`${missing}\``) }).toEqual({ code: 0, warned: true });
  }, 60_000);
});
