/**
 * scripts/cli/deferred-ca.ts: NODE_EXTRA_CA_CERTS honoured at the CLI's first TLS connection.
 * Against a real TLS peer (a loopback HTTPS server with a self-signed certificate): the agent
 * trusts the deferred file, reads it only when it first connects, keeps the store it built, and
 * treats an unreadable file as node does (a warning, node's own store).
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFERRED_EXTRA_CA_ENV, ExtraCaHttpsAgent, takeDeferredExtraCa } from '../../scripts/cli/deferred-ca';
import { makeSelfSigned, startHttpsServer, type SelfSigned } from '../helpers/self-signed';

let dir: string;
let cert: SelfSigned;
let server: https.Server;
let url: string;

/** GET url through the agent: the body, or the TLS error's code. */
function get(agent: https.Agent): Promise<{ body: string } | { error: string }> {
  return new Promise((resolve) => {
    https
      .get(url, { agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ body }));
      })
      .on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-deferred-ca-'));
  cert = makeSelfSigned(dir);
  // `Connection: close`: every request opens a new TLS connection, so each one meets the store.
  ({ server, url } = await startHttpsServer(cert, (_req, res) => res.writeHead(200, { Connection: 'close' }).end('trusted')));
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('ExtraCaHttpsAgent', () => {
  it('is refused by node\'s own store (the peer is not trusted by default)', async () => {
    expect(await get(new https.Agent())).toEqual({ error: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });

  it('trusts the deferred file, read at the first connection and not before, and keeps the store it built', async () => {
    // Prepare: the file does not exist yet when the agent is made.
    const caFile = path.join(dir, 'lazy-ca.pem');
    const warnings: string[] = [];
    const agent = new ExtraCaHttpsAgent(caFile, (line) => warnings.push(line));
    fs.copyFileSync(cert.certFile, caFile);

    // Act
    const first = await get(agent);
    fs.rmSync(caFile);
    const second = await get(agent);

    // Assess: both connections verified (the second without the file: the store was kept).
    expect([first, second]).toEqual([{ body: 'trusted' }, { body: 'trusted' }]);
    expect(warnings).toEqual([]);
    agent.destroy();
  });

  it('warns in node\'s words about an unreadable file and falls back to node\'s own store', async () => {
    const missing = path.join(dir, 'no-such-ca.pem');
    const warnings: string[] = [];
    const agent = new ExtraCaHttpsAgent(missing, (line) => warnings.push(line));

    expect(await get(agent)).toEqual({ error: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`^Warning: Ignoring extra certs from \`${missing}\`, load failed: ENOENT`))]);
    agent.destroy();
  });
});

describe('takeDeferredExtraCa', () => {
  it('takes the deferred name out of the environment and gives NODE_EXTRA_CA_CERTS back to child processes', () => {
    const env: NodeJS.ProcessEnv = { [DEFERRED_EXTRA_CA_ENV]: '/etc/corp/ca.pem' };
    expect(takeDeferredExtraCa(env)).toBe('/etc/corp/ca.pem');
    expect(env).toEqual({ NODE_EXTRA_CA_CERTS: '/etc/corp/ca.pem' });
  });

  it('leaves an environment without the deferred name as it is', () => {
    const env: NodeJS.ProcessEnv = { NODE_EXTRA_CA_CERTS: '/already/loaded.pem' };
    takeDeferredExtraCa(env);
    expect(env).toEqual({ NODE_EXTRA_CA_CERTS: '/already/loaded.pem' });
  });
});
