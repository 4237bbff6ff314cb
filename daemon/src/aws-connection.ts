/**
 * An SDK client's connection settings, apart from aws.ts so that a client made on its own (the
 * CLI's read path, scripts/cli/read-context.ts) takes them without aws.ts's table of every SDK
 * package.
 */
import type { Agent as HttpsAgent } from 'node:https';

/** Requests over HTTPS go through `httpsAgent` when given (the CLI's: scripts/cli/deferred-ca.ts), else the SDK's own agent. */
export function connectionConfig(httpsAgent?: HttpsAgent): { requestHandler?: { httpsAgent: HttpsAgent } } {
  return httpsAgent ? { requestHandler: { httpsAgent } } : {};
}
