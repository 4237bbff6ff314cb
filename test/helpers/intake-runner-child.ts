/**
 * The local intake runner (scripts/dev/local/intake-runner.ts) as a child process for one test
 * fleet, the way `npm run local -- up` runs it for the stack's own fleet; every output line is kept.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { TestFleet } from '../../scripts/dev/harness/fleet';

const RUNNER = path.resolve(__dirname, '..', '..', 'scripts', 'dev', 'local', 'intake-runner.ts');

export class RunnerChild {
  readonly lines: string[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;

  constructor(fleet: TestFleet, extraEnv: Record<string, string> = {}) {
    this.child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), RUNNER, '--from', 'trim-horizon'], {
      env: { ...process.env, ...fleet.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    const onData = (c: Buffer) => {
      partial += c.toString();
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      this.lines.push(...parts.filter(Boolean));
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  async waitForLog(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => pattern.test(l));
      if (hit) return hit;
      if (this.child.exitCode !== null) throw new Error(`intake runner exited (${this.child.exitCode}):\n${this.lines.slice(-15).join('\n')}`);
      if (Date.now() > deadline) throw new Error(`intake runner: no line matching ${pattern} within ${timeoutMs} ms; last lines:\n${this.lines.slice(-15).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
