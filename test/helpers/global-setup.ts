/**
 * Jest global setup for the integration project: brings the local stack up when it is not
 * running (idempotent, ~10 s cold, well under a second warm). Tests then read .fleet/local.env.
 */
import '../../daemon/src/quiet-sdk-warning';
import { status, up } from '../../scripts/dev/local/stack';

export default async function globalSetup(): Promise<void> {
  const s = await status();
  // Tests start their own intake runners (one per test fleet).
  if (s.components.filter((c) => c.neededByTests !== false).every((c) => c.up)) return;
  await up();
}
