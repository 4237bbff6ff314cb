/**
 * Per-task AWS credentials, served the way ECS serves them (the container credentials provider
 * of every AWS SDK): fleetd assumes the task role with STS, tagging the session with the task id
 * (and repo), and answers `GET <AWS_CONTAINER_CREDENTIALS_FULL_URI>` carrying
 * `Authorization: <AWS_CONTAINER_AUTHORIZATION_TOKEN>`.
 *
 * - One random path and one random token per task; a request must present both, so one task's
 *   token never opens another task's credentials. Anything else gets 403, with no hint of which
 *   part was wrong.
 * - Credentials are refreshed before they expire (a third of their lifetime, at most 15 min,
 *   ahead) and revoked when the task ends: its token gets 403 from then on.
 * - The secret key and session token are registered with the log redactor while they live, so
 *   they never reach a log line, a log tail or a record.
 * Containers reach the server at 169.254.170.2:80, an address the AMI adds to `lo`
 * (packer/files/host-isolation.sh); the SDKs accept plain http there.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { STSClient } from '@aws-sdk/client-sts';
import { sdk } from './aws';
import { backoffDelayMs, sleep } from './retry';
import { TASK_SESSION_TAG_KEYS } from './contract';
import type { Logger } from './log';

export const CREDENTIALS_PATH_PREFIX = '/v1/credentials/';
/** Refresh this long before expiry at most (a third of the lifetime when that is shorter). */
export const MAX_REFRESH_LEAD_MS = 15 * 60 * 1000;

export interface TaskCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

export interface CredentialsServerOptions {
  readonly sts: STSClient;
  readonly roleArn: string;
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  readonly durationSeconds: number;
  readonly log: Logger;
}

interface Entry {
  readonly taskId: string;
  readonly path: string;
  readonly token: Buffer;
  readonly tags: Array<{ Key: string; Value: string }>;
  creds?: TaskCredentials;
  readonly abort: AbortController;
}

