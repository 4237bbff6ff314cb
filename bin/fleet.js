#!/usr/bin/env node
// fleet CLI entry; see bin/launch.js.
require('./launch').launch('scripts/fleet.ts', 'fleet.mjs', { dynamicImports: true });
