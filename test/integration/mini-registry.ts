/**
 * A read-only Docker registry (HTTP API v2) serving images taken from the local engine, for the
 * tests that must see a real pull with no registry in the local stack: `docker save` of the
 * image, its layers gzipped as blobs, a schema-2 manifest. Listens on 127.0.0.1, which dockerd
 * treats as an insecure (plain http) registry by default, so `docker pull 127.0.0.1:<port>/…`
 * goes through the engine's normal pull path: manifest, config, layer download and verify.
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import { gzipSync } from 'node:zlib';
import type Docker from 'dockerode';

interface Served {
  readonly manifest: Buffer;
  readonly blobs: Map<string, Buffer>;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The regular files of a `docker save` tarball (plain ustar; a PAX header's path is honoured). */
function untar(buf: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let paxPath: string | undefined;
  for (let off = 0; off + 512 <= buf.length; ) {
    const header = buf.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const str = (a: number, b: number) => header.subarray(a, b).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 136).trim() || '0', 8);
    const type = str(156, 157);
    const prefix = str(345, 500);
    const name = paxPath ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100));
    const data = buf.subarray(off + 512, off + 512 + size);
    paxPath = undefined;
    if (type === 'x') paxPath = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))?.[1];
    else if (type === '0' || type === '') files.set(name, Buffer.from(data));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

async function saved(docker: Docker, image: string): Promise<Map<string, Buffer>> {
  const chunks: Buffer[] = [];
  for await (const c of await docker.getImage(image).get()) chunks.push(c as Buffer);
  return untar(Buffer.concat(chunks));
}

export interface MiniRegistry {
  /** `127.0.0.1:<port>`: the registry part of the names it serves. */
  readonly host: string;
  /** Serves `image` (on the engine now) as `<host>/<repo>:<tag>`. */
  add(image: string, repo: string, tag: string): Promise<string>;
  /** Blob and manifest requests answered, for the test's log. */
  readonly requests: string[];
  close(): Promise<void>;
}

export async function startMiniRegistry(docker: Docker): Promise<MiniRegistry> {
  const served = new Map<string, Served>();
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push(`${req.method} ${url}`);
    if (url === '/v2/' || url === '/v2') {
      res.writeHead(200, { 'Docker-Distribution-API-Version': 'registry/2.0', 'content-type': 'application/json' });
      return res.end('{}');
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url);
    const entry = m ? [...served.entries()].find(([name]) => name.startsWith(`${m[1]}:`) || name === m[1]) : undefined;
    if (!m || !entry) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"not here"}]}');
    }
    const [, repo, kind, ref] = m;
    let body: Buffer | undefined;
    let type = 'application/octet-stream';
    if (kind === 'manifests') {
      const s = served.get(`${repo}:${ref}`) ?? [...served.values()].find((v) => sha(v.manifest) === ref);
      body = s?.manifest;
      type = 'application/vnd.docker.distribution.manifest.v2+json';
    } else {
      for (const s of served.values()) body ??= s.blobs.get(ref);
    }
    if (!body) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'Docker-Content-Digest': sha(body) });
    return res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const host = `127.0.0.1:${port}`;
  return {
    host,
    requests,
    async add(image, repo, tag) {
      const files = await saved(docker, image);
      const [desc] = JSON.parse(files.get('manifest.json')!.toString('utf8')) as Array<{ Config: string; Layers: string[] }>;
      const config = files.get(desc.Config)!;
      const blobs = new Map<string, Buffer>([[sha(config), config]]);
      const layers = desc.Layers.map((l) => {
        const gz = gzipSync(files.get(l)!);
        blobs.set(sha(gz), gz);
        return { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: gz.length, digest: sha(gz) };
      });
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha(config) },
        layers,
      }));
      served.set(`${repo}:${tag}`, { manifest, blobs });
      return `${host}/${repo}:${tag}`;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
