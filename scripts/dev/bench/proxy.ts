/**
 * Two small loopback proxies that let the bench see every external call one fleetd makes,
 * without touching fleetd: it is pointed at them through the standard AWS_ENDPOINT_URL and
 * DOCKER_HOST variables.
 *
 * - AwsProxy: an HTTP proxy in front of moto. Each request is recorded with the operation
 *   (service from the SigV4 credential scope, action from X-Amz-Target or the query-protocol
 *   `Action=`), its start and its end. Counting here, rather than with an SDK middleware inside
 *   fleetd, counts what AWS would bill and throttle: every HTTP request, SDK retries included.
 * - DockerTraceProxy: a byte pipe in front of dockerd's Unix socket that timestamps each
 *   request line and the status line of its response (FIFO per connection). Streams
 *   (attach, wait) pass through untouched.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';

export interface TracedCall {
  readonly op: string;
  readonly start: number;
  end?: number;
  status?: number;
}

/** Calls that started in [from, to), counted by operation. */
export function countCalls(calls: readonly TracedCall[], from: number, to: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of calls) if (c.start >= from && c.start < to) out[c.op] = (out[c.op] ?? 0) + 1;
  return out;
}

/** `ec2.CreateTags`, `dynamodb.TransactWriteItems`, `sqs.ReceiveMessage`, `s3.GET` ... */
export function awsOperation(headers: http.IncomingHttpHeaders, method: string, body: string): string {
  const auth = String(headers.authorization ?? '');
  const service = /\/([a-z0-9-]+)\/aws4_request/.exec(auth)?.[1] ?? 'unknown';
  const target = headers['x-amz-target'];
  if (typeof target === 'string' && target.includes('.')) return `${service}.${target.slice(target.lastIndexOf('.') + 1)}`;
  const action = /(?:^|&)Action=([A-Za-z0-9]+)/.exec(body)?.[1];
  return `${service}.${action ?? method}`;
}

export class AwsProxy {
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    readonly calls: TracedCall[],
    private readonly agent: http.Agent,
  ) {}

  static async start(target: string): Promise<AwsProxy> {
    const upstream = new URL(target);
    const calls: TracedCall[] = [];
    const agent = new http.Agent({ keepAlive: true });
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const call: TracedCall = { op: awsOperation(req.headers, req.method ?? 'GET', body.toString('utf8', 0, Math.min(body.length, 2048))), start: Date.now() };
        calls.push(call);
        const out = http.request(
          { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
          (up) => {
            call.status = up.statusCode;
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
            up.on('end', () => (call.end = Date.now()));
          },
        );
        out.on('error', (err) => {
          call.end = Date.now();
          call.status = 502;
          if (!res.headersSent) res.writeHead(502);
          res.end(String(err.message));
        });
        out.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    return new AwsProxy(server, `http://127.0.0.1:${port}`, calls, agent);
  }

  close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** `POST /containers/:id/start`, `GET /images/:name/json`, ... (API version and query dropped). */
export function dockerOperation(method: string, rawPath: string): string {
  const p = rawPath.split('?')[0].replace(/^\/v[0-9.]+/, '');
  const parts = p.split('/').filter(Boolean);
  if (parts[0] === 'containers' && parts.length >= 2 && !['create', 'json', 'prune'].includes(parts[1])) parts[1] = ':id';
  if (parts[0] === 'images' && parts.length >= 3 && parts[parts.length - 1] === 'json') return `${method} /images/:name/json`;
  return `${method} /${parts.join('/')}`;
}

const REQUEST_LINE = /(?:^|\r\n)(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP\/1\.[01]\r\n/g;
const STATUS_LINE = /(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g;

export class DockerTraceProxy {
  private constructor(
    private readonly server: net.Server,
    readonly socketPath: string,
    readonly calls: TracedCall[],
    private readonly sockets: Set<net.Socket>,
  ) {}

  static async start(upstreamSocket: string, socketPath: string): Promise<DockerTraceProxy> {
    fs.rmSync(socketPath, { force: true });
    const calls: TracedCall[] = [];
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
      const upstream = net.connect(upstreamSocket);
      const pending: TracedCall[] = [];
      sockets.add(client).add(upstream);
      client.on('data', (chunk: Buffer) => {
        const text = chunk.toString('latin1');
        for (const m of text.matchAll(REQUEST_LINE)) {
          const call: TracedCall = { op: dockerOperation(m[1], m[2]), start: Date.now() };
          pending.push(call);
          calls.push(call);
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (pending.length) {
          const text = chunk.toString('latin1', 0, Math.min(chunk.length, 4096));
          for (const m of text.matchAll(STATUS_LINE)) {
            const call = pending.shift();
            if (!call) break;
            call.end = Date.now();
            call.status = Number(m[1]);
          }
        }
        client.write(chunk);
      });
      const close = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('close', close).on('error', close);
      upstream.on('close', close).on('error', close);
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return new DockerTraceProxy(server, socketPath, calls, sockets);
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
