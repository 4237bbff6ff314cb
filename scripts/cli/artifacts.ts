/**
 * `fleet artifacts ID [--attempt N] [--download DIR] [--json]` (docs/logs.md): the files the
 * agent left under /fleet/output, uploaded by fleetd to the payload bucket under
 * `artifacts/<task_id>/<attempt>/`. Lists them (the record's summary first: count, bytes,
 * truncated, or the upload error), and with --download writes them under DIR.
 */
import { downloadArtifacts, listArtifacts } from '../lib/artifacts';
import type { CliContext } from './config';
import { EXIT } from './errors';
import { printJson } from './format';
import { artifactJson } from './json';

export interface ArtifactsOptions {
  readonly attempt?: number;
  readonly download?: string;
  readonly json?: boolean;
}

export async function artifactsCommand(ctx: CliContext, taskId: string, o: ArtifactsOptions): Promise<number> {
  const record = await ctx.client.getTask(taskId);
  const attempt = o.attempt ?? Math.max(1, record.attempt);
  const bucket = ctx.names.payloadBucket;
  const entries = await listArtifacts(ctx.client.clients.s3, bucket, taskId, attempt);
  const summary = attempt === record.attempt ? record.artifacts : undefined;
  const error = attempt === record.attempt ? record.artifacts_error : undefined;
  const files = o.download ? await downloadArtifacts(ctx.client.clients.s3, bucket, entries, o.download) : undefined;
  if (o.json) {
    printJson({ task_id: taskId, attempt, bucket, prefix: `s3://${bucket}/artifacts/${taskId}/${attempt}/`, summary, artifacts_error: error, artifacts: entries.map(artifactJson), ...(files ? { downloaded: files } : {}) });
    return EXIT.ok;
  }
  process.stderr.write(`fleet: artifacts of ${taskId} attempt ${attempt} in s3://${bucket}/artifacts/${taskId}/${attempt}/\n`);
  if (summary?.truncated) process.stderr.write('fleet: some files were left out (a cap, a symbolic link or a special file; see fleetd\'s log)\n');
  if (error) process.stderr.write(`fleet: upload error: ${error}\n`);
  if (entries.length === 0) process.stderr.write(`(no artifacts${record.status && !record.finished_at ? `: ${taskId} is ${record.status}; artifacts are uploaded when it ends` : ''})\n`);
  for (const e of entries) process.stdout.write(`${String(e.size).padStart(12)}  ${e.path}\n`);
  if (files) process.stderr.write(`fleet: downloaded ${files.length} file(s) to ${o.download}\n`);
  return EXIT.ok;
}
