/** `npm run local -- up | down | status`: see scripts/dev/local/stack.ts. */
import '../../daemon/src/quiet-sdk-warning';
import { Command } from 'commander';
import { down, status, up } from './local/stack';

const program = new Command('local')
  .description('The local stack: a real Docker engine, moto, an IMDSv2 server and a local SSM agent, with one fleet provisioned.')
  .addHelpText('after', '\nExamples:\n  npm run local -- up\n  npm run local -- status --json\n  npm run local -- down');

program.command('up').description('start what is not running, provision the local fleet, write .fleet/local.env').action(async () => {
  await up();
  await printStatus(false);
});
program.command('down').description('stop what `up` started (by PID) and remove .fleet/local.env').action(down);
program.command('status').description('show what runs and where, and the provisioned resources').option('--json', 'machine-readable output').action(async (o: { json?: boolean }) => {
  const ok = await printStatus(Boolean(o.json));
  process.exitCode = ok ? 0 : 1;
});

async function printStatus(json: boolean): Promise<boolean> {
  const s = await status();
  if (json) {
    console.log(JSON.stringify(s, null, 2));
  } else {
    for (const c of s.components) {
      console.log(`${c.up ? 'up  ' : 'DOWN'}  ${c.name.padEnd(11)} ${c.pid ? `pid ${String(c.pid).padEnd(8)}` : ' '.repeat(12)} ${c.address ?? ''}${c.note ? `  (${c.note})` : ''}`);
    }
    const r = s.resources;
    if (r) {
      console.log(`\nfleet "${r.fleetName}" in ${r.region}:`);
      console.log(`  queue            ${r.queueUrl}\n  dead-letter      ${r.dlqUrl}`);
      console.log(`  intake queue     ${r.intakeQueueUrl ?? '(none: run up again)'}\n  intake DLQ       ${r.intakeDlqUrl ?? '(none)'}`);
      console.log(`  tables           ${r.tasksTable}, ${r.eventsTable}, ${r.instancesTable}`);
      console.log(`  payload bucket   ${r.payloadBucket}\n  cancel document  ${r.cancelDocument}\n  demo secret      ${r.demoSecretArn}`);
      console.log(`  group            ${r.asgName}: ${r.instanceIds.join(', ')}`);
    }
  }
  return s.components.every((c) => c.up);
}

program.parseAsync().catch((err: Error) => {
  console.error(`local: ${err.message}`);
  process.exit(1);
});
