/**
 * `npm run bundle`: fleetd and the fleet CLI as single CommonJS files for Node 20, so the AMI
 * needs no `npm install` (packer/ copies dist/bundle/ to /opt/fleetd).
 *
 *   daemon/src/main.ts → dist/bundle/fleetd.js (+ .map): one CommonJS file (the AMI's)
 *   daemon/src/instance-tags-child.ts → dist/bundle/fleetd-ec2.js: fleetd's EC2 tag helper
 *                        process (the only holder of @aws-sdk/client-ec2; issue #18), beside it
 *   scripts/fleet-bundle.ts → dist/bundle/fleet.mjs (+ fleet-*-<hash>.mjs chunks, + .maps): ES modules split
 *                        at each command's `await import` (scripts/cli/program.ts), so `fleet
 *                        --help` reads and compiles only the small entry chunk and a command loads
 *                        only the AWS clients it calls (issue #18: 0.95 s → see docs/benchmarks.md).
 *                        A `require`, `__dirname` and `__filename` for the CommonJS code inside
 *                        come from a banner (createRequire, import.meta.url); chunks sit beside the
 *                        entry so `__dirname` is the same in each. The entry is
 *                        scripts/fleet-bundle.ts: `status` and `list` go to fleet-read.cjs.
 *   bin/fleet.js's sh lines → dist/bundle/fleet: the standalone CLI's launcher (run it as
 *                        `dist/bundle/fleet …`): sh defers NODE_EXTRA_CA_CERTS to the CLI's first
 *                        TLS connection (scripts/cli/deferred-ca.ts), then node runs fleet.mjs.
 *   scripts/fleet.ts   → dist/bundle/fleet-read.cjs (+ .map): the same program as one CommonJS file
 *                        for `fleet status` and `fleet list`, run with a V8 code cache
 *                        (scripts/cli/code-cache.ts, read-bundle.ts): the other commands' modules
 *                        are stubs, `import()`s of built-ins are `require`s (format 'cjs-cached').
 *
 * What is not inside the bundle, and why that is safe:
 * - Node built-ins (platform node).
 * - `cpu-features` and every `*.node` addon. docker-modem requires ssh2 at load time (for
 *   ssh:// DOCKER_HOST); ssh2 loads `cpu-features` and its own `sshcrypto.node` inside
 *   try/catch and falls back to pure JS. Bundling them is impossible (native code), and
 *   leaving them out only loses that optional speed-up.
 * - Three transport modules of dockerode / docker-modem that fleetd never reaches, replaced by
 *   stubs that throw when called (OMITTED_MODULES): BuildKit sessions and BuildKit progress
 *   decoding (`buildImage` with `version: '2'`: @grpc/grpc-js, protobufjs and the .proto files)
 *   and ssh:// engines (ssh2, its crypto). fleetd builds no images and reaches dockerd over a
 *   Unix socket or tcp:// (daemon/src/docker.ts). Each costs heap at start-up when bundled
 *   (docker-modem and dockerode require them at load time): issue #18, docs/benchmarks.md.
 * Anything else the build would leave unresolved is a build error, and the script fails.
 */
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { READ_BUNDLE_MODULES, READ_BUNDLE_OMITTED } from './cli/read-bundle';

const ROOT = path.resolve(__dirname, '..');

export const BUNDLE_DIR = path.join(ROOT, 'dist', 'bundle');

export interface BundleEntry {
  /** Output name: `<name>.js` (cjs) or `<name>.mjs` (esm-split) in the bundle directory. */
  readonly name: string;
  /** Source file, relative to the repository root. */
  readonly source: string;
  /**
   * 'cjs': one file. 'esm-split': ES modules split at dynamic imports (lazy commands).
   * 'cjs-cached': one CommonJS `<name>.cjs` for the CLI's code-cache loader (scripts/cli/code-cache.ts):
   * built as the CLI's ES modules are (the SDK's `module` builds, English-only zod), no `import()`
   * left, and READ_BUNDLE_OMITTED's command modules stubbed. @default 'cjs'
   */
  readonly format?: 'cjs' | 'esm-split' | 'cjs-cached';
  /**
   * Packages this entry must never load, replaced by a stub that throws BundleOmittedError on
   * use: what another entry does instead (fleetd's EC2 calls are its helper's). cjs only.
   */
  readonly omitPackages?: readonly string[];
}

