/**
 * What `fleet status` and `fleet list` load from the CLI bundle (issue #18; figures in
 * docs/benchmarks.md, "CLI start-up"). Both builds of the CLI are made in memory with the options
 * `npm run bundle` uses. `status` and `list` run from fleet-read.cjs (one CommonJS file with a
 * code cache): DynamoDB is the only AWS client in it, zod comes without its 40 locales, the
 * contract's schemas that no read needs are not built, the other commands' modules are stubs, and
 * no `import()` is left (a code-cached function cannot run one in Node 20). fleet.mjs and the
 * chunks it imports for everything else (`--help` first of all) hold no AWS SDK. A change that
 * pulls something heavy back into either path fails here rather than showing up as a slower CLI.
 */
import { build, type Metafile } from 'esbuild';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI_ENTRIES, bundleOptions, dynamicImportsLeft } from '../../scripts/bundle';
import { READ_BUNDLE_OMITTED, readBundleCommand } from '../../scripts/cli/read-bundle';

jest.setTimeout(120_000);

let metafile: Metafile;
let readMetafile: Metafile;

beforeAll(async () => {
  const outdir = path.join(os.tmpdir(), 'fleet-cli-bundle-test');
  const build1 = (name: string) => build({ ...bundleOptions(CLI_ENTRIES.filter((e) => e.name === name), outdir, 'test'), write: false, sourcemap: false });
  const [esm, read] = await Promise.all([build1('fleet'), build1('fleet-read')]);
  metafile = esm.metafile!;
  readMetafile = read.metafile!;
});

/** Output chunks `fleet <name>` reads: the entry's static imports, then each dynamic one's. */
function readPath(...dynamicChunks: RegExp[]): Set<string> {
  const outs = metafile.outputs;
  const find = (re: RegExp) => {
    const found = Object.keys(outs).find((o) => re.test(path.basename(o)));
    if (!found) throw new Error(`no output chunk matches ${re}`);
    return found;
  };
  const seen = new Set<string>();
  const visit = (o: string) => {
    if (seen.has(o)) return;
    seen.add(o);
    for (const i of outs[o].imports) if (!i.external && i.kind !== 'dynamic-import') visit(i.path);
  };
  visit(find(/^fleet\.mjs$/));
  for (const re of dynamicChunks) visit(find(re));
  return seen;
}

function inputsOf(chunks: Set<string>): string[] {
  return [...chunks].flatMap((o) => Object.keys(metafile.outputs[o].inputs));
}

describe('the fleet status / fleet list path of the CLI bundle (fleet-read.cjs)', () => {
  let inputs: string[];
  beforeAll(() => {
    const outputs = Object.keys(readMetafile.outputs).filter((o) => !o.endsWith('.map'));
    expect(outputs.map((o) => path.basename(o))).toEqual(['fleet-read.cjs']);
    inputs = Object.keys(readMetafile.outputs[outputs[0]].inputs);
  });

  it('runs the same program with the other commands left out, and leaves no import() to run', () => {
    expect(inputs).toEqual(expect.arrayContaining(['scripts/fleet.ts', 'scripts/cli/program.ts', 'scripts/cli/read-context.ts', 'scripts/cli/tasks.ts']));
    for (const omitted of READ_BUNDLE_OMITTED) {
      expect(inputs).not.toContain(`scripts/cli/${omitted.slice(2)}.ts`);
      expect(inputs).toContain(`omitted:scripts/cli/${omitted.slice(2)}`);
    }
    expect(dynamicImportsLeft(readMetafile)).toEqual([]);
  });

  it('loads the DynamoDB client and no other AWS client', () => {
    const clients = new Set(inputs.flatMap((p) => /node_modules\/@aws-sdk\/(client-[a-z0-9-]+)\//.exec(p)?.[1] ?? []));
    expect([...clients]).toEqual(['client-dynamodb']);
    expect(inputs.some((p) => p.includes('scripts/lib/client.ts'))).toBe(false);
    expect(inputs.some((p) => p.includes('daemon/src/aws.ts'))).toBe(false);
  });

  it('stays small: a code cache pays for 1.2 MB, not for the whole CLI (7.6 MB, docs/benchmarks.md)', () => {
    // The credential chain's providers (SSO, ini, …) are inside, behind esbuild's lazy inits: one
    // file cannot keep them in chunks of their own, and they never run when the environment has keys.
    const bytes = Object.entries(readMetafile.outputs).find(([o]) => o.endsWith('fleet-read.cjs'))![1].bytes;
    expect(bytes).toBeLessThan(2 * 1024 * 1024);
  });

  it("takes zod's English locale only", () => {
    // (The plugin's own module, in its namespace, stands in for locales/index.js.)
    const locales = inputs.filter((p) => /zod\/v4\/locales\/[a-z-]+\.js$/.test(p) && !p.startsWith('zod-english-only:')).map((p) => path.basename(p));
    expect(locales).toEqual(['en.js']);
  });

  it("builds none of the contract's schemas a read does not need", () => {
    const contract = inputs.filter((p) => p.includes('daemon/src/contract/')).map((p) => path.basename(p));
    expect(contract).toContain('record.ts');
    for (const unneeded of ['index.ts', 'config-file.ts', 'control.ts', 'envelope.ts', 'intake.ts', 'rollout.ts', 'task-state-change.ts']) {
      expect(contract).not.toContain(unneeded);
    }
  });
});

describe('the CLI bundle', () => {
  it('loads no AWS SDK for --help (the entry, the program chunk, and what they import)', () => {
    const helpPath = inputsOf(readPath(/^fleet-fleet-.*\.mjs$/));
    expect(helpPath).toContain('scripts/cli/program.ts');
    expect(helpPath.filter((p) => p.includes('@aws-sdk/') || p.includes('@smithy/'))).toEqual([]);
  });
});

describe('readBundleCommand: what fleet.mjs runs from fleet-read.cjs', () => {
  it('is status and list, after the global --env-file', () => {
    expect(readBundleCommand(['status', 't-1'])).toBe('status');
    expect(readBundleCommand(['list', '--status', 'running'])).toBe('list');
    expect(readBundleCommand(['--env-file', 'f.env', 'list'])).toBe('list');
    expect(readBundleCommand(['--env-file=f.env', 'status', 't-1', '--json'])).toBe('status');
  });

  it('leaves everything else to the full program, help included (a cache written after it would lack the read path)', () => {
    for (const args of [[], ['--help'], ['-V'], ['help', 'status'], ['submit', '--image', 'x'], ['rollout', 'status'], ['dlq', 'list'], ['--env-file'], ['--env-files', 'x', 'list'], ['--env-file', 'status'], ['--', 'status'], ['status', '--help'], ['list', '-h'], ['list', '-V']]) {
      expect(readBundleCommand(args)).toBeUndefined();
    }
  });
});
