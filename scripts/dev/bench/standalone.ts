/**
 * How a bench phase runs on its own (`npx tsx scripts/dev/bench/<phase>.ts`): exit 0 when its
 * main resolves, otherwise print why (stack included) and exit 1.
 */
export function runStandalone(phase: string, main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`${phase} bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exit(1);
    },
  );
}
