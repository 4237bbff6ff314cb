/**
 * What `fleet status` and `fleet list` load from the CLI bundle (issue #18; figures in
 * docs/benchmarks.md, "CLI start-up"). The bundle is built in memory with the options
 * `npm run bundle` uses, and the chunks the entry imports, plus the read context and the tasks
 * module (the two `await import`s those commands make), are checked: DynamoDB is the only AWS
 * client in them, zod comes without its 40 locales, and the contract's schemas that no read
 * needs are not built. A change that pulls something heavy back into that path fails here
 * rather than showing up as a slower CLI.
 */
import { build, type Metafile } from 'esbuild';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUNDLE_ENTRIES, bundleOptions } from '../../scripts/bundle';

jest.setTimeout(120_000);

let metafile: Metafile;

beforeAll(async () => {
  const entries = BUNDLE_ENTRIES.filter((e) => e.name === 'fleet');
  const result = await build({ ...bundleOptions(entries, path.join(os.tmpdir(), 'fleet-cli-bundle-test'), 'test'), write: false, sourcemap: false });
  metafile = result.metafile!;
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

describe('the fleet status / fleet list path of the CLI bundle', () => {
  let inputs: string[];
  beforeAll(() => {
    inputs = inputsOf(readPath(/^fleet-read-context-.*\.mjs$/, /^fleet-tasks-.*\.mjs$/));
  });

  it('loads the DynamoDB client and no other AWS client', () => {
    const clients = new Set(inputs.flatMap((p) => /node_modules\/@aws-sdk\/(client-[a-z0-9-]+)\//.exec(p)?.[1] ?? []));
    expect([...clients]).toEqual(['client-dynamodb']);
    expect(inputs.some((p) => p.includes('scripts/lib/client.ts'))).toBe(false);
    expect(inputs.some((p) => p.includes('daemon/src/aws.ts'))).toBe(false);
  });

  it('keeps the credential providers other than the environment behind their own imports', () => {
    for (const provider of ['credential-provider-sso', 'credential-provider-ini', 'credential-provider-process', 'credential-provider-web-identity', 'nested-clients']) {
      expect(inputs.filter((p) => p.includes(`@aws-sdk/${provider}/`))).toEqual([]);
    }
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
  it('loads no AWS SDK for --help (the entry chunk and what it imports)', () => {
    expect(inputsOf(readPath()).filter((p) => p.includes('@aws-sdk/') || p.includes('@smithy/'))).toEqual([]);
  });
});
