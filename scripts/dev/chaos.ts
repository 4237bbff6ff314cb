/**
 * `npm run chaos`: the reliability suite against the real local stack (docs/reliability.md).
 * A seeded, bounded run with several fleetd daemons, faults injected while N tasks run, then a
 * drain and one table. Exit 1 when a task was lost, ran twice concurrently, a daemon crashed on
 * bad input, or a bad input was not rejected with a reason; 2 on a usage error.
 */
import '../../daemon/src/quiet-sdk-warning';
import { Command, InvalidArgumentError } from 'commander';
import { status, up } from './local/stack';
import { DEFAULT_CHAOS_OPTIONS, runChaos } from './chaos/run';
import { formatTable } from './chaos/report';
import { BEHAVIOURS, type Behaviour } from './chaos/behaviours';

function int(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name}: got ${JSON.stringify(v)}, expected an integer ${min}..${max}`);
    return n;
  };
}

const program = new Command('chaos')
  .description('seeded fault injection and bad input against the local stack; prints one table')
  .option('--seed <n>', 'seed for behaviours, faults and fuzzing', int('--seed', 0, 2 ** 32 - 1), 1)
  .option('--tasks <n>', 'tasks to submit', int('--tasks', 1, 1000), 40)
  .option('--daemons <n>', 'fleetd instances', int('--daemons', 1, 6), DEFAULT_CHAOS_OPTIONS.daemons)
  .option('--slots <n>', 'slots per fleetd', int('--slots', 1, 8), DEFAULT_CHAOS_OPTIONS.slots)
  .option('--light', 'fewer faults: no connection refusals, no outage longer than a lease, no dockerd restart')
  .option('--no-docker-restart', 'never restart dockerd (shared machine)')
  .option('--fuzz <n>', 'bad inputs per kind (envelope, spec, record) fed to the parsers', int('--fuzz', 0, 100_000), DEFAULT_CHAOS_OPTIONS.fuzzPerKind)
  .option('--bad-messages <n>', 'bad envelopes sent as real SQS messages', int('--bad-messages', 0, 2000), DEFAULT_CHAOS_OPTIONS.badMessages)
  .option('--only <behaviours>', `comma-separated task behaviours, cycled (${BEHAVIOURS.join(', ')})`)
  .option('--json <file>', 'also write the full report (incl. every problem found) as JSON')
  .addHelpText(
    'after',
    `
Examples:
  npm run chaos -- --seed 1 --tasks 100          the full run (under 10 minutes here)
  npm run chaos -- --seed 7 --tasks 12 --light   a short run with fewer faults, as in npm test
  npm run chaos -- --seed 3 --tasks 30 --no-docker-restart --json /tmp/chaos.json
  npm run chaos -- --tasks 10 --only cancel-running,cancel-finishing`,
  );

async function main(): Promise<number> {
  program.parse();
  const opts = program.opts<{ seed: number; tasks: number; daemons: number; slots: number; light?: boolean; dockerRestart: boolean; fuzz: number; badMessages: number; only?: string; json?: string }>();
  const only = opts.only?.split(',').map((s) => s.trim()) as Behaviour[] | undefined;
  const unknown = only?.filter((b) => !(BEHAVIOURS as readonly string[]).includes(b)) ?? [];
  if (unknown.length) {
    console.error(`--only: unknown behaviour(s) ${unknown.join(', ')}; expected some of ${BEHAVIOURS.join(', ')}`);
    return 2;
  }
  if (!(await status()).components.every((c) => c.up)) await up();
  const report = await runChaos({
    ...DEFAULT_CHAOS_OPTIONS,
    seed: opts.seed,
    tasks: opts.tasks,
    daemons: opts.daemons,
    slots: opts.slots,
    intensity: opts.light ? 'light' : 'full',
    dockerRestart: opts.dockerRestart && !opts.light,
    fuzzPerKind: opts.fuzz,
    badMessages: opts.badMessages,
    behaviours: only,
    log: (line) => console.error(line),
  });
  console.log(formatTable(report));
  if (!report.ok) {
    for (const id of report.lost) console.log(`lost: ${id}`);
    for (const id of report.doubleRun) console.log(`ran twice concurrently: ${id}`);
    for (const c of report.crashes) console.log(`crash: ${c.instanceId} exited ${c.code}; last lines:\n  ${c.lastLines.join('\n  ')}`);
    for (const p of report.badInputs.problems.slice(0, 20)) console.log(`bad input: ${p}`);
  }
  if (Object.keys(report.unexpectedOutcomes).length) {
    console.log(`outcomes other than the behaviour's own (faults hit them): ${Object.entries(report.unexpectedOutcomes).map(([k, v]) => `${k} ×${v}`).join('; ')}`);
    for (const d of report.unexpectedDetails) console.log(`  ${d.taskId} (${d.behaviour}, attempt ${d.attempt}): ${d.status}${d.reason ? ` — ${d.reason}` : ''}`);
  }
  if (report.bootFailures) console.log(`failed boots by reason: ${Object.entries(report.bootFailureReasons).map(([k, v]) => `${k} ×${v}`).join('; ')}`);
  if (opts.json) {
    const fs = await import('node:fs');
    fs.writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
  }
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`chaos: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
