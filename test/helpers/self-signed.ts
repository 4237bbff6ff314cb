/**
 * A self-signed certificate for 127.0.0.1 made by openssl (argv, no shell) into `dir`, and an
 * HTTPS server on a free loopback port that serves with it: the TLS peer a trust-store test
 * needs. The certificate is its own CA, so a client trusts it only when told to.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

export interface SelfSigned {
  readonly certFile: string;
  readonly keyFile: string;
}

export function makeSelfSigned(dir: string): SelfSigned {
  const certFile = path.join(dir, 'server.pem');
  const keyFile = path.join(dir, 'server.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=agent-fleet test', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: 'pipe' });
  return { certFile, keyFile };
}

/** Starts an HTTPS server on 127.0.0.1 with the certificate; resolves with it and its base URL. */
export async function startHttpsServer(cert: SelfSigned, handler: http.RequestListener): Promise<{ server: https.Server; url: string }> {
  const server = https.createServer({ cert: fs.readFileSync(cert.certFile), key: fs.readFileSync(cert.keyFile) }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
