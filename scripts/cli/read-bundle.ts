/**
 * The CLI bundle's fast path for its two most-run commands (issue #18; docs/benchmarks.md,
 * "CLI start-up"): `fleet status` and `fleet list` run from dist/bundle/fleet-read.cjs, the same
 * program (scripts/fleet.ts) as one CommonJS file with a V8 code cache (code-cache.ts). The
 * modules of the other commands are left out of that file (scripts/bundle.ts replaces them with
 * stubs that throw), so it stays small: 1.7 MB instead of 7.6 MB, which is what makes the cache
 * pay. Everything else runs from the ES module bundle as before.
 */

/** Commands the read bundle runs. Their modules (read-context, tasks) must stay out of READ_BUNDLE_OMITTED. */
export const READ_BUNDLE_COMMANDS = ['status', 'list'] as const;
export type ReadBundleCommand = (typeof READ_BUNDLE_COMMANDS)[number];

/**
 * program.ts's lazily imported modules that the read commands run. The read bundle imports them
 * statically (scripts/bundle.ts READ_BUNDLE_STATIC_IMPORTS): an `import()` of a bundled module makes
 * esbuild wrap it and everything it imports in lazy initializers, and a wrapped package is kept
 * whole (every one of client-dynamodb's ~65 commands and their schemas was built at start-up).
 */
export const READ_BUNDLE_MODULES = ['./read-context', './tasks'] as const;

/** program.ts's lazily imported command modules that no read command reaches. */
export const READ_BUNDLE_OMITTED = ['./config', './submit', './watch', './logs', './artifacts', './cancel', './instances', './operate', './rollout'] as const;

/** Options that answer without running the command. */
const ANSWERED_BY_THE_PROGRAM = new Set(['-h', '--help', '-V', '--version']);

/**
 * The read command `args` (argv without node and the script) runs, if any: the first word that is
 * not the global option `--env-file FILE`. Anything else (`--help`, `-V`, `help status`, an
 * unknown word, a missing value) is the full program's to parse; so is `status --help`: a run
 * that exits 0 without reading would leave a code cache without the read path's functions in it,
 * and every later run would take that cache (code-cache.ts writes it after the first success).
 */
export function readBundleCommand(args: readonly string[]): ReadBundleCommand | undefined {
  if (args.some((a) => ANSWERED_BY_THE_PROGRAM.has(a))) return undefined;
  let i = 0;
  while (i < args.length && args[i].startsWith('--env-file')) {
    if (args[i] === '--env-file') i += 2;
    else if (args[i].startsWith('--env-file=')) i += 1;
    else return undefined;
  }
  const word = args[i];
  return (READ_BUNDLE_COMMANDS as readonly string[]).includes(word) ? (word as ReadBundleCommand) : undefined;
}
