'use strict';
// In a checkout: the TypeScript sources, run through tsx's CommonJS register hook (no build
// step, never a stale build). Without the sources (a packaged copy): the esbuild bundle in
// dist/bundle/<name>. On the AMI, /usr/local/bin/fleetd runs /opt/fleetd/fleetd.js directly.
const fs = require('node:fs');
const path = require('node:path');

exports.launch = function launch(sourceRelative, bundleName, options = {}) {
  const source = path.join(__dirname, '..', sourceRelative);
  if (fs.existsSync(source)) {
    require('tsx/cjs');
    if (!options.dynamicImports) {
      require(source);
      return;
    }
    // The CLI imports each command's module with `await import()` (lazy loading, issue #18):
    // tsx's ES module hooks resolve those extensionless TypeScript paths. (Its CommonJS entry
    // of the same API fails to load in tsx 4, so the ES one, asynchronously.)
    return void import('tsx/esm/api').then(({ register }) => {
      register();
      require(source);
    });
  }
  const bundle = path.join(__dirname, '..', 'dist', 'bundle', bundleName);
  // fleet.mjs is an ES module (split at each command's import); fleetd.js is CommonJS.
  if (bundle.endsWith('.mjs')) return void import(require('node:url').pathToFileURL(bundle).href);
  require(bundle);
};
