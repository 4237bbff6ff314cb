/** `fleet status ID` and `fleet list`: reads of task records. */
import type { TaskStatus } from '../../daemon/src/contract';
import type { ReadContext } from './read-context';
import { EXIT } from './errors';
import { formatAge, formatRecord, printJson, table } from './format';
import { listJson } from './json';

export async function statusCommand(ctx: ReadContext, taskId: string, o: { json?: boolean }): Promise<number> {
  const record = await ctx.client.getTask(taskId);
  if (o.json) printJson(record);
  else process.stdout.write(`${formatRecord(record)}\n`);
  return EXIT.ok;
}

export async function listCommand(ctx: ReadContext, o: { statuses?: TaskStatus[]; limit: number; cursor?: string; json?: boolean; statusText?: string }): Promise<number> {
  const page = await ctx.client.listTasks({ statuses: o.statuses, limit: o.limit, cursor: o.cursor });
  if (o.json) {
    printJson(listJson(page));
    return EXIT.ok;
  }
  if (page.tasks.length === 0) process.stderr.write(`no tasks${o.statuses ? ` with status ${o.statuses.join(', ')}` : ''}\n`);
  else {
    const rows = page.tasks.map((t) => [t.task_id, t.status, formatAge(t.created_at), t.instance_id ?? '-', String(t.attempt), typeof t.spec.image === 'string' ? t.spec.image : '-']);
    process.stdout.write(`${table(['task', 'status', 'created', 'instance', 'attempt', 'image'], rows)}\n`);
  }
  if (page.skipped) process.stderr.write(`(${page.skipped} invalid record(s) skipped)\n`);
  if (page.nextCursor) process.stderr.write(`more: ${nextPageCommand({ ...o, envFile: ctx.envFile }, page.nextCursor)}\n`);
  return EXIT.ok;
}

/** A word as a POSIX shell reads it back: bare when safe, else single-quoted. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The `fleet list` that fetches the next page: every option given (the global --env-file too), with the new cursor. */
export function nextPageCommand(o: { envFile?: string; statusText?: string; limit: number }, cursor: string): string {
  const words = ['fleet', ...(o.envFile !== undefined ? ['--env-file', o.envFile] : []), 'list', ...(o.statusText !== undefined ? ['--status', o.statusText] : []), '--limit', String(o.limit), '--cursor', cursor];
  return words.map(shellWord).join(' ');
}
