/**
 * The environment variable names a task spec may give (spec.ts validates them with these). A
 * module of its own, without zod, so that the CLI's option parsing (scripts/cli/parse.ts) does not
 * build every spec schema at start-up: `fleet status` and `fleet list` never read a spec
 * (docs/benchmarks.md, "CLI start-up"). spec.ts re-exports all of it.
 */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Names fleetd sets itself; a spec may not override them. */
export const RESERVED_ENV_NAMES = ['TASK_ID', 'AGENT_PAYLOAD'] as const;
export const RESERVED_ENV_PREFIXES = ['FLEET_', 'AWS_'] as const;

export function isReservedEnvName(name: string): boolean {
  return (
    (RESERVED_ENV_NAMES as readonly string[]).includes(name) ||
    RESERVED_ENV_PREFIXES.some((p) => name.startsWith(p))
  );
}
