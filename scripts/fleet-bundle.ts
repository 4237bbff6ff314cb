/**
 * dist/bundle/fleet.mjs, the standalone CLI's entry (scripts/bundle.ts): `fleet status` and
 * `fleet list` run the CommonJS read bundle with a V8 code cache (scripts/cli/read-bundle.ts,
 * scripts/cli/code-cache.ts); every other command imports the program from its ES module chunks.
 * A checkout runs scripts/fleet.ts directly (bin/fleet.js), without either.
 */
import * as path from 'node:path';
import { runWithCodeCache } from './cli/code-cache';
import { readBundleCommand } from './cli/read-bundle';

const command = readBundleCommand(process.argv.slice(2));
if (command) runWithCodeCache(path.join(__dirname, 'fleet-read.cjs'), `fleet-${command}`);
else void import('./fleet');
