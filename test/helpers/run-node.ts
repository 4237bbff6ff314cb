/**
 * Runs a node script the way a user's shell would (argv, no shell) and collects its output: the
 * CLI tests' way to drive `fleet` and `fleetd`. The AWS SDK's notice about this node version is
 * dropped from stderr (it depends on the machine, not on the code under test).
 */
import { spawn } from 'node:child_process';

export interface NodeRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const SDK_NODE_NOTICE = /NodeVersionSupportWarning|versions published after|require node >=22|To continue receiving|security updates please|More information can be found|trace-warnings|^\s*$/;

export function runNode(script: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<NodeRun> {
  return runExecutable(process.execPath, [script, ...args], env);
}

/** Runs a file itself (its #! line picks the interpreter: bin/fleet.js and dist/bundle/fleet start in sh), as runNode does. */
export function runExecutable(file: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<NodeRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr: stderr.split('\n').filter((l) => !SDK_NODE_NOTICE.test(l)).join('\n') }));
  });
}
