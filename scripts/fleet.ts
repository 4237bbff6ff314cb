/**
 * `fleet`: the operator's command line for agent-fleet (bin/fleet.js launches it; the standalone bundle
 * is dist/bundle/fleet.mjs). Commands and exit codes: scripts/cli/program.ts and docs/cli.md.
 */
import { takeDeferredExtraCa } from './cli/deferred-ca';
import './cli/zod-jitless';
import '../daemon/src/quiet-sdk-warning';
import { main } from './cli/program';

// Before anything reads the environment or spawns: bin/fleet.js may have deferred NODE_EXTRA_CA_CERTS.
takeDeferredExtraCa();

// `fleet list | head`: a reader that closed the pipe is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

main(process.argv).then((code) => {
  process.exitCode = code;
  // Idle SDK sockets may keep the loop alive for a moment; never longer than this.
  setTimeout(() => process.exit(code), 1500).unref();
});
