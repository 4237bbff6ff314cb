'use strict';
// Runs a bundled build when one sits beside this file (dist/bundle/<name>), else the TypeScript
// source through tsx's CommonJS register hook. No shell is involved.
const fs = require('node:fs');
const path = require('node:path');

exports.launch = function launch(sourceRelative, bundleName) {
  const bundle = path.join(__dirname, '..', 'dist', 'bundle', bundleName);
  if (fs.existsSync(bundle)) {
    require(bundle);
    return;
  }
  require('tsx/cjs');
  require(path.join(__dirname, '..', sourceRelative));
};
