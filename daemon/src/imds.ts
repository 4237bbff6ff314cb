/**
 * IMDSv2 client: a session token first (PUT), then token-guarded GETs. The endpoint comes from
 * the SDK's standard AWS_EC2_METADATA_SERVICE_ENDPOINT (the local stack's server), else the
 * real link-local address. 404 means "no such answer" (e.g. no spot notice), not an error.
 */
export const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254/';

export interface InstanceIdentity {
  readonly instanceId: string;
  readonly region: string;
  readonly availabilityZone: string;
}

export class ImdsError extends Error {
  override readonly name = 'ImdsError';
}

export class ImdsClient {
  private token?: { value: string; expiresAt: number };
  private readonly base: string;

  constructor(endpoint = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? DEFAULT_IMDS_ENDPOINT, private readonly timeoutMs = 2000) {
    this.base = endpoint.endsWith('/') ? endpoint : `${endpoint}/`;
  }

  private async sessionToken(): Promise<string> {
    if (this.token && this.token.expiresAt > Date.now() + 60_000) return this.token.value;
    const ttl = 21600;
    const res = await fetch(new URL('latest/api/token', this.base), {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(ttl) },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) throw new ImdsError(`IMDS token request failed: HTTP ${res.status}`);
    this.token = { value: await res.text(), expiresAt: Date.now() + ttl * 1000 };
    return this.token.value;
  }

  /** The text at `path` (relative to the endpoint, e.g. `latest/meta-data/instance-id`), or undefined on 404. */
  async get(path: string): Promise<string | undefined> {
    const token = await this.sessionToken();
    const res = await fetch(new URL(path, this.base), { headers: { 'X-aws-ec2-metadata-token': token }, signal: AbortSignal.timeout(this.timeoutMs) });
    if (res.status === 404) return undefined;
    if (res.status === 401) this.token = undefined;
    if (!res.ok) throw new ImdsError(`IMDS ${path}: HTTP ${res.status}`);
    return res.text();
  }

  async identity(): Promise<InstanceIdentity> {
    const doc = await this.get('latest/dynamic/instance-identity/document');
    if (!doc) throw new ImdsError('IMDS has no instance identity document');
    const parsed = JSON.parse(doc) as Partial<InstanceIdentity>;
    if (!parsed.instanceId || !parsed.region || !parsed.availabilityZone) throw new ImdsError(`IMDS identity document is incomplete: ${doc.slice(0, 200)}`);
    return { instanceId: parsed.instanceId, region: parsed.region, availabilityZone: parsed.availabilityZone };
  }

  /** The AMI the instance was launched from. */
  async amiId(): Promise<string | undefined> {
    return this.get('latest/meta-data/ami-id');
  }

  /**
   * One of the instance's tags, e.g. `aws:ec2launchtemplate:version`. Undefined when the tag is
   * absent, and always when the launch template does not enable instance metadata tags.
   */
  async instanceTag(key: string): Promise<string | undefined> {
    return this.get(`latest/meta-data/tags/instance/${encodeURIComponent(key)}`);
  }

  /** The spot interruption notice, when one is pending. */
  async spotInstanceAction(): Promise<{ action: string; time: string } | undefined> {
    const text = await this.get('latest/meta-data/spot/instance-action');
    return text ? (JSON.parse(text) as { action: string; time: string }) : undefined;
  }

  /** `InService`, `Terminated`, ...: the Auto Scaling target lifecycle state. */
  async targetLifecycleState(): Promise<string | undefined> {
    return this.get('latest/meta-data/autoscaling/target-lifecycle-state');
  }
}
