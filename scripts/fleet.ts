/**
 * `fleet`: the operator's command line for agent-fleet (bin/fleet.js launches it; the AMI bundle
 * is dist/bundle/fleet.js). Commands and exit codes: scripts/cli/program.ts and docs/cli.md.
 */
import '../daemon/src/quiet-sdk-warning';
import { main } from './cli/program';

main(process.argv).then((code) => {
  process.exitCode = code;
  // Idle SDK sockets may keep the loop alive for a moment; never longer than this.
  setTimeout(() => process.exit(code), 1500).unref();
});
