/**
 * The chaos suite's AWS fault proxy: a plain HTTP proxy on loopback in front of moto. Daemons
 * reach AWS only through it (AWS_ENDPOINT_URL and their queue URLs point here), so every SDK
 * call they make can be refused, delayed, or answered with the error a real AWS region gives
 * under stress. Nothing inside fleetd knows it is there.
 *
 * Faults (one active at a time, each applied to a request with its `probability`, optionally
 * only to operations matching `ops`, e.g. /^sqs\.ChangeMessageVisibility$/):
 * - refuse:   the listening socket is closed (new connections get ECONNREFUSED) and open
 *             connections are destroyed; the same port is listened on again when it ends.
 * - latency:  the request is forwarded after `ms`.
 * - http500 / http503: an InternalFailure / ServiceUnavailable answer in the service's protocol.
 * - throttle: a 400 with the service's throttling error type (JSON `__type` + x-amzn-errortype,
 *             or the XML `<Code>`), which the SDK's retry strategy classifies as throttling.
 */
import * as http from 'node:http';
import type * as net from 'node:net';

export type FaultKind = 'refuse' | 'latency' | 'http500' | 'http503' | 'throttle';

export interface Fault {
  readonly kind: FaultKind;
  /** Share of matching requests affected. @default 1 */
  readonly probability?: number;
  /** Only operations (`service.Action`, see `awsOperation`) matching this are affected. */
  readonly ops?: RegExp;
  /** Added latency for `latency`. @default 1500 */
  readonly ms?: number;
}

export interface ProxyStats {
  requests: number;
  faulted: Record<string, number>;
  upstreamErrors: number;
}

/** `dynamodb.TransactWriteItems`, `sqs.ReceiveMessage`, `ec2.CreateTags`, `s3.GET` ... */
export function awsOperation(headers: http.IncomingHttpHeaders, method: string, body: string): string {
  const service = /\/([a-z0-9-]+)\/aws4_request/.exec(String(headers.authorization ?? ''))?.[1] ?? 'unknown';
  const target = headers['x-amz-target'];
  if (typeof target === 'string' && target.includes('.')) return `${service}.${target.slice(target.lastIndexOf('.') + 1)}`;
  return `${service}.${/(?:^|&)Action=([A-Za-z0-9]+)/.exec(body)?.[1] ?? method}`;
}

/** The error answer a service gives, in the protocol the request used (JSON or XML). */
export function errorAnswer(kind: 'http500' | 'http503' | 'throttle', headers: http.IncomingHttpHeaders): { status: number; headers: Record<string, string>; body: string } {
  const [status, code, message] =
    kind === 'throttle' ? [400, 'ThrottlingException', 'Rate exceeded (chaos fault proxy)'] : kind === 'http503' ? [503, 'ServiceUnavailable', 'Service unavailable (chaos fault proxy)'] : [500, 'InternalFailure', 'Internal failure (chaos fault proxy)'];
  if (typeof headers['x-amz-target'] === 'string') {
    return {
      status,
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': code, 'x-amzn-requestid': 'chaos' },
      body: JSON.stringify({ __type: code, message }),
    };
  }
  // Query (EC2, Auto Scaling) and REST-XML (S3) protocols: throttling is RequestLimitExceeded / SlowDown.
  const xmlCode = kind === 'throttle' ? 'Throttling' : code;
  return {
    status,
    headers: { 'content-type': 'text/xml' },
    body: `<?xml version="1.0" encoding="UTF-8"?><ErrorResponse><Error><Type>Receiver</Type><Code>${xmlCode}</Code><Message>${message}</Message></Error><RequestId>chaos</RequestId></ErrorResponse>`,
  };
}

export class FaultProxy {
  readonly stats: ProxyStats = { requests: 0, faulted: {}, upstreamErrors: 0 };
  private fault?: Fault;
  private server?: http.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private port = 0;

  constructor(
    private readonly upstream: string,
    private readonly random: () => number = Math.random,
  ) {}

  /** Base URL the daemons use instead of the upstream. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The upstream URL (e.g. a queue URL) rewritten to go through this proxy. */
  via(upstreamUrl: string): string {
    const u = new URL(upstreamUrl);
    return `${this.url}${u.pathname}${u.search}`;
  }

  get active(): Fault | undefined {
    return this.fault;
  }

  async start(): Promise<this> {
    await this.listen();
    return this;
  }

  /** Sets the fault (undefined clears it). `refuse` closes the port until cleared. */
  async set(fault: Fault | undefined): Promise<void> {
    const wasRefusing = this.fault?.kind === 'refuse';
    this.fault = fault;
    if (fault?.kind === 'refuse' && !wasRefusing) await this.closeListener();
    if (fault?.kind !== 'refuse' && wasRefusing) await this.listen();
  }

  /** The fault for `ms`, then none. */
  async inject(fault: Fault, ms: number, signal?: AbortSignal): Promise<void> {
    await this.set(fault);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
    await this.set(undefined);
  }

  async close(): Promise<void> {
    this.fault = undefined;
    await this.closeListener();
    this.agent.destroy();
  }

  private async listen(): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 5000;
    server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    // The same port again after a refuse window (the daemons' endpoint must not change).
    for (let tries = 0; ; tries++) {
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(this.port, '127.0.0.1', () => resolve());
        });
        break;
      } catch (err) {
        if (tries >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  private async closeListener(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private count(kind: string): void {
    this.stats.faulted[kind] = (this.stats.faulted[kind] ?? 0) + 1;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.stats.requests++;
      const body = Buffer.concat(chunks);
      const fault = this.fault;
      const op = fault?.ops ? awsOperation(req.headers, req.method ?? 'GET', body.toString('utf8', 0, Math.min(body.length, 2048))) : '';
      const hit = fault !== undefined && (!fault.ops || fault.ops.test(op)) && this.random() < (fault.probability ?? 1);
      if (hit && fault.kind === 'refuse') {
        // A connection that was open when the refusal began: reset it.
        this.count('refuse');
        req.socket.destroy();
        return;
      }
      if (hit && fault.kind !== 'latency') {
        const kind = fault.kind as Exclude<FaultKind, 'refuse' | 'latency'>;
        this.count(kind);
        const answer = errorAnswer(kind, req.headers);
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
        return;
      }
      const forward = () => this.forward(req, res, body);
      if (hit) {
        this.count('latency');
        setTimeout(forward, fault.ms ?? 1500);
      } else forward();
    });
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    const target = new URL(req.url ?? '/', this.upstream);
    const headers: http.OutgoingHttpHeaders = { ...req.headers, 'content-length': String(body.length) };
    delete headers['transfer-encoding'];
    const upstream = http.request(
      target,
      { method: req.method, headers, agent: this.agent },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      this.stats.upstreamErrors++;
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    upstream.end(body);
  }
}
