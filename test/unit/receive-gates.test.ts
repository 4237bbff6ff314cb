/**
 * The engine gate (daemon/src/receive-gates.ts): a ping that answered within the last second
 * stands for the next receive (issue #18: one engine request per task at busy slots), but never
 * once trouble was reported: then every receive pings until the engine answers again.
 */
import type Docker from 'dockerode';
import { Logger } from '../../daemon/src/log';
import { ReceiveGateChecks } from '../../daemon/src/receive-gates';

const quiet = new Logger({}, undefined, 'error', () => undefined);

function gates(answers: () => boolean): { checks: ReceiveGateChecks; pings: () => number; back: () => number } {
  let pings = 0;
  let back = 0;
  const docker = { ping: async () => (pings++, answers() ? 'OK' : Promise.reject(new Error('connect ENOENT'))) } as unknown as Docker;
  const checks = new ReceiveGateChecks({ docker, minFreeDiskBytes: 0, minFreeInodes: 0, log: quiet, prune: async () => undefined, onEngineBack: async () => void back++ });
  return { checks, pings: () => pings, back: () => back };
}

afterEach(() => jest.useRealTimers());

test('a fresh answer stands for a second; then the engine is pinged again', async () => {
  // Prepare
  jest.useFakeTimers({ now: 1_000_000, doNotFake: ['nextTick', 'setImmediate'] });
  const g = gates(() => true);

  // Act / Assess
  expect(await g.checks.engineAnswers()).toBe(true);
  expect(await g.checks.engineAnswers()).toBe(true);
  expect(g.pings()).toBe(1);
  jest.setSystemTime(1_001_000);
  expect(await g.checks.engineAnswers()).toBe(true);
  expect(g.pings()).toBe(2);
});

test('trouble reported by a task run is not hidden by a fresh answer: the next receive pings', async () => {
  // Prepare
  let up = true;
  const g = gates(() => up);
  expect(await g.checks.engineAnswers()).toBe(true);

  // Act
  up = false;
  g.checks.engineTrouble('connect ENOENT');
  const whileDown = await g.checks.engineAnswers();
  up = true;
  const afterwards = await g.checks.engineAnswers();

  // Assess
  expect(whileDown).toBe(false);
  expect(afterwards).toBe(true);
  expect(g.pings()).toBe(3);
  expect(g.back()).toBe(1);
  expect(g.checks.engine).toBeUndefined();
});
