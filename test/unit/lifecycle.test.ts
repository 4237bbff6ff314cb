/**
 * The pure decisions of the instance lifecycle (daemon/src/lifecycle.ts) and the IMDS watcher
 * loop driven by a fake IMDS.
 */
import { InterruptionWatcher, decideIdleTermination, interruptionFrom, terminationRefusal, watchDelayMs, type Interruption } from '../../daemon/src/lifecycle';
import { Logger, Redactor } from '../../daemon/src/log';

const quiet = new Logger({}, new Redactor(), 'error', () => undefined);

describe('interruptionFrom', () => {
  const spot = { action: 'terminate', time: '2026-11-28T10:00:00Z' };
  it.each([
    ['nothing pending', undefined, 'InService', undefined],
    ['no lifecycle answer', undefined, undefined, undefined],
    ['a warm pool state', undefined, 'Warmed:Stopped', undefined],
    ['the termination hook', undefined, 'Terminated', { kind: 'terminating', state: 'Terminated' }],
    ['a spot notice', spot, 'InService', { kind: 'spot', ...spot }],
    ['a spot notice wins over the hook', spot, 'Terminated', { kind: 'spot', ...spot }],
  ])('%s', (_name, s, state, expected) => {
    expect(interruptionFrom(s, state)).toEqual(expected);
  });
});

describe('decideIdleTermination', () => {
  it.each([
    [{ minSize: 1, desiredCapacity: 2, memberState: 'InService' }, { terminate: true }],
    [{ minSize: 1, desiredCapacity: 1, memberState: 'InService' }, { terminate: false, reason: 'the group is at MinSize (desired 1, min 1)' }],
    [{ minSize: 2, desiredCapacity: 1, memberState: 'InService' }, { terminate: false, reason: 'the group is at MinSize (desired 1, min 2)' }],
    [{ minSize: 0, desiredCapacity: 3, memberState: undefined }, { terminate: false, reason: 'this instance is not in the group' }],
    [{ minSize: 0, desiredCapacity: 3, memberState: 'Terminating:Wait' }, { terminate: false, reason: 'this instance is Terminating:Wait, not InService' }],
  ])('%j → %j', (facts, expected) => {
    expect(decideIdleTermination(facts)).toEqual(expected);
  });
});

describe('terminationRefusal', () => {
  const awsError = (name: string, message: string) => Object.assign(new Error(message), { name });
  it('names the MinSize refusal', () => {
    const err = awsError('ValidationError', "Currently, desiredSize equals minSize (1). Terminating instance without replacement will violate group's min size constraint.");
    expect(terminationRefusal(err)).toMatch(/^the group would go below MinSize/);
  });
  it('names a scaling activity in progress', () => {
    expect(terminationRefusal(awsError('ScalingActivityInProgressFault', 'Scaling activity is in progress'))).toBe('a scaling activity is in progress');
  });
  it('passes anything else through with its name', () => {
    expect(terminationRefusal(awsError('ThrottlingException', 'Rate exceeded'))).toBe('ThrottlingException: Rate exceeded');
  });
});

test('watchDelayMs stays within 5 s ± 20 %', () => {
  expect(watchDelayMs(() => 0)).toBe(4000);
  expect(watchDelayMs(() => 0.5)).toBe(5000);
  expect(watchDelayMs(() => 0.999999)).toBeLessThanOrEqual(6000);
});

test('InterruptionWatcher reports a spot notice once, then the hook once, and survives IMDS errors', async () => {
  // Prepare: IMDS answers InService, fails once, then a spot notice, then also Terminated.
  const answers: Array<[{ action: string; time: string } | undefined, string | undefined] | Error> = [
    [undefined, 'InService'],
    new Error('IMDS timeout'),
    [{ action: 'stop', time: 't' }, 'InService'],
    [{ action: 'stop', time: 't' }, 'InService'],
    [{ action: 'stop', time: 't' }, 'Terminated'],
    [{ action: 'stop', time: 't' }, 'Terminated'],
  ];
  let i = 0;
  const next = () => answers[Math.min(i, answers.length - 1)];
  const imds = {
    spotInstanceAction: async () => {
      const a = next();
      if (a instanceof Error) throw a;
      return a[0];
    },
    targetLifecycleState: async () => {
      const a = next();
      i++;
      if (a instanceof Error) throw a;
      return a[1];
    },
  };
  const seen: Interruption[] = [];
  const watcher = new InterruptionWatcher(imds, (x) => seen.push(x), quiet, () => 1);
  // Act
  watcher.start();
  while (i < answers.length + 2) await new Promise((r) => setTimeout(r, 5));
  await watcher.stop();
  // Assess
  expect(seen).toEqual([{ kind: 'spot', action: 'stop', time: 't' }, { kind: 'terminating', state: 'Terminated' }]);
  expect(watcher.status).toBe('watching: lifecycle state Terminated, spot notice stop at t');
});
