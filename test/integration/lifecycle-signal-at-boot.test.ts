/**
 * A stop that arrives while fleetd is still booting (systemd's SIGTERM seconds after start, a
 * spot notice at launch) must drain cleanly, never crash the boot. Found by chaos: a SIGTERM
 * landing while the boot wrote the instance row was followed by draining → serving, an illegal
 * transition, and "fleetd could not start". The stop is injected deterministically at the SDK
 * boundary: when the boot tags the instance idle (the write just before serving).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAwsClients } from '../../daemon/src/aws';
import { loadConfig } from '../../daemon/src/config';
import { InstanceStatus } from '../../daemon/src/contract';
import { Fleetd } from '../../daemon/src/daemon';
import { ImdsClient } from '../../daemon/src/imds';
import { Logger, Redactor } from '../../daemon/src/log';
import { FAST_TIMINGS } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';
import { fleetdConfigFor } from '../../scripts/dev/local/provision';

let fleet: TestFleet;

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
});

test('a stop during the boot\'s last write drains and stops; the boot neither serves nor fails', async () => {
  // Prepare: an in-process fleetd whose EC2 client asks it to stop just as the boot tags the instance idle.
  const instanceId = fleet.resources.instanceIds[0];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetd-signal-at-boot-'));
  const configPath = path.join(dir, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify(fleetdConfigFor(fleet.resources, { workDir: path.join(dir, 'lib'), socketPath: path.join(dir, 'run', 'fleetd.sock'), minFreeDiskBytes: 64 * 1024 * 1024, minFreeInodes: 1000, timings: FAST_TIMINGS })));
  const clients = createAwsClients({ region: fleet.resources.region });
  const lines: string[] = [];
  const fleetd = new Fleetd({ config: loadConfig({}, configPath), clients, docker: fleet.docker, imds: new ImdsClient(`${fleet.imdsUrl}/${instanceId}/`), log: new Logger({ component: 'fleetd' }, new Redactor(), 'info', (l) => lines.push(l)) });
  let stopping: Promise<void> | undefined;
  clients.ec2.middlewareStack.add(
    (next, context) => async (args) => {
      const tags = (args.input as { Tags?: Array<{ Value?: string }> }).Tags ?? [];
      if (!stopping && context.commandName === 'CreateTagsCommand' && tags.some((t) => t.Value === InstanceStatus.IDLE)) stopping = fleetd.stop({ reason: 'SIGTERM received' });
      return next(args);
    },
    { step: 'initialize', name: 'stopDuringBoot' },
  );
  const stopped = new Promise<void>((resolve) => fleetd.once('stopped', () => resolve()));
  try {
    // Act
    await fleetd.start();
    await stopping;
    await stopped;
    // Assess
    expect(stopping).toBeDefined();
    expect(fleetd.status().fleetd_state).toBe('stopped');
    expect(lines.some((l) => /fleetd ready/.test(l))).toBe(false);
    expect(lines.some((l) => /IllegalTransition|could not start/.test(l))).toBe(false);
  } finally {
    await fleetd.stop({ abort: true }).catch(() => undefined);
    for (const c of Object.values(clients)) if (typeof c === 'object' && 'destroy' in c) c.destroy();
  }
});
