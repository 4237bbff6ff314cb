/**
 * The fleet CLI is a short process that parses a handful of records: zod's JIT (an object
 * schema compiles a parser with `new Function` on its first parse) costs more than it saves
 * there (`fleet status`: 3.1 → 1.2 ms in parseTaskRecord; docs/benchmarks.md, "CLI start-up").
 * zod reads `jitless` when a schema is built, so scripts/fleet.ts imports this before anything
 * that builds one. Validation is the same either way; fleetd, a long-lived process, keeps the JIT.
 */
import { config } from 'zod';

config({ jitless: true });
