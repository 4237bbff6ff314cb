/**
 * A small IMDSv2 server for the local stack and tests. It answers for any number of local
 * instances: `/<instance-id>/latest/...` answers as that instance, `/latest/...` as the default
 * one. Tests flip the spot `instance-action` and `autoscaling/target-lifecycle-state` answers
 * through `PUT /_control/<instance-id>` (no token: it is not part of IMDS).
 *
 * Like the real service: a token from `PUT /latest/api/token` is required on every GET,
 * unknown paths are 404, and the spot notice is 404 until one is set. `ami-id` answers
 * LOCAL_AMI_ID (or a test's override); `tags/instance/...` is 404, as on a launch template
 * without instance metadata tags, so fleetd reads its launch template with DescribeTags.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';

export interface InstanceOverrides {
  /** Spot interruption notice, e.g. { action: 'terminate', time: ISO }; null clears it. */
  spotAction?: { action: string; time: string } | null;
  /** `InService` (default), `Terminated`, `Warmed:...`. */
  lifecycleState?: string;
  /** The `ami-id` answer (default: the server's `amiId`). */
  amiId?: string;
}

export interface ImdsServerOptions {
  readonly port?: number;
  readonly host?: string;
  readonly region: string;
  readonly availabilityZone: string;
  readonly defaultInstanceId: string;
  /** What `ami-id` answers when a test set none. @default LOCAL_AMI_ID */
  readonly amiId?: string;
}

/** The local stand-in's AMI id (no AMI exists locally; a test may set the moto instance's own). */
export const LOCAL_AMI_ID = 'ami-00000000000000000';

export interface ImdsServer {
  readonly url: string;
  /** Base URL that answers as `instanceId` (use as AWS_EC2_METADATA_SERVICE_ENDPOINT). */
  endpointFor(instanceId: string): string;
  setOverrides(instanceId: string, overrides: InstanceOverrides): void;
  close(): Promise<void>;
}

const INSTANCE_PREFIX = /^\/(i-[0-9a-f]{8,17})(\/latest\/.*)$/;

export async function startImdsServer(options: ImdsServerOptions): Promise<ImdsServer> {
  const tokens = new Map<string, number>();
  const overrides = new Map<string, InstanceOverrides>();

  const answer = (instanceId: string, p: string): string | undefined => {
    const o = overrides.get(instanceId) ?? {};
    switch (p) {
      case '/latest/meta-data/instance-id':
        return instanceId;
      case '/latest/meta-data/placement/region':
        return options.region;
      case '/latest/meta-data/placement/availability-zone':
        return options.availabilityZone;
      case '/latest/meta-data/instance-type':
        return 'local.fleet';
      case '/latest/meta-data/ami-id':
        return o.amiId ?? options.amiId ?? LOCAL_AMI_ID;
      case '/latest/dynamic/instance-identity/document':
        return JSON.stringify({ instanceId, region: options.region, availabilityZone: options.availabilityZone, instanceType: 'local.fleet' });
      case '/latest/meta-data/spot/instance-action':
        return o.spotAction ? JSON.stringify(o.spotAction) : undefined;
      case '/latest/meta-data/autoscaling/target-lifecycle-state':
        return o.lifecycleState ?? 'InService';
      default:
        return undefined;
    }
  };

  const server = http.createServer((req, res) => {
    const send = (status: number, body = '') => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(body);
    };
    const url = new URL(req.url ?? '/', 'http://imds');
    if (url.pathname === '/_health') return send(200, 'ok');
    let instanceId = options.defaultInstanceId;
    let p = url.pathname;
    const m = INSTANCE_PREFIX.exec(p);
    if (m) {
      instanceId = m[1];
      p = m[2];
    }
    if (url.pathname.startsWith('/_control/') && req.method === 'PUT') {
      const id = url.pathname.slice('/_control/'.length);
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        try {
          overrides.set(id, { ...overrides.get(id), ...(JSON.parse(body) as InstanceOverrides) });
          send(200, 'ok');
        } catch (err) {
          send(400, (err as Error).message);
        }
      });
      return;
    }
    if (p === '/latest/api/token' && req.method === 'PUT') {
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return send(400, 'missing or invalid X-aws-ec2-metadata-token-ttl-seconds');
      const token = randomBytes(24).toString('base64url');
      tokens.set(token, Date.now() + ttl * 1000);
      return send(200, token);
    }
    if (req.method !== 'GET') return send(405);
    const token = req.headers['x-aws-ec2-metadata-token'];
    const expiry = typeof token === 'string' ? tokens.get(token) : undefined;
    if (!expiry || expiry < Date.now()) return send(401);
    const body = answer(instanceId, p);
    return body === undefined ? send(404, 'Not Found') : send(200, body);
  });

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const addr = server.address();
  if (typeof addr !== 'object' || !addr) throw new Error('IMDS server has no address');
  const url = `http://${options.host ?? '127.0.0.1'}:${addr.port}`;
  return {
    url,
    endpointFor: (instanceId) => `${url}/${instanceId}/`,
    setOverrides: (instanceId, o) => overrides.set(instanceId, { ...overrides.get(instanceId), ...o }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Flip the answers of a running IMDS server (tests, `fleet` local tooling). */
export async function setImdsOverrides(imdsUrl: string, instanceId: string, overrides: InstanceOverrides): Promise<void> {
  const res = await fetch(`${imdsUrl}/_control/${instanceId}`, { method: 'PUT', body: JSON.stringify(overrides) });
  if (!res.ok) throw new Error(`IMDS control: HTTP ${res.status} ${await res.text()}`);
}

if (require.main === module) {
  const port = Number(process.env.IMDS_PORT ?? 0);
  startImdsServer({
    port,
    region: process.env.AWS_REGION ?? 'us-east-1',
    availabilityZone: process.env.IMDS_AZ ?? `${process.env.AWS_REGION ?? 'us-east-1'}a`,
    defaultInstanceId: process.env.IMDS_DEFAULT_INSTANCE ?? 'i-00000000000000000',
    amiId: process.env.IMDS_AMI_ID,
  }).then(
    (s) => console.log(JSON.stringify({ msg: 'imds listening', url: s.url })),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
