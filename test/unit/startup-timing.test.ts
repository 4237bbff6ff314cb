/** The start-up breakdown (daemon/src/startup-timing.ts) on an injected clock. */
import { StartupTimer } from '../../daemon/src/startup-timing';

test('each step gets the time since the previous mark; a repeated step adds up; the total is the last mark', () => {
  // Prepare
  let now = 0;
  const timer = new StartupTimer(() => now);
  // Act
  now = 180;
  timer.markProcessStart(40);
  now = 200;
  timer.mark('imds.identity');
  now = 230;
  timer.mark('sqs.GetQueueAttributes');
  now = 260;
  timer.mark('imds.identity');
  // Assess
  expect(timer.summary()).toEqual({ total_ms: 260, steps_ms: { node_bootstrap: 40, module_load: 140, 'imds.identity': 50, 'sqs.GetQueueAttributes': 30 } });
});

test('without Node\'s bootstrap timing, the first step runs from the process start', () => {
  let now = 0;
  const timer = new StartupTimer(() => now);
  now = 150;
  timer.markProcessStart(null);
  expect(timer.summary()).toEqual({ total_ms: 150, steps_ms: { module_load: 150 } });
});
