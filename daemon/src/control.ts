/**
 * fleetd's control socket: a root-only Unix socket (mode 0600 in a 0700 directory) speaking
 * one JSON object per line. `fleetd cancel --task-id ID` and `fleetd status` are its clients;
 * the SSM cancel document runs the former.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { TASK_ID_PATTERN } from './contract';

export type ControlRequest = { cmd: 'cancel'; task_id: string } | { cmd: 'status' };
export type ControlResponse = { ok: true; [k: string]: unknown } | { ok: false; error: string };

export interface ControlHandler {
  cancel(taskId: string): Promise<ControlResponse>;
  status(): ControlResponse;
}

const MAX_REQUEST_BYTES = 4096;

export function parseControlRequest(line: string): ControlRequest | { error: string } {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    return { error: 'request is not JSON' };
  }
  const m = msg as { cmd?: unknown; task_id?: unknown };
  if (m?.cmd === 'status') return { cmd: 'status' };
  if (m?.cmd === 'cancel') {
    if (typeof m.task_id !== 'string' || !TASK_ID_PATTERN.test(m.task_id)) return { error: `task_id must match ${TASK_ID_PATTERN}` };
    return { cmd: 'cancel', task_id: m.task_id };
  }
  return { error: 'unknown command (expected "cancel" or "status")' };
}

export async function startControlServer(socketPath: string, handler: ControlHandler): Promise<net.Server> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setTimeout(10_000, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.end(`${JSON.stringify({ ok: false, error: 'request too large' })}\n`);
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const req = parseControlRequest(buf.slice(0, nl));
      const reply = (r: ControlResponse) => sock.end(`${JSON.stringify(r)}\n`);
      if ('error' in req) return reply({ ok: false, error: req.error });
      if (req.cmd === 'status') return reply(handler.status());
      handler.cancel(req.task_id).then(reply, (err: Error) => reply({ ok: false, error: err.message }));
    });
  });
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, resolve);
    });
  } finally {
    process.umask(oldMask);
  }
  fs.chmodSync(socketPath, 0o600);
  return server;
}

export async function sendControlRequest(socketPath: string, req: ControlRequest, timeoutMs = 60_000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = '';
    sock.setTimeout(timeoutMs, () => {
      sock.destroy();
      reject(new Error(`no answer from fleetd on ${socketPath} within ${timeoutMs} ms`));
    });
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (c) => (buf += c.toString('utf8')));
    sock.on('end', () => {
      try {
        resolve(JSON.parse(buf) as ControlResponse);
      } catch {
        reject(new Error(`fleetd sent an unreadable answer: ${buf.slice(0, 200)}`));
      }
    });
    sock.on('error', (err) => reject(new Error(`cannot reach fleetd on ${socketPath}: ${err.message} (is fleetd running? are you root?)`)));
  });
}
