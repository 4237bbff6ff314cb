/**
 * A Unix-socket proxy in front of the shared Docker engine, so a test can make "the engine"
 * unreachable for one fleetd without stopping the real dockerd other tests use:
 *   - `down()`: every open connection is cut and the socket refuses new ones (ECONNREFUSED /
 *     ENOENT), as when dockerd stops or restarts; containers keep running, as with live-restore;
 *   - `up()`: answers again;
 *   - `dropNext(pattern)`: the next request whose request line matches is cut (socket hang up);
 *   - `failNext(pattern, status, message)`: the next matching request gets that error answer.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export class EngineProxy {
  readonly socketPath: string;
  private server?: net.Server;
  private readonly open = new Set<net.Socket>();
  private drops: RegExp[] = [];
  private failures: Array<{ pattern: RegExp; status: number; message: string }> = [];
  /** Request lines seen (method and path), for assertions. */
  readonly requests: string[] = [];

  /** @param engineHost the real engine's DOCKER_HOST (unix:///path or tcp://host:port) */
  constructor(private readonly engineHost: string) {
    this.socketPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'engine-proxy-')), 'docker.sock');
  }

  get dockerHost(): string {
    return `unix://${this.socketPath}`;
  }

  async up(): Promise<void> {
    if (this.server) return;
    fs.rmSync(this.socketPath, { force: true });
    const server = net.createServer((client) => {
      const engine = this.engineHost.startsWith('unix://')
        ? net.connect(this.engineHost.slice('unix://'.length))
        : net.connect(Number(new URL(this.engineHost.replace(/^tcp:/, 'http:')).port || 2375), new URL(this.engineHost.replace(/^tcp:/, 'http:')).hostname);
      this.open.add(client).add(engine);
      const close = () => {
        client.destroy();
        engine.destroy();
        this.open.delete(client);
        this.open.delete(engine);
      };
      client.on('data', (chunk: Buffer) => {
        const line = /^(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP\/1\.[01]/m.exec(chunk.toString('latin1'));
        if (line) {
          this.requests.push(`${line[1]} ${line[2]}`);
          const drop = this.drops.findIndex((p) => p.test(`${line[1]} ${line[2]}`));
          if (drop >= 0) {
            this.drops.splice(drop, 1);
            close();
            return;
          }
          const fail = this.failures.findIndex((f) => f.pattern.test(`${line[1]} ${line[2]}`));
          if (fail >= 0) {
            const [f] = this.failures.splice(fail, 1);
            const body = JSON.stringify({ message: f.message });
            client.end(`HTTP/1.1 ${f.status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
            engine.destroy();
            return;
          }
        }
        engine.write(chunk);
      });
      engine.on('data', (chunk: Buffer) => client.write(chunk));
      client.on('close', close).on('error', close);
      engine.on('close', close).on('error', close);
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.socketPath, () => resolve()));
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.open) s.destroy();
    this.open.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(this.socketPath, { force: true });
  }

  dropNext(pattern: RegExp): void {
    this.drops.push(pattern);
  }

  /** The next request matching `pattern` gets this engine answer (an error status and message). */
  failNext(pattern: RegExp, status: number, message: string): void {
    this.failures.push({ pattern, status, message });
  }
}
