/**
 * The short chaos run inside `npm test` (docs/reliability.md): a fixed seed, 12 tasks, fewer
 * faults, and never a dockerd restart (the engine is shared with the other test files). The
 * same guarantees as the full `npm run chaos`: nothing lost, nothing run twice concurrently,
 * no daemon crash, every bad input rejected with a reason.
 */
import { DEFAULT_CHAOS_OPTIONS, runChaos } from '../../scripts/dev/chaos/run';
import { formatTable } from '../../scripts/dev/chaos/report';

jest.setTimeout(330_000);

test('short chaos run (seed 7, 12 tasks, light faults): 0 lost, 0 double-run, 0 crashes, all bad input rejected', async () => {
  const lines: string[] = [];
  const report = await runChaos({
    ...DEFAULT_CHAOS_OPTIONS,
    seed: 7,
    tasks: 12,
    intensity: 'light',
    dockerRestart: false,
    fuzzPerKind: 500,
    badMessages: 12,
    activeBudgetMs: 170_000,
    drainBudgetMs: 90_000,
    log: (line) => lines.push(line),
  });
  const table = formatTable(report);
  // The table and the run's log, on failure only (Jest prints the message).
  const context = `${table}\n${lines.join('\n')}\nproblems: ${report.badInputs.problems.slice(0, 10).join('\n')}`;
  expect({ lost: report.lost, context }).toEqual({ lost: [], context });
  expect({ doubleRun: report.doubleRun, context }).toEqual({ doubleRun: [], context });
  expect({ crashes: report.crashes.length, context }).toEqual({ crashes: 0, context });
  expect({ notRejected: report.badInputs.total - report.badInputs.rejectedWithReason, problems: report.badInputs.problems }).toEqual({ notRejected: 0, problems: [] });
  expect(report.badInputs.total).toBeGreaterThan(1500);
  expect(report.submitted).toBe(12);
});
