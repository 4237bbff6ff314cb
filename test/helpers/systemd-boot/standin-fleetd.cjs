'use strict';
/* global require, process, console, setTimeout */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS: installed as /opt/fleetd/fleetd.js */
// Stand-in for fleetd in the systemd boot check (boot-check.sh without --bundle). It is NOT
// fleetd: independent of fleetd's code, it exercises, under the real packer/files/fleetd.service
// and its hardening, what that unit promises fleetd (packer/README.md, "What fleetd must
// provide"), and reports each as one line `standin-check NAME ok|FAIL detail`:
//   docker     GET /_ping on $DOCKER_HOST's Unix socket works under ProtectSystem=strict
//   socket     a Unix socket can be created at $FLEETD_SOCKET (RuntimeDirectory, mode 0700)
//   state      /var/lib/fleetd is writable (StateDirectory)
//   readonly   /usr and /etc/fleetd are not (ProtectSystem=strict)
//   creds      it can listen on 169.254.170.2:80 (address on lo, CAP_NET_BIND_SERVICE)
// Then `standin-ready`, and on SIGTERM `standin-draining`, a 2 s "drain", exit 0.
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');

if (process.argv[2] !== 'run') {
  console.error(`standin-fleetd: only "run" is implemented, got ${JSON.stringify(process.argv.slice(2))}`);
  process.exit(64);
}

const report = (name, ok, detail) => console.log(`standin-check ${name} ${ok ? 'ok' : 'FAIL'} ${detail}`);

function dockerPing() {
  const socketPath = (process.env.DOCKER_HOST || 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve([res.statusCode === 200 && body === 'OK', `${socketPath}: ${res.statusCode} ${body}`]));
    });
    req.on('error', (e) => resolve([false, `${socketPath}: ${e.code || e.message}`]));
  });
}

function writable(dir) {
  const probe = path.join(dir, `.standin-${process.pid}`);
  try {
    fs.writeFileSync(probe, 'x');
    fs.unlinkSync(probe);
    return [true, `${dir} writable`];
  } catch (e) {
    return [false, `${dir}: ${e.code}`];
  }
}

function listen(server, ...args) {
  return new Promise((resolve) => {
    server.once('error', (e) => resolve([false, e.code || e.message]));
    server.listen(...args, () => resolve([true, JSON.stringify(server.address())]));
  });
}

async function main() {
  report('docker', ...(await dockerPing()));

  const control = net.createServer((c) => c.end('standin\n'));
  const socketPath = process.env.FLEETD_SOCKET || '/run/fleetd/fleetd.sock';
  const [sockOk, sockDetail] = await listen(control, socketPath);
  const mode = sockOk ? (fs.statSync(path.dirname(socketPath)).mode & 0o777).toString(8) : '?';
  report('socket', sockOk && mode === '700', `${sockDetail} dir mode ${mode}`);

  report('state', ...writable('/var/lib/fleetd'));
  const ro = ['/usr', '/etc/fleetd'].map((d) => [d, writable(d)[0]]);
  report('readonly', ro.every(([, w]) => !w), ro.map(([d, w]) => `${d}:${w ? 'writable' : 'read-only'}`).join(' '));

  const creds = http.createServer((_req, res) => res.end('{}'));
  report('creds', ...(await listen(creds, 80, '169.254.170.2')));

  console.log(`standin-ready pid=${process.pid}`);
  process.once('SIGTERM', () => {
    console.log('standin-draining');
    setTimeout(() => {
      console.log('standin-stopped');
      process.exit(0);
    }, 2000);
  });
}

main();