/**
 * What goes onto an instance: fleetd, and its EC2 tag helper (daemon/src/instance-tags.ts), which
 * fleetd forks from its own directory, so the two always sit side by side.
 */
export const FLEETD_ENTRIES: readonly BundleEntry[] = [
  // EC2 is its helper's; SSM (the cancel document is sent by the CLI) and CloudWatch metrics are never called by fleetd.
  { name: 'fleetd', source: 'daemon/src/main.ts', omitPackages: ['@aws-sdk/client-ec2', '@aws-sdk/client-ssm', '@aws-sdk/client-cloudwatch'] },
  {
    name: 'fleetd-ec2',
    source: 'daemon/src/instance-tags-child.ts',
    // Reachable through aws.ts's lazy `sdk` table, never called by the helper: 3 MB less to read.
    omitPackages: [
      '@aws-sdk/client-sqs', '@aws-sdk/client-dynamodb', '@aws-sdk/lib-dynamodb', '@aws-sdk/client-s3', '@aws-sdk/client-auto-scaling',
      '@aws-sdk/client-secrets-manager', '@aws-sdk/client-ssm', '@aws-sdk/client-sts', '@aws-sdk/client-ecr', '@aws-sdk/client-cloudwatch', '@aws-sdk/client-kms',
    ],
  },
];

/** The standalone CLI: fleet.mjs (+ chunks) and the read bundle it runs `status` and `list` from. */
export const CLI_ENTRIES: readonly BundleEntry[] = [
  { name: 'fleet', source: 'scripts/fleet-bundle.ts', format: 'esm-split' },
  { name: 'fleet-read', source: 'scripts/fleet.ts', format: 'cjs-cached' },
];

export const BUNDLE_ENTRIES: readonly BundleEntry[] = [...FLEETD_ENTRIES, ...CLI_ENTRIES];

/** CommonJS code inside an ES module bundle needs these three (see the header). */
const ESM_BANNER = [
  "import { createRequire as __fleetCreateRequire } from 'node:module';",
  "import { fileURLToPath as __fleetFileURLToPath } from 'node:url';",
  "import { dirname as __fleetDirname } from 'node:path';",
  'const require = __fleetCreateRequire(import.meta.url);',
  'const __filename = __fleetFileURLToPath(import.meta.url);',
  'const __dirname = __fleetDirname(__filename);',
].join('\n');

/**
 * The CLI bundle: zod's error-message locales but English (`z.locales` is 364 KB of 40 languages
 * that every command would read and compile at start-up; the contract's messages are English and
 * nothing calls `z.locales`): `fleet status` −30 ms CPU (docs/benchmarks.md, "CLI start-up").
 */
const ZOD_ENGLISH_ONLY: Plugin = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]/.test(args.importer) ? { path: path.join(path.dirname(args.importer), '..', 'locales', 'index.js'), namespace: 'zod-english-only' } : undefined);
    b.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, (args) =>
      ({ contents: `export { default as en } from ${JSON.stringify(path.join(path.dirname(args.path), 'en.js'))};`, resolveDir: path.dirname(args.path) }));
  },
};

/**
 * fleetd: docker-modem formats a debug line for every engine request, `util.inspect(options,
 * { showHidden: true, depth: null })`, whether or not DEBUG enables its logger: 1.4 % of fleetd's
 * busy CPU under load (issue #18, docs/benchmarks.md "Throughput"). The bundle guards that one
 * call with the logger's own `enabled` flag (debug's API); DEBUG=modem still prints it. A
 * docker-modem whose text no longer matches fails the build, so the patch is never silently lost.
 */
