/**
 * The AWS SDK v3 prints a NodeVersionSupportWarning on Node 20 at the first client call. The
 * fleet runs on Node 20 with the SDK pinned (see package-lock.json and the README), so the
 * warning tells an operator nothing; every entry point imports this first to drop only it.
 */
const original = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === 'string' ? warning : warning.message;
  if (text.startsWith('NodeVersionSupportWarning')) return;
  (original as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;
