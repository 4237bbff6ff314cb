/**
 * What fleetd uploads from /fleet/output (daemon/src/artifacts.ts): caps, symbolic links never
 * followed, special files skipped, hostile names sanitised, long keys shortened. The plan is
 * pure file-system work; the upload against moto's S3 is in test/integration/task-logs.test.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { MAX_KEY_BYTES, fitKey, openArtifact, planArtifacts, sanitiseRelativePath } from '../../daemon/src/artifacts';
import { ARTIFACT_DEFAULTS, artifactsPrefix } from '../../daemon/src/contract';
import { UnsafeArtifactPathError, downloadTarget } from '../../scripts/lib/artifacts';

const prefix = artifactsPrefix('task-1', 2);
const roomy = { maxFiles: 100, maxFileBytes: 1_000_000, maxTotalBytes: 10_000_000 };

function outputDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'artifacts-'));
}

test('the prefix is artifacts/<task_id>/<attempt>/', () => {
  expect(prefix).toBe('artifacts/task-1/2/');
});

test.each([
  ['../x', '__/x'],
  ['a/../../b', 'a/__/__/b'],
  ['/etc/passwd', 'etc/passwd'],
  ['a\nb', 'a_b'],
  ['tab\there\r', 'tab_here_'],
  ['./a//b/.', 'a/b'],
  ['back\\slash', 'back_slash'],
  ['caf\u00e9/\u65e5\u672c\u8a9e \u{1F600}.txt', 'caf\u00e9/\u65e5\u672c\u8a9e \u{1F600}.txt'],
  ['del\u007f\u0085', 'del__'],
])('sanitiseRelativePath(%j) = %j', (input, expected) => {
  expect(sanitiseRelativePath(input)).toBe(expected);
});

test('a path with nothing usable left sanitises to undefined', () => {
  expect(sanitiseRelativePath('././/')).toBeUndefined();
});

test('keys over 1,024 bytes are shortened to a hash plus the file name, distinct for distinct paths', () => {
  const deep = `${'d'.repeat(200)}/`.repeat(6);
  const a = fitKey(prefix, `${deep}report.txt`);
  const b = fitKey(prefix, `${deep}x/report.txt`);
  for (const k of [a, b]) {
    expect(Buffer.byteLength(k)).toBeLessThanOrEqual(MAX_KEY_BYTES);
    expect(k.startsWith(`${prefix}long/`)).toBe(true);
    expect(k.endsWith('-report.txt')).toBe(true);
  }
  expect(a).not.toBe(b);
  expect(fitKey(prefix, 'short.txt')).toBe(`${prefix}short.txt`);
});

test('the plan: regular files under the directory, result.json left out, keys sanitised, collisions numbered', () => {
  const dir = outputDir();
  fs.mkdirSync(path.join(dir, 'sub/deeper'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'result.json'), '{}');
  fs.writeFileSync(path.join(dir, 'patch.diff'), 'diff');
  fs.writeFileSync(path.join(dir, 'sub/deeper/notes.md'), 'notes');
  fs.writeFileSync(path.join(dir, 'a\nb'), 'newline');
  fs.writeFileSync(path.join(dir, 'a_b'), 'underscore');
  fs.writeFileSync(path.join(dir, '\u65e5\u672c.txt'), 'unicode');
  fs.writeFileSync(path.join(dir, 'sub', 'result.json'), 'only the top-level result.json is the record\'s');
  const plan = planArtifacts(dir, prefix, roomy);
  expect(plan.truncated).toBe(false);
  expect(plan.files.map((f) => f.key).sort()).toEqual(
    [`${prefix}a_b`, `${prefix}a_b~2`, `${prefix}patch.diff`, `${prefix}sub/deeper/notes.md`, `${prefix}sub/result.json`, `${prefix}\u65e5\u672c.txt`].sort(),
  );
  expect(new Set(plan.files.map((f) => f.key)).size).toBe(plan.files.length);
});

test('symbolic links are never followed: a link to a file outside, a link to a directory, a dangling link', () => {
  const dir = outputDir();
  const outside = outputDir();
  fs.writeFileSync(path.join(outside, 'secret'), 'host secret');
  fs.symlinkSync(path.join(outside, 'secret'), path.join(dir, 'to-file'));
  fs.symlinkSync(outside, path.join(dir, 'to-dir'));
  fs.symlinkSync('/nonexistent', path.join(dir, 'dangling'));
  fs.symlinkSync('/etc/passwd', path.join(dir, 'result.json.bak'));
  fs.writeFileSync(path.join(dir, 'real.txt'), 'ok');
  const plan = planArtifacts(dir, prefix, roomy);
  expect(plan.files.map((f) => f.relative)).toEqual(['real.txt']);
  expect(plan.truncated).toBe(true);
  expect(plan.skipped.join('\n')).toMatch(/to-file.*symbolic link/);
});

test('openArtifact refuses a file swapped for a link after the walk (O_NOFOLLOW), and a directory swapped for a link', () => {
  const dir = outputDir();
  const outside = outputDir();
  fs.writeFileSync(path.join(outside, 'secret'), 'host secret');
  fs.writeFileSync(path.join(dir, 'a.txt'), 'a');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'secret'), 'mine');
  const plan = planArtifacts(dir, prefix, roomy);
  expect(plan.files).toHaveLength(2);
  fs.rmSync(path.join(dir, 'a.txt'));
  fs.symlinkSync(path.join(outside, 'secret'), path.join(dir, 'a.txt'));
  expect(() => openArtifact(dir, path.join(dir, 'a.txt'))).toThrow(/ELOOP|symbolic|link/i);
  fs.rmSync(path.join(dir, 'sub'), { recursive: true });
  fs.symlinkSync(outside, path.join(dir, 'sub'));
  expect(() => openArtifact(dir, path.join(dir, 'sub', 'secret'))).toThrow(/outside the output directory/);
});

test('special files are skipped: a FIFO is never opened (it would block)', () => {
  const dir = outputDir();
  execFileSync('mkfifo', [path.join(dir, 'pipe')]);
  fs.writeFileSync(path.join(dir, 'ok.txt'), 'ok');
  const plan = planArtifacts(dir, prefix, roomy);
  expect(plan.files.map((f) => f.relative)).toEqual(['ok.txt']);
  expect(plan.skipped.join('\n')).toMatch(/pipe.*not a regular file/);
});

test('caps: file count, bytes per file, bytes in all; what they leave out makes the plan truncated', () => {
  const dir = outputDir();
  for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(dir, `f${i}`), 'x'.repeat(100));
  fs.writeFileSync(path.join(dir, 'huge'), 'x'.repeat(10_000));
  expect(planArtifacts(dir, prefix, { ...roomy, maxFiles: 3 })).toMatchObject({ truncated: true });
  expect(planArtifacts(dir, prefix, { ...roomy, maxFiles: 3 }).files).toHaveLength(3);
  const perFile = planArtifacts(dir, prefix, { ...roomy, maxFileBytes: 1000 });
  expect(perFile.files.map((f) => f.relative).sort()).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
  expect(perFile.truncated).toBe(true);
  const total = planArtifacts(dir, prefix, { ...roomy, maxTotalBytes: 250 });
  expect(total.files.reduce((n, f) => n + f.size, 0)).toBeLessThanOrEqual(250);
  expect(total.truncated).toBe(true);
  expect(planArtifacts(dir, prefix, roomy).truncated).toBe(false);
});

test('the documented defaults', () => {
  expect(ARTIFACT_DEFAULTS).toEqual({ maxFiles: 100, maxFileBytes: 100 * 1024 * 1024, maxTotalBytes: 1024 * 1024 * 1024 });
});

test('fleet artifacts --download never writes outside its directory, whatever the bucket holds', () => {
  const dir = outputDir();
  expect(downloadTarget(dir, 'sub/notes.txt')).toBe(path.join(dir, 'sub', 'notes.txt'));
  for (const hostile of ['../x', 'a/../../x', '/etc/passwd', '', 'a\nb', 'sub/..']) {
    expect(() => downloadTarget(dir, hostile)).toThrow(UnsafeArtifactPathError);
  }
});