export const DOCKER_MODEM_REQUEST_LOG = "debug('Sending: %s', util.inspect(options, {";
const DOCKER_MODEM_LAZY_DEBUG: Plugin = {
  name: 'docker-modem-lazy-debug',
  setup(b) {
    b.onLoad({ filter: /[\\/]docker-modem[\\/]lib[\\/]modem\.js$/ }, async (args) => {
      const text = await fs.promises.readFile(args.path, 'utf8');
      if (!text.includes(DOCKER_MODEM_REQUEST_LOG)) throw new Error(`bundle: ${args.path} no longer contains ${DOCKER_MODEM_REQUEST_LOG} (scripts/bundle.ts DOCKER_MODEM_LAZY_DEBUG)`);
      return { contents: text.replace(DOCKER_MODEM_REQUEST_LOG, `debug.enabled && ${DOCKER_MODEM_REQUEST_LOG}`), loader: 'js' };
    });
  },
};

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/**
 * The read bundle: `import("node:http")` (the SDK's HTTP handler) becomes a `require`. In Node 20 a
 * function restored from a V8 code cache has lost vm's dynamic-import callback, and `import()`
 * there fails with ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING (bundle() also checks none is left).
 */
const BUILTIN_IMPORTS_AS_REQUIRE: Plugin = {
  name: 'builtin-imports-as-require',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => (args.kind === 'dynamic-import' && BUILTINS.has(args.path) ? { path: args.path, namespace: 'builtin-require' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'builtin-require' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/** The read bundle: program.ts's imports of the commands it never runs become throwing stubs (scripts/cli/read-bundle.ts). */
const READ_BUNDLE_STUBS: Plugin = {
  name: 'read-bundle-stubs',
  setup(b) {
    const requests = new Set<string>(READ_BUNDLE_OMITTED);
    b.onResolve({ filter: /^\.\/[a-z-]+$/ }, (args) =>
      requests.has(args.path) && /[\\/]scripts[\\/]cli[\\/]program\.ts$/.test(args.importer) ? { path: `scripts/cli/${args.path.slice(2)}`, namespace: 'omitted', pluginData: omittedPackageSource(`scripts/cli/${args.path.slice(2)}.ts`, 'fleet-read.cjs runs status and list only: scripts/cli/read-bundle.ts') } : undefined);
  },
};

/**
 * The read bundle: program.ts's `import()`s of the modules status and list run (READ_BUNDLE_MODULES)
 * become static imports. esbuild wraps the target of an `import()` (and all it imports) in lazy
 * initializers, and keeps a wrapped package whole: the DynamoDB client with all ~65 of its commands
 * and their schemas, built at every start. Imported statically, they are tree-shaken like the rest.
 * A program.ts without one of these `import()`s fails the build, so the change is never silently lost.
 */
const READ_BUNDLE_STATIC_IMPORTS: Plugin = {
  name: 'read-bundle-static-imports',
  setup(b) {
    b.onLoad({ filter: /[\\/]scripts[\\/]cli[\\/]program\.ts$/ }, async (args) => {
      let text = await fs.promises.readFile(args.path, 'utf8');
      const head: string[] = [];
      READ_BUNDLE_MODULES.forEach((m, i) => {
        const call = `import('${m}')`;
        if (!text.includes(call)) throw new Error(`bundle: ${args.path} no longer contains ${call} (scripts/bundle.ts READ_BUNDLE_STATIC_IMPORTS)`);
        text = text.split(call).join(`Promise.resolve(__fleetReadModule${i})`);
        head.push(`import * as __fleetReadModule${i} from '${m}';`);
      });
      return { contents: `${head.join(' ')}${text}`, loader: 'ts' };
    });
  },
};

/** Optional native modules left out of the bundle (see the header). */
export const OPTIONAL_NATIVE_EXTERNALS: readonly string[] = ['cpu-features', '*.node'];

/**
 * Modules replaced by a stub in the bundles (see the header): `importer` is the requiring
 * file's path inside node_modules, `request` the path it requires. The stub has the module's
 * shape and throws BundleOmittedError naming what is missing, so a future caller fails loudly.
 */
export const OMITTED_MODULES: readonly { importer: string; request: string; shape: 'function' | 'followProgress'; what: string }[] = [
  { importer: 'dockerode/lib/docker.js', request: './session', shape: 'function', what: 'BuildKit sessions (dockerode buildImage with version 2)' },
  { importer: 'dockerode/lib/docker.js', request: './buildkit', shape: 'followProgress', what: 'BuildKit progress decoding' },
  { importer: 'docker-modem/lib/modem.js', request: './ssh', shape: 'function', what: 'ssh:// Docker engines (ssh2)' },
];

function omittedModuleSource(m: (typeof OMITTED_MODULES)[number]): string {
  const thrower = `function () { const e = new Error(${JSON.stringify(`${m.what}: left out of this bundle (scripts/bundle.ts OMITTED_MODULES)`)}); e.name = 'BundleOmittedError'; throw e; }`;
  return m.shape === 'function' ? `module.exports = ${thrower};` : `module.exports = { followProgress: ${thrower} };`;
}

/** A whole package left out of one entry: any property read throws (interop probes excepted). */
function omittedPackageSource(pkg: string, why = 'scripts/bundle.ts omitPackages'): string {
  const message = JSON.stringify(`${pkg}: left out of this bundle entry (${why})`);
  return `module.exports = new Proxy({}, { get(_, key) { if (typeof key !== 'string' || key === '__esModule' || key === 'then') return undefined; const e = new Error(${message}); e.name = 'BundleOmittedError'; throw e; } });`;
}

function omitModules(omitPackages: readonly string[] = []): Plugin {
  const escape = (p: string) => p.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  return {
    name: 'omit-modules',
    setup(b) {
      b.onResolve({ filter: /^\.\/(session|buildkit|ssh)$/ }, (args) => {
        const m = OMITTED_MODULES.find((o) => args.path === o.request && args.importer.replace(/\\/g, '/').endsWith(`node_modules/${o.importer}`));
        return m ? { path: `${m.importer}:${m.request}`, namespace: 'omitted', pluginData: omittedModuleSource(m) } : undefined;
      });
      if (omitPackages.length) {
        b.onResolve({ filter: new RegExp(`^(${omitPackages.map(escape).join('|')})$`) }, (args) => ({ path: args.path, namespace: 'omitted', pluginData: omittedPackageSource(args.path) }));
      }
      b.onLoad({ filter: /.*/, namespace: 'omitted' }, (args) => ({ contents: args.pluginData as string, loader: 'js' }));
    },
  };
}

/**
 * The commit the bundle is built from, for `--version` and the instance row (daemon/src/version.ts):
 * `FLEET_BUILD_COMMIT` when the caller gives it, else `git rev-parse HEAD` (`-dirty` when the
 * working tree has changes), else undefined (no git: the bundle says "unknown").
 */
export function buildCommit(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.FLEET_BUILD_COMMIT?.trim()) return env.FLEET_BUILD_COMMIT.trim();
  const git = (...args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  const head = git('rev-parse', 'HEAD');
  if (head.status !== 0 || !/^[0-9a-f]{40}$/.test(head.stdout.trim())) return undefined;
  const dirty = git('status', '--porcelain', '--untracked-files=no');
  return `${head.stdout.trim()}${dirty.status === 0 && dirty.stdout.trim() ? '-dirty' : ''}`;
}

export function bundleOptions(entries: readonly BundleEntry[], outdir: string, commit = buildCommit()): BuildOptions {
  const esm = entries.some((e) => e.format === 'esm-split');
  // The CLI's two builds (esm-split and cjs-cached) resolve and trim the SDK and zod alike.
  const cachedCjs = entries.some((e) => e.format === 'cjs-cached');
  const cli = esm || cachedCjs;
  if (esm && entries.some((e) => e.format !== 'esm-split')) throw new Error('bundle: cjs and esm-split entries are built separately (bundle() groups them)');
  if ((entries.some((e) => e.omitPackages?.length) || cachedCjs) && entries.length > 1) throw new Error('bundle: an entry with omitPackages or format cjs-cached is built on its own (bundle() groups them)');
  return {
    absWorkingDir: ROOT,
    entryPoints: Object.fromEntries(entries.map((e) => [e.name, path.resolve(ROOT, e.source)])),
    outdir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: esm ? 'esm' : 'cjs',
    ...(esm ? { splitting: true, outExtension: { '.js': '.mjs' }, chunkNames: 'fleet-[name]-[hash]', banner: { js: ESM_BANNER } } : {}),
    ...(cachedCjs ? { outExtension: { '.js': '.cjs' } } : {}),
    // The CLI: the AWS SDK's ES module builds (dist-es, `module`), as AWS advises for bundling:
    // they tree-shake, and the credential chain's providers stay behind their `import()`s (own
    // chunks, read only when used). `fleet status`: 2.3 → 1.9 MB of chunks read (docs/benchmarks.md).
    ...(cli ? { mainFields: ['module', 'main'] } : {}),
    sourcemap: 'linked',
    // Mappings and names only: fleetd parses its map when it formats a stack (stack-source-map.ts)
    // and holds it a while; the sources' text in it would cost ~20 MiB of RSS then (issue #18).
    sourcesContent: false,
    // fleetd (cjs; the CLI's read bundle too): V8 keeps a script's source text for lazy compilation, so whitespace is heap
    // for the daemon's whole life (4.4 -> 3.2 MB, ~4.5 MiB of heap). Stack traces go through the
    // source map. Identifiers are kept (keepNames, readable logs).
    ...(esm ? {} : { minifyWhitespace: true }),
    // Typed error classes and log lines rely on constructor names.
    keepNames: true,
    external: [...OPTIONAL_NATIVE_EXTERNALS],
    // The CLI drops zod's locales; each entry leaves out what it never calls (omitPackages).
    plugins: [...(cli ? [ZOD_ENGLISH_ONLY] : [DOCKER_MODEM_LAZY_DEBUG]), ...(cachedCjs ? [BUILTIN_IMPORTS_AS_REQUIRE, READ_BUNDLE_STUBS, READ_BUNDLE_STATIC_IMPORTS] : []), omitModules(entries[0]?.omitPackages)],
    // The build's commit, fixed in the bundle (daemon/src/version.ts); left to the environment when unknown.
    ...(commit ? { define: { 'process.env.FLEET_BUILD_COMMIT': JSON.stringify(commit) } } : {}),
    metafile: true,
    logLevel: 'warning',
  };
}

/** Imports the bundle leaves to run time that are neither built-ins nor allowed optional natives. */
export function unexpectedExternals(metafile: Metafile): string[] {
  const optional = (p: string) =>
    OPTIONAL_NATIVE_EXTERNALS.some((x) => (x.startsWith('*') ? p.endsWith(x.slice(1)) : p === x));
  const found = new Set<string>();
  for (const output of Object.values(metafile.outputs)) {
    for (const imp of output.imports) {
      if (imp.external && !BUILTINS.has(imp.path) && !optional(imp.path)) found.add(imp.path);
    }
  }
  return [...found].sort();
}

/** `import()`s left in an output: a code-cached bundle cannot run them in Node 20 (see BUILTIN_IMPORTS_AS_REQUIRE). */
export function dynamicImportsLeft(metafile: Metafile): string[] {
  return [...new Set(Object.values(metafile.outputs).flatMap((o) => o.imports.filter((i) => i.kind === 'dynamic-import').map((i) => i.path)))].sort();
}

export interface BundleResult {
  readonly files: string[];
  readonly seconds: number;
}

export async function bundle(entries: readonly BundleEntry[] = BUNDLE_ENTRIES, outdir = BUNDLE_DIR): Promise<BundleResult> {
  const missing = entries.filter((e) => !fs.existsSync(path.resolve(ROOT, e.source)));
  if (missing.length > 0) {
    const list = missing.map((e) => `${e.source} (for ${e.name}.js)`).join(', ');
    throw new Error(
      `bundle: missing entry point(s): ${list}. Expected these sources to exist; they are written by ` +
        `the fleetd / CLI work. Nothing was built.`,
    );
  }
  const started = Date.now();
  fs.rmSync(outdir, { recursive: true, force: true });
  // Each cjs entry on its own (its own omitted packages); the esm-split entries together (shared chunks).
  const groups = [...entries.filter((e) => e.format !== 'esm-split').map((e) => [e]), entries.filter((e) => e.format === 'esm-split')].filter((g) => g.length > 0);
  const outputs: string[] = [];
  for (const group of groups) {
    const result = await build(bundleOptions(group, outdir));
    const unexpected = unexpectedExternals(result.metafile!);
    if (unexpected.length > 0) {
      throw new Error(`bundle: imports left external that the instance would not have: ${unexpected.join(', ')}`);
    }
    const dynamic = group[0].format === 'cjs-cached' ? dynamicImportsLeft(result.metafile!) : [];
    if (dynamic.length > 0) throw new Error(`bundle: ${group[0].name}.cjs runs with a code cache and must not use import(): ${dynamic.join(', ')}`);
    outputs.push(...Object.keys(result.metafile!.outputs));
  }
  if (entries.some((e) => e.name === 'fleet')) outputs.push(writeCliLauncher(outdir));
  const files = outputs.map((f) => path.relative(ROOT, path.resolve(ROOT, f)));
  return { files, seconds: (Date.now() - started) / 1000 };
}

/** The standalone CLI's launcher, beside fleet.mjs. */
export const CLI_LAUNCHER = 'fleet';

/**
 * Writes dist/bundle/fleet: bin/fleet.js's first line and sh lines (the `':' //;` ones: sh runs
 * them, node reads them as comments), then node's part, fleet.mjs beside it. One source for the
 * sh part: bin/fleet.js. No extension and no package.json here, so node runs it as CommonJS.
 */
function writeCliLauncher(outdir: string): string {
  const bin = fs.readFileSync(path.join(ROOT, 'bin', 'fleet.js'), 'utf8').split('\n');
  const shLines = bin.filter((line, i) => i === 0 || line.startsWith("':' //;"));
  if (shLines[0] !== '#!/bin/sh' || !shLines.some((l) => l.includes('exec node "$0"'))) throw new Error('bundle: bin/fleet.js no longer starts with the sh launcher this build copies (#!/bin/sh, then \':\' //; lines ending in exec node "$0")');
  const file = path.join(outdir, CLI_LAUNCHER);
  const node = "import(require('node:url').pathToFileURL(require('node:path').join(__dirname, 'fleet.mjs')).href);";
  fs.writeFileSync(file, [...shLines, '// The standalone fleet CLI (scripts/bundle.ts): fleet.mjs beside this file.', node, ''].join('\n'), { mode: 0o755 });
  return file;
}

async function main(): Promise<void> {
  const { files, seconds } = await bundle();
  for (const f of files) {
    console.log(`${f}  ${(fs.statSync(path.join(ROOT, f)).size / 1024).toFixed(0)} KiB`);
  }
  console.log(`bundle: ${files.length} files in ${path.relative(ROOT, BUNDLE_DIR)}/ (${seconds.toFixed(1)} s)`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
