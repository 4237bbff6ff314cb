/**
 * `fleet submit`: options → a task spec → FleetClient.submitTask. The task id goes to stdout
 * alone (for `id=$(fleet submit …)`), the human note to stderr; `--follow` then watches it.
 */
import * as fs from 'node:fs';
import type { TaskSpecInput } from '../../daemon/src/contract';
import type { CliContext } from './config';
import { EXIT, UsageError } from './errors';
import { printJson } from './format';
import { parseCpus, parseDuration, parseKeyValues, parseSize } from './parse';
import { watchTask } from './watch';

export interface SubmitOptions {
  readonly image: string;
  readonly payloadFile?: string;
  readonly prompt?: string;
  readonly env?: string[];
  readonly secret?: string[];
  readonly cpus?: string;
  readonly memory?: string;
  readonly timeout?: string;
  readonly idempotencyKey?: string;
  readonly follow?: boolean;
  readonly json?: boolean;
  readonly logDir?: string;
}

type Payload = NonNullable<TaskSpecInput['payload']>;

function readPayload(file: string): Payload {
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`--payload-file ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--payload-file ${file}: not JSON (${(err as Error).message})`, 'the payload is a JSON object, handed to the agent as AGENT_PAYLOAD and /fleet/payload.json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`--payload-file ${file}: expected a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  return value as Payload;
}

/** The spec the options describe; every option problem is a UsageError before anything is sent. */
export function specFromOptions(o: SubmitOptions): TaskSpecInput & Record<string, unknown> {
  if (o.payloadFile !== undefined && o.prompt !== undefined) throw new UsageError('give --payload-file or --prompt, not both', 'a prompt is the payload {"prompt": TEXT}');
  const payload = o.payloadFile !== undefined ? readPayload(o.payloadFile) : o.prompt !== undefined ? { prompt: o.prompt } : undefined;
  return {
    image: o.image,
    ...(payload !== undefined ? { payload } : {}),
    env: parseKeyValues(o.env ?? [], '--env'),
    secrets: parseKeyValues(o.secret ?? [], '--secret', true),
    ...(o.cpus !== undefined ? { cpus: parseCpus(o.cpus) } : {}),
    ...(o.memory !== undefined ? { memory_mb: parseSize(o.memory) } : {}),
    ...(o.timeout !== undefined ? { timeout_s: parseDuration(o.timeout) } : {}),
    ...(o.idempotencyKey !== undefined ? { idempotency_key: o.idempotencyKey } : {}),
  };
}

export async function submitCommand(ctx: CliContext, o: SubmitOptions): Promise<number> {
  const spec = specFromOptions(o);
  const res = await ctx.client.submitTask(spec);
  if (o.json) {
    // With --follow the watch's JSON lines follow this one.
    const submitted = { task_id: res.taskId, created: res.created, status: res.record.status };
    if (!o.follow) printJson(submitted);
    else process.stdout.write(`${JSON.stringify({ kind: 'submitted', ...submitted })}\n`);
    return o.follow ? watchTask(ctx.client, res.taskId, { json: true, logDir: o.logDir }) : EXIT.ok;
  }
  process.stdout.write(`${res.taskId}\n`);
  if (res.created) process.stderr.write(`submitted ${res.taskId} (QUEUED)${o.follow ? '' : `; follow it with: fleet watch ${res.taskId}`}\n`);
  else process.stderr.write(`${res.taskId} already exists (same idempotency key; ${res.record.status}): nothing new submitted\n`);
  return o.follow ? watchTask(ctx.client, res.taskId, { logDir: o.logDir }) : EXIT.ok;
}
