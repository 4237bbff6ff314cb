/**
 * Where a fleetd CPU profile's busy time goes (issue #18): a `.cpuprofile` (V8's JSON: nodes with
 * their call frame and parent links, samples with time deltas) read with the bundle's source map,
 * so a frame of the one-file bundle is named by its source (`daemon/src/…` or a package). Idle
 * samples are left out; self time is summed by package and by function, and, with a pattern, the
 * busy time of every sample that has a matching frame on its stack (inclusive time).
 *   npx tsx scripts/dev/bench/cpu-profile-summary.ts <file.cpuprofile> <fleetd.js.map> [pattern ...]
 */
import * as fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Per generated line, [column, source index] segments (the source-map v3 VLQ mappings). */
function decodeMappings(mappings: string): Array<Array<[number, number]>> {
  let source = 0;
  return mappings.split(';').map((line) => {
    let column = 0;
    const segments: Array<[number, number]> = [];
    for (const segment of line ? line.split(',') : []) {
      const values: number[] = [];
      let shift = 0;
      let value = 0;
      for (const ch of segment) {
        const digit = BASE64.indexOf(ch);
        value += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          values.push(value & 1 ? -(value >> 1) : value >> 1);
          value = 0;
          shift = 0;
        }
      }
      column += values[0];
      if (values.length > 1) {
        source += values[1];
        segments.push([column, source]);
      }
    }
    return segments;
  });
}

function main(): void {
  const [profileFile, mapFile, ...patterns] = process.argv.slice(2);
  if (!profileFile || !mapFile) throw new Error('usage: cpu-profile-summary.ts <file.cpuprofile> <fleetd.js.map> [pattern ...]');
  const profile = JSON.parse(fs.readFileSync(profileFile, 'utf8')) as Profile;
  const map = JSON.parse(fs.readFileSync(mapFile, 'utf8')) as { sources: string[]; mappings: string };
  const lines = decodeMappings(map.mappings);
  const sourceOf = (f: ProfileNode['callFrame']): string => {
    if (!f.url.endsWith('fleetd.js')) return f.url || '(native)';
    let found: [number, number] | undefined;
    for (const s of lines[f.lineNumber] ?? []) if (s[0] <= f.columnNumber) found = s;
    return found ? map.sources[found[1]].replace(/^.*node_modules\//, '').replace(/^(\.\.\/)+.*?(daemon\/src\/)/, '$2') : f.url;
  };
  const packageOf = (source: string): string => /^(@[^/]+\/[^/]+|[^/]+)\//.exec(source)?.[1] ?? source;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const names = new Map<number, { fn: string; source: string }>();
  const nameOf = (id: number) => {
    let n = names.get(id);
    if (!n) {
      const f = byId.get(id)!.callFrame;
      n = { fn: f.functionName || '(anonymous)', source: sourceOf(f) };
      names.set(id, n);
    }
    return n;
  };
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const matching = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const leaf = nameOf(id);
    if (leaf.fn === '(idle)') return;
    busy += dt;
    add(byPackage, leaf.source.startsWith('daemon/src/') ? 'daemon/src' : packageOf(leaf.source), dt);
    add(byFunction, `${leaf.fn}  ${leaf.source}`, dt);
    if (patterns.length === 0) return;
    const stack: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) stack.push(`${nameOf(cur).fn}  ${nameOf(cur).source}`);
    for (const p of patterns) if (stack.some((frame) => new RegExp(p).test(frame))) add(matching, p, dt);
  });
  const show = (title: string, m: Map<string, number>, top: number) => {
    console.log(title);
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((v / busy) * 100).toFixed(1).padStart(6)} %  ${(v / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  };
  console.log(`busy ${(busy / 1e6).toFixed(2)} s (idle left out)`);
  show('self time by package or file', byPackage, 20);
  show('self time by function', byFunction, 30);
  if (patterns.length) show('busy time of samples with a matching frame on their stack', matching, patterns.length);
}

main();
