/* global process, console */
// The box side of the relay that lets fleetd inside the boot box (its own network namespace,
// `--network none`) reach the local stack's services on the host's loopback through a folder
// shared by both:
//   box:   node relay.mjs PORT=SOCK...   127.0.0.1:PORT -> SOCK   (a transient unit in the box)
//   host:  e2e.ts                        SOCK -> 127.0.0.1:PORT
// Only loopback addresses and Unix sockets are involved.
import net from 'node:net';

function pipe(a, b) {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

/** Listens on 127.0.0.1:port; every connection is forwarded to the Unix socket. */
function tcpToUnix(port, socketPath) {
  const server = net.createServer((c) => pipe(c, net.connect(socketPath)));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const pairs = process.argv.slice(2).map((arg) => {
  const m = /^(\d+)=(\/.+)$/.exec(arg);
  if (!m) {
    console.error(`relay: expected PORT=/path/to.sock, got ${JSON.stringify(arg)}`);
    process.exit(64);
  }
  return [Number(m[1]), m[2]];
});
Promise.all(pairs.map(([port, sock]) => tcpToUnix(port, sock))).then(
  () => console.log(`relay: ${pairs.map(([p, s]) => `127.0.0.1:${p} -> ${s}`).join(', ')}`),
  (err) => {
    console.error(`relay: ${err.message}`);
    process.exit(1);
  },
);
