/**
 * fleetd's control socket: a root-only Unix socket (mode 0600 in a 0700 directory) speaking
 * one JSON object per line. `fleetd cancel --task-id ID` and `fleetd status` are its clients;
 * the SSM cancel document runs the former. The protocol (requests, answers, their zod schemas)
 * is in the contract (contract/control.ts): the server parses each request with it, the client
 * each answer.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  CONTROL_MAX_REQUEST_BYTES,
  parseControlRequest,
  parseControlResponse,
  type CancelResponse,
  type ControlCommand,
  type ControlError,
  type ControlRequest,
  type ControlResponses,
  type StatusResponse,
} from './contract';

export interface ControlHandler {
  cancel(taskId: string): Promise<CancelResponse | ControlError>;
  status(): StatusResponse | ControlError;
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
      if (buf.length > CONTROL_MAX_REQUEST_BYTES) {
        sock.end(`${JSON.stringify({ ok: false, error: 'request too large' })}\n`);
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const parsed = parseControlRequest(buf.slice(0, nl));
      const reply = (r: ControlResponses[ControlCommand]) => sock.end(`${JSON.stringify(r)}\n`);
      if (!parsed.ok) return reply({ ok: false, error: parsed.problems.join('; ') });
      const req = parsed.value;
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

/**
 * Sends one request and parses the answer with the contract's schema for that command. Rejects
 * when fleetd cannot be reached, does not answer in time, or answers something malformed.
 */
export async function sendControlRequest<R extends ControlRequest>(socketPath: string, req: R, timeoutMs = 60_000): Promise<ControlResponses[R['cmd']]> {
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
      const parsed = parseControlResponse(req.cmd as R['cmd'], buf);
      if (parsed.ok) resolve(parsed.value);
      else reject(new Error(`fleetd sent a malformed ${req.cmd} answer: ${parsed.problems.slice(0, 5).join('; ')}`));
    });
    sock.on('error', (err) => reject(new Error(`cannot reach fleetd on ${socketPath}: ${err.message} (is fleetd running? are you root?)`)));
  });
}