/** STS session names allow [\w+=,.@-], up to 64 characters. */
export function roleSessionName(taskId: string, attempt: number): string {
  return `fleet-${taskId}-a${attempt}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
}

/** Session tag values allow letters, digits, spaces and _.:/=+-@, up to 256 characters. */
export function sessionTagValue(value: string): string {
  return value.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_').slice(0, 256);
}

export function sessionTags(taskId: string, repo: string | undefined): Array<{ Key: string; Value: string }> {
  return [{ Key: TASK_SESSION_TAG_KEYS.taskId, Value: sessionTagValue(taskId) }, ...(repo ? [{ Key: TASK_SESSION_TAG_KEYS.repo, Value: sessionTagValue(repo) }] : [])];
}

/** When to refresh credentials that expire at `expiresAtMs`, obtained at `nowMs`. */
export function refreshAtMs(obtainedAtMs: number, expiresAtMs: number): number {
  const lifetime = Math.max(0, expiresAtMs - obtainedAtMs);
  return expiresAtMs - Math.min(MAX_REFRESH_LEAD_MS, lifetime / 3);
}

function sameToken(expected: Buffer, presented: string | undefined): boolean {
  if (!presented) return false;
  const got = Buffer.from(presented);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export class CredentialsServer {
  private server?: http.Server;
  private readonly byPath = new Map<string, Entry>();
  private readonly byTask = new Map<string, Entry>();
  private baseUrl = '';

  constructor(private readonly o: CredentialsServerOptions) {}

  /** Binds the server; throws with the reason (address not on this host, port taken). */
  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.o.log.error('credentials server error', { error: err }));
    this.server = server;
    const { port } = server.address() as AddressInfo;
    this.baseUrl = `http://${this.o.host}${port === 80 ? '' : `:${port}`}`;
  }

  /** `http://host[:port]` as containers see it. */
  get endpoint(): string {
    return this.baseUrl;
  }

  get activeTasks(): string[] {
    return [...this.byTask.keys()];
  }

  /** One AssumeRole to prove the task role can be assumed (boot preflight). */
  async probe(): Promise<void> {
    await this.assume('fleetd-preflight', [{ Key: TASK_SESSION_TAG_KEYS.taskId, Value: 'preflight' }]);
  }

  /**
   * Assumes the task role for this task and returns the container's environment. Throws when
   * STS refuses: the task then fails before start with the reason.
   */
  async issue(taskId: string, attempt: number, repo?: string): Promise<string[]> {
    this.revoke(taskId);
    const entry: Entry = {
      taskId,
      path: `${CREDENTIALS_PATH_PREFIX}${randomBytes(16).toString('hex')}`,
      token: Buffer.from(randomBytes(32).toString('base64url')),
      tags: sessionTags(taskId, repo),
      abort: new AbortController(),
    };
    this.setCreds(entry, await this.assume(roleSessionName(taskId, attempt), entry.tags));
    this.register(entry, roleSessionName(taskId, attempt));
    return [`AWS_CONTAINER_CREDENTIALS_FULL_URI=${this.baseUrl}${entry.path}`, `AWS_CONTAINER_AUTHORIZATION_TOKEN=${entry.token.toString()}`];
  }

  /**
   * After a restart: a re-adopted container keeps the path and token in its environment; serve
   * fresh credentials under them again. False when its environment carries none of ours.
   */
  async adopt(taskId: string, attempt: number, containerEnv: readonly string[], repo?: string): Promise<boolean> {
    const value = (name: string) => containerEnv.find((e) => e.startsWith(`${name}=`))?.slice(name.length + 1);
    const uri = value('AWS_CONTAINER_CREDENTIALS_FULL_URI');
    const token = value('AWS_CONTAINER_AUTHORIZATION_TOKEN');
    if (!uri || !token || !uri.startsWith(`${this.baseUrl}${CREDENTIALS_PATH_PREFIX}`)) return false;
    this.revoke(taskId);
    const entry: Entry = { taskId, path: uri.slice(this.baseUrl.length), token: Buffer.from(token), tags: sessionTags(taskId, repo), abort: new AbortController() };
    this.setCreds(entry, await this.assume(roleSessionName(taskId, attempt), entry.tags));
    this.register(entry, roleSessionName(taskId, attempt));
    return true;
  }

  private register(entry: Entry, sessionName: string): void {
    this.byPath.set(entry.path, entry);
    this.byTask.set(entry.taskId, entry);
    void this.refreshLoop(entry, sessionName);
  }

  /** The task ended: its token answers 403 from now on. */
  revoke(taskId: string): void {
    const entry = this.byTask.get(taskId);
    if (!entry) return;
    entry.abort.abort();
    this.byTask.delete(taskId);
    this.byPath.delete(entry.path);
    this.setCreds(entry, undefined);
    this.o.log.info('task credentials revoked', { task_id: taskId });
  }

  async close(): Promise<void> {
    for (const taskId of [...this.byTask.keys()]) this.revoke(taskId);
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private setCreds(entry: Entry, creds: TaskCredentials | undefined): void {
    if (entry.creds) {
      this.o.log.secrets.remove(entry.creds.secretAccessKey);
      this.o.log.secrets.remove(entry.creds.sessionToken);
    }
    entry.creds = creds;
    if (creds) {
      this.o.log.secrets.add(creds.secretAccessKey);
      this.o.log.secrets.add(creds.sessionToken);
    }
  }

  private async assume(sessionName: string, tags: Entry['tags']): Promise<TaskCredentials> {
    const res = await this.o.sts.send(new (sdk.sts().AssumeRoleCommand)({ RoleArn: this.o.roleArn, RoleSessionName: sessionName, DurationSeconds: this.o.durationSeconds, Tags: tags }));
    const c = res.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) throw new Error(`STS AssumeRole of ${this.o.roleArn} returned no credentials`);
    return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: new Date(c.Expiration) };
  }

  /**
   * Refresh loop of one task. Wakes at `refreshAtMs` (a third of the lifetime, at most 15 min,
   * before expiry: the SDKs in the container re-read the endpoint about 5 min before expiry, so
   * they find fresh credentials). A failed AssumeRole is retried with backoff and full jitter
   * (1 s doubling, 60 s cap) until the old credentials expire; they are served until then.
   */
  private async refreshLoop(entry: Entry, sessionName: string): Promise<void> {
    const signal = entry.abort.signal;
    let obtainedAt = Date.now();
    let failures = 0;
    while (!signal.aborted && entry.creds) {
      const wait = failures === 0 ? refreshAtMs(obtainedAt, entry.creds.expiration.getTime()) - Date.now() : backoffDelayMs(failures, 1000, 60_000);
      await sleep(Math.max(0, wait), signal);
      if (signal.aborted) return;
      try {
        const fresh = await this.assume(sessionName, entry.tags);
        if (signal.aborted) return;
        this.setCreds(entry, fresh);
        obtainedAt = Date.now();
        failures = 0;
        this.o.log.info('task credentials refreshed', { task_id: entry.taskId, expires_at: fresh.expiration.toISOString() });
      } catch (err) {
        failures++;
        this.o.log.warn('refreshing task credentials failed; retrying', { task_id: entry.taskId, error: err, failures, expires_at: entry.creds?.expiration.toISOString() });
      }
    }
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const path = new URL(req.url ?? '/', 'http://creds').pathname;
    const entry = req.method === 'GET' ? this.byPath.get(path) : undefined;
    const auth = req.headers.authorization;
    if (!entry || !sameToken(entry.token, Array.isArray(auth) ? auth[0] : auth)) {
      return send(403, { code: 'AccessDenied', message: 'unknown credentials path, or a wrong or expired token' });
    }
    const c = entry.creds;
    if (!c || c.expiration.getTime() <= Date.now()) {
      return send(503, { code: 'CredentialsUnavailable', message: 'the task credentials could not be refreshed yet; retry' });
    }
    send(200, { AccessKeyId: c.accessKeyId, SecretAccessKey: c.secretAccessKey, Token: c.sessionToken, Expiration: c.expiration.toISOString(), RoleArn: this.o.roleArn });
  }
}
