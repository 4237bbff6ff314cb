/** `fleet instances` and `fleet dlq list|redrive`: the fleet's machines and its dead letters. */
import { DEFAULT_TIMINGS, instanceStaleAfterMs } from '../../daemon/src/contract';
import type { InstanceView } from '../lib/client';
import type { CliContext } from './config';
import { EXIT } from './errors';
import { formatAge, formatDuration, formatTime, printJson, table } from './format';
import { deadLettersJson, instancesJson, redriveJson } from './json';

export async function instancesCommand(ctx: CliContext, o: { json?: boolean }): Promise<number> {
  const now = Date.now();
  const { instances, warnings } = await ctx.client.listInstances({ now });
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  if (o.json) {
    printJson(instancesJson({ instances, warnings }));
    return EXIT.ok;
  }
  if (instances.length === 0) {
    process.stderr.write('no instances have reported to this fleet\n');
    return EXIT.ok;
  }
  process.stdout.write(`${formatInstances(instances, now)}\n`);
  if (instances.some((i) => i.stale)) process.stderr.write(`stale: no instance heartbeat for ${formatDuration(instanceStaleAfterMs(DEFAULT_TIMINGS))} (2.5 instance heartbeats); its fleetd may be dead (the reconciler reports it too)\n`);
  return EXIT.ok;
}

/** fleetd's version, with the commit cut to 8 characters (`0.1.0@1a2b3c4d`); `-` when fleetd never said. */
function versionCell(i: InstanceView): string {
  if (!i.version) return '-';
  return i.commit && i.commit !== 'unknown' ? `${i.version}@${i.commit.slice(0, 8)}${i.commit.endsWith('-dirty') ? '-dirty' : ''}` : i.version;
}

/** The `fleet instances` table: one row per instance. */
export function formatInstances(instances: readonly InstanceView[], now = Date.now()): string {
  const rows = instances.map((i) => [
    i.instanceId,
    `${i.status}${i.stale ? ' (stale)' : ''}`,
    i.ec2State ?? '-',
    i.running.length ? i.running.join(',') : '-',
    formatAge(i.heartbeatAt, now),
    i.launchedAt !== undefined && i.status !== 'terminated' ? formatDuration(now - i.launchedAt) : '-',
    versionCell(i),
    i.amiId ?? '-',
    i.launchTemplateId ? `${i.launchTemplateId}:${i.launchTemplateVersion ?? '?'}` : '-',
    i.availabilityZone ?? '-',
    i.reason ?? (i.status === 'terminated' ? (i.ec2State === 'not listed' ? 'EC2 no longer lists it' : '') : i.heartbeatAt === undefined ? 'fleetd never reported' : ''),
  ]);
  return table(['instance', 'status', 'ec2', 'task', 'heartbeat', 'uptime', 'fleetd', 'ami', 'launch template', 'az', 'note'], rows);
}

export async function dlqListCommand(ctx: CliContext, o: { limit: number; json?: boolean }): Promise<number> {
  const letters = await ctx.client.listDeadLetters({ limit: o.limit });
  if (o.json) {
    printJson(deadLettersJson(letters));
    return EXIT.ok;
  }
  if (letters.length === 0) {
    process.stderr.write('the dead-letter queue is empty\n');
    return EXIT.ok;
  }
  const rows = letters.map((l) => [l.messageId, l.taskId ?? '-', formatTime(l.sentAt), String(l.receiveCount ?? '-'), l.reason ?? 'moved by SQS after too many receives']);
  process.stdout.write(`${table(['message', 'task', 'sent', 'receives', 'reason'], rows)}\n`);
  process.stderr.write('"fleet dlq redrive --dry-run" shows what a redrive would do\n');
  return EXIT.ok;
}

export async function dlqRedriveCommand(ctx: CliContext, o: { limit: number; taskId?: string; dryRun?: boolean; json?: boolean }): Promise<number> {
  const outcomes = await ctx.client.redriveDeadLetters({ limit: o.limit, taskId: o.taskId, dryRun: o.dryRun });
  const failed = outcomes.filter((x) => x.error);
  if (o.json) {
    printJson(redriveJson(Boolean(o.dryRun), outcomes));
    return failed.length ? EXIT.failure : EXIT.ok;
  }
  const verb = { resend: o.dryRun ? 'would resend' : 'resent', drop: o.dryRun ? 'would delete' : 'deleted', keep: 'kept' } as const;
  for (const x of outcomes) {
    const what = x.decision.taskId ?? `message ${x.deadLetter.messageId}`;
    process.stdout.write(`${x.error ? `failed to ${x.decision.action}` : verb[x.decision.action]} ${what}: ${x.decision.why}${x.error ? ` (${x.error})` : ''}\n`);
  }
  const count = (a: string) => outcomes.filter((x) => x.decision.action === a && !x.error).length;
  process.stderr.write(`${outcomes.length} dead letter(s): ${count('resend')} ${verb.resend}, ${count('drop')} ${verb.drop}, ${count('keep')} kept${failed.length ? `, ${failed.length} failed` : ''}\n`);
  return failed.length ? EXIT.failure : EXIT.ok;
}
