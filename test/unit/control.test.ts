/**
 * The control socket (daemon/src/control.ts) end to end on a temporary Unix socket: the server
 * refuses a bad request with the contract's problem, the client rejects a malformed answer
 * with a clear error.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { sendControlRequest, startControlServer } from '../../daemon/src/control';

const TASK_ID = 't-01jd8k2m3n4p5q6r7s8t9v0w1x';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetd-control-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** One raw exchange: what the server answers to `line`. */
function rawExchange(socketPath: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath, () => sock.write(line));
    let buf = '';
    sock.on('data', (c) => (buf += c.toString('utf8')));
    sock.on('end', () => resolve(buf));
    sock.on('error', reject);
  });
}

describe('control socket', () => {
  it('serves cancel and refuses a bad request with the contract problem', async () => {
    // Prepare
    const socketPath = path.join(dir, 'run', 'fleetd.sock');
    const cancelled: string[] = [];
    const server = await startControlServer(socketPath, {
      cancel: async (taskId) => (cancelled.push(taskId), { ok: true, found: true, message: `cancelling ${taskId}` }),
      status: () => ({ ok: false, error: 'not booted' }),
    });

    try {
      // Act
      const ok = await sendControlRequest(socketPath, { cmd: 'cancel', task_id: TASK_ID });
      const bad = JSON.parse(await rawExchange(socketPath, '{"cmd":"cancel","task_id":"$(reboot)"}\n'));
      const status = await sendControlRequest(socketPath, { cmd: 'status' });

      // Assess
      expect(ok).toEqual({ ok: true, found: true, message: `cancelling ${TASK_ID}` });
      expect(cancelled).toEqual([TASK_ID]);
      expect(bad).toEqual({ ok: false, error: expect.stringMatching(/^request\.task_id: expected a task id matching/) });
      expect(status).toEqual({ ok: false, error: 'not booted' });
      expect(fs.statSync(socketPath).mode & 0o777).toBe(0o600);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it.each([
    ['garbage', 'Segmentation fault\n', /fleetd sent a malformed status answer: answer: not JSON/],
    ['a status missing its fields', '{"ok":true}\n', /fleetd sent a malformed status answer: status answer\.instance_id: expected string/],
  ])('the client rejects %s', async (_name, answer, error) => {
    // Prepare: a server that answers anything with `answer`.
    const socketPath = path.join(dir, 'fake.sock');
    const server = net.createServer((sock) => sock.once('data', () => sock.end(answer)));
    await new Promise<void>((r) => server.listen(socketPath, r));

    try {
      // Act
      const res = sendControlRequest(socketPath, { cmd: 'status' }, 5000);

      // Assess
      await expect(res).rejects.toThrow(error);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
