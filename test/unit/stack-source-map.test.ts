/**
 * stack-source-map.ts in a real bundle: esbuild builds a small entry with the same map settings
 * as scripts/bundle.ts (linked, no sourcesContent, whitespace-minified), and a node child runs
 * it, as fleetd's bundle runs on an instance (no --enable-source-maps).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { LazySourceMap } from '../../daemon/src/stack-source-map';

const MODULE = path.resolve(__dirname, '../../daemon/src/stack-source-map.ts');

/** Line 6 is the throw; the entry prints what the stack said, or crashes when `CRASH` is set. */
const ENTRY = `import { installStackSourceMap } from ${JSON.stringify(MODULE)};
const installed = installStackSourceMap(__filename);

function failDeep(): never {
  const why = 'boom from the source';
  throw new Error(why);
}

if (process.env.CRASH) failDeep();
try {
  failDeep();
} catch (err) {
  console.log(JSON.stringify({ installed, stack: (err as Error).stack }));
}
`;

function bundleEntry(): { dir: string; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-map-'));
  fs.writeFileSync(path.join(dir, 'entry.ts'), ENTRY);
  const out = path.join(dir, 'out', 'bundle.js');
  buildSync({ entryPoints: [path.join(dir, 'entry.ts')], bundle: true, platform: 'node', format: 'cjs', sourcemap: 'linked', sourcesContent: false, minifyWhitespace: true, keepNames: true, outfile: out, logLevel: 'silent' });
  return { dir, out };
}

function run(out: string): { installed: boolean; stack: string } {
  return JSON.parse(execFileSync(process.execPath, [out], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })) as { installed: boolean; stack: string };
}

describe('stack traces through the bundle map, read on demand', () => {
  let dir: string;
  let out: string;
  beforeAll(() => ({ dir, out } = bundleEntry()));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('names the TypeScript source and line of each bundled frame', () => {
    // Act
    const { installed, stack } = run(out);

    // Assess
    expect(installed).toBe(true);
    expect(stack.split('\n')[0]).toBe('Error: boom from the source');
    expect(stack).toMatch(/at failDeep \(\S*entry\.ts:6:\d+\)/);
    expect(stack).not.toContain(`${out}:`);
  });

  it('maps the report of an uncaught exception too', () => {
    // Act
    const crash = spawnSync(process.execPath, [out], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '', CRASH: '1' } });

    // Assess
    expect(crash.status).toBe(1);
    expect(crash.stderr).toMatch(/at failDeep \(\S*entry\.ts:6:\d+\)/);
  });

  it('installs nothing without a map beside the file: V8 names the generated file', () => {
    // Prepare
    const copy = path.join(dir, 'unmapped.js');
    fs.copyFileSync(out, copy);

    // Act
    const { installed, stack } = run(copy);

    // Assess
    expect(installed).toBe(false);
    expect(stack).toContain(`${copy}:`);
  });
});

describe('LazySourceMap', () => {
  it('drops the parsed map once it went unused for its keep time', async () => {
    // Prepare
    const { dir, out } = bundleEntry();
    const map = new LazySourceMap(`${out}.map`, 20);
    const bundled = fs.readFileSync(out, 'utf8');
    const at = bundled.indexOf('throw new Error(');
    const before = bundled.slice(0, at).split('\n');

    // Act
    const original = map.original({ line: before.length, column: before[before.length - 1].length + 1 });
    const heldAfterUse = map.loaded;
    await new Promise((r) => setTimeout(r, 100));

    // Assess
    expect(original).toMatch(/entry\.ts:6:\d+$/);
    expect(heldAfterUse).toBe(true);
    expect(map.loaded).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('leaves frames unmapped when the map cannot be read, and does not throw', () => {
    // Prepare
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-map-bad-'));
    fs.writeFileSync(path.join(dir, 'x.js.map'), '{ not json');
    const map = new LazySourceMap(path.join(dir, 'x.js.map'));

    // Act
    const original = map.original({ line: 1, column: 1 });

    // Assess
    expect(original).toBeUndefined();
    expect(map.loaded).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
