/**
 * NODE_EXTRA_CA_CERTS, honoured at the CLI's first TLS connection rather than at node's start.
 *
 * Node parses the file named by NODE_EXTRA_CA_CERTS, with its own root store, as it starts and
 * before any script runs: ~45 ms of every `fleet` command on a machine that sets it (these do, to
 * the system bundle), paid by `--help`, by usage errors and by every command against a plain-http
 * endpoint (the local stack) alike (docs/benchmarks.md "CLI start-up"). The AWS CLI reads its CA
 * bundle only for an HTTPS connection; so does `fleet` now:
 *
 * 1. bin/fleet.js is run by sh first. It moves the variable to DEFERRED_EXTRA_CA_ENV and starts
 *    node without it (not when NODE_OPTIONS picks another root store: --use-openssl-ca,
 *    --use-system-ca, whose store this module could not rebuild).
 * 2. `takeDeferredExtraCa` (scripts/fleet.ts, before anything else) takes that name back and
 *    restores NODE_EXTRA_CA_CERTS for child processes.
 * 3. The AWS clients get `extraCaHttpsAgent`: on its first TLS connection it reads the file and
 *    builds the store node would have built (its bundled roots plus the file's certificates),
 *    once; every later connection reuses it. An unreadable file is warned about and ignored,
 *    as node itself does.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';

/** Set by bin/fleet.js: the NODE_EXTRA_CA_CERTS node was started without. */
export const DEFERRED_EXTRA_CA_ENV = 'FLEET_DEFERRED_NODE_EXTRA_CA_CERTS';
const NODE_EXTRA_CA_ENV = 'NODE_EXTRA_CA_CERTS';

let deferred: string | undefined;

/**
 * Takes the deferred file name out of the environment (once, at the CLI's start) and gives
 * NODE_EXTRA_CA_CERTS back to the environment child processes inherit. Returns the file name.
 */
export function takeDeferredExtraCa(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = env[DEFERRED_EXTRA_CA_ENV];
  if (file === undefined) return deferred;
  delete env[DEFERRED_EXTRA_CA_ENV];
  if (file === '') return deferred;
  env[NODE_EXTRA_CA_ENV] ??= file;
  deferred = file;
  return file;
}

/** The trust store node builds for NODE_EXTRA_CA_CERTS=file; undefined (node's default, with a warning) when the file cannot be read. */
export function secureContextWithExtraCa(file: string, warn: (line: string) => void): tls.SecureContext | undefined {
  let extra: string;
  try {
    extra = fs.readFileSync(file, 'utf8');
  } catch (err) {
    // Node's own words for the same failure at start-up.
    const why = typeof err === 'object' && err !== null && 'message' in err ? String(err.message) : String(err);
    warn(`Warning: Ignoring extra certs from \`${file}\`, load failed: ${why}`);
    return undefined;
  }
  return tls.createSecureContext({ ca: [...tls.rootCertificates, extra] });
}

/** An https.Agent (the SDK's defaults: keep-alive, 50 sockets) that trusts `file` too, read at its first TLS connection. */
export class ExtraCaHttpsAgent extends https.Agent {
  private context: tls.SecureContext | undefined | null = null;

  constructor(
    readonly caFile: string,
    private readonly warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {
    super({ keepAlive: true, maxSockets: 50 });
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    if (this.context === null) this.context = secureContextWithExtraCa(this.caFile, this.warn);
    // https.Agent hands its options to tls.connect, which takes a ready `secureContext`.
    return super.createConnection(this.context ? ({ ...options, secureContext: this.context } as https.RequestOptions) : options, callback);
  }
}

let agent: ExtraCaHttpsAgent | undefined;

/** The agent for the AWS clients when bin/fleet.js deferred the extra CAs; undefined otherwise (the SDK's own). */
export function extraCaHttpsAgent(): https.Agent | undefined {
  const file = takeDeferredExtraCa();
  if (file === undefined) return undefined;
  return (agent ??= new ExtraCaHttpsAgent(file));
}
