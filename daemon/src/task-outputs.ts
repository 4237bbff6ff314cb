/**
 * What leaves the instance for one attempt (docs/logs.md): its output, line by line, to the
 * attempt's CloudWatch Logs stream (log-shipper.ts) from the same redacted lines the local log
 * file gets (task-output.ts), and its artifacts (artifacts.ts) after the container exited.
 * Neither can fail the task: shipping drops (counted), artifacts end up as `artifacts_error`.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { uploadArtifacts, type ArtifactsOutcome } from './artifacts';
import type { FleetdConfig } from './config';
import { LIMITS } from './contract';
import type { Logger, Redactor } from './log';
import { logShipperFor, type LogShipper, type TaskLogStream } from './log-shipper';
import type { TaskFiles } from './runner';
import { TaskOutput } from './task-output';

export interface TaskOutputsDeps {
  readonly shipper?: LogShipper;
  readonly s3: S3Client;
  readonly config: Pick<FleetdConfig, 'payloadBucket' | 'artifacts' | 'logGroup'>;
  readonly redactor: Redactor;
  readonly log: Logger;
}

export class TaskOutputs {
  private stream?: TaskLogStream;

  constructor(
    private readonly d: TaskOutputsDeps,
    private readonly taskId: string,
    private readonly attempt: number,
  ) {}

  /** The attempt's output: the local file (appended to when adopting), and the stream when the fleet ships logs. */
  open(files: TaskFiles, append = false): TaskOutput {
    // The daemon's shipper when given, else the one for the configured group (in the clients' region).
    const shipper = this.d.shipper ?? logShipperFor(this.d.config.logGroup, this.d.s3.config.region, this.d.log);
    this.stream ??= shipper?.stream(this.taskId, this.attempt, this.d.log);
    const stream = this.stream;
    return new TaskOutput(files.logFile, this.d.redactor, LIMITS.logFileBytes, LIMITS.logTailBytes, { append, onLine: stream ? (line) => stream.line(line) : undefined });
  }

  /** Sends what the stream still holds (bounded by its deadline); call after the output was closed, before the terminal write. */
  async closeLog(): Promise<void> {
    const stream = this.stream;
    if (!stream) return;
    try {
      const s = await stream.close();
      this.d.log.info('task log shipped', { stream: s.stream, lines: s.shippedLines, bytes: s.shippedBytes, dropped_lines: s.droppedLines, dropped_bytes: s.droppedBytes, calls: s.calls });
    } catch (err) {
      this.d.log.warn('closing the task log stream failed; the local log file has the output', { error: err });
    }
  }

  /** Uploads /fleet/output (artifacts.ts) and returns the record's summary fields. */
  async artifacts(files: TaskFiles): Promise<ArtifactsOutcome> {
    try {
      const out = await uploadArtifacts({ s3: this.d.s3, bucket: this.d.config.payloadBucket, taskId: this.taskId, attempt: this.attempt, outputDir: files.outputDir, limits: this.d.config.artifacts, log: this.d.log });
      if (out.artifacts) this.d.log.info('artifacts uploaded', { ...out.artifacts, error: out.artifacts_error });
      return { ...out, ...(out.artifacts_error ? { artifacts_error: this.d.redactor.redact(out.artifacts_error) } : {}) };
    } catch (err) {
      return { artifacts_error: this.d.redactor.redact(`uploading artifacts failed: ${(err as Error).message}`) };
    }
  }
}
