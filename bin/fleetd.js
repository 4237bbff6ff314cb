#!/usr/bin/env node
// fleetd entry. Production runs the esbuild bundle (packer/); a checkout runs the TypeScript
// source through tsx so `npx fleetd` works without a build step.
require('./launch').launch('daemon/src/main.ts', 'fleetd.js');
