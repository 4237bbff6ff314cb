'use strict';
// In a checkout: the TypeScript sources, run through tsx's CommonJS register hook (no build
// step, never a stale build). Without the sources (a packaged copy): the esbuild bundle in
// dist/bundle/<name>. On the AMI, /usr/local/bin/fleetd runs /opt/fleetd/fleetd.js directly.
const fs = require('node:fs');
const path = require('node:path');

exports.launch = function launch(sourceRelative, bundleName) {
  const source = path.join(__dirname, '..', sourceRelative);
  if (fs.existsSync(source)) {
    require('tsx/cjs');
    require(source);
    return;
  }
  require(path.join(__dirname, '..', 'dist', 'bundle', bundleName));
};
