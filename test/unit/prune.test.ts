/** The pure part of the scheduled prune (daemon/src/prune.ts): which image tags are stale. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageUse, normalizeImageRef, staleImageRefs } from '../../daemon/src/prune';

test.each([
  ['agent', 'agent:latest'],
  ['agent:1.2', 'agent:1.2'],
  ['registry.local:5000/team/agent', 'registry.local:5000/team/agent:latest'],
  ['registry.local:5000/team/agent:v2', 'registry.local:5000/team/agent:v2'],
  ['agent@sha256:abc', 'agent@sha256:abc'],
])('normalizeImageRef(%s) = %s', (ref, expected) => {
  expect(normalizeImageRef(ref)).toBe(expected);
});

test('staleImageRefs: only tags fleetd used before the cutoff, on images no container uses', () => {
  const use = { agent: 100, 'agent:v1': 100, 'agent:v2': 900, 'busy:1': 100 };
  const images = [
    { Id: 'sha256:a', RepoTags: ['agent:latest', 'agent:v1'] },
    { Id: 'sha256:b', RepoTags: ['agent:v2'] },
    { Id: 'sha256:c', RepoTags: ['busy:1'] },
    { Id: 'sha256:d', RepoTags: ['baked:1'] },
    { Id: 'sha256:e' },
  ];
  expect(staleImageRefs(use, images, new Set(['sha256:c']), 500)).toEqual(['agent:latest', 'agent:v1']);
});

test('ImageUse: touch, read, forget, and a corrupt file reads as empty', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'image-use-'));
  const use = new ImageUse(dir);
  use.touch('a:1', 5);
  use.touch('b:1', 6);
  use.forget('a:1');
  expect(use.read()).toEqual({ 'b:1': 6 });
  fs.writeFileSync(path.join(dir, 'image-use.json'), '{nope');
  expect(use.read()).toEqual({});
});

test('ImageUse: a use within a minute of the one written is not written again; a later one is', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'image-use-'));
  const use = new ImageUse(dir);
  use.touch('a:1', 1_000);
  use.touch('a:1', 50_000);
  expect(use.read()).toEqual({ 'a:1': 1_000 });
  use.touch('a:1', 61_000);
  expect(use.read()).toEqual({ 'a:1': 61_000 });
  use.forget('a:1');
  use.touch('a:1', 62_000);
  expect(use.read()).toEqual({ 'a:1': 62_000 });
});
