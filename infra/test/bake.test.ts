/**
 * `npm run bake` (scripts/bake.ts, here beside the other deploy-path tests): --help prints the
 * usage and exits 0 (it used to fail with "Unknown option"), and the AMI id is read out of
 * Packer's artifact id (`region:ami-...`) instead of printing the artifact id itself.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { amiIdsFromArtifactId, BAKE_USAGE, parseBakeArgs } from '../../scripts/bake';

const ROOT = path.resolve(__dirname, '..', '..');

describe('npm run bake', () => {
  test.each([['--help'], ['-h']])('%s prints the usage on stdout and exits 0, without a region or Packer', (flag) => {
    // Act
    const r = spawnSync('npx', ['tsx', 'scripts/bake.ts', flag], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, AWS_REGION: '', AWS_DEFAULT_REGION: '', PATH: process.env.PATH },
    });
    // Assess
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(BAKE_USAGE);
    for (const option of ['--region', '--arch', '--prepull', '--var', '--dry-run', '--help']) expect(r.stdout).toContain(option);
  }, 90_000);

  test('an unknown option still fails, and points at --help', () => {
    // Act
    const r = spawnSync('npx', ['tsx', 'scripts/bake.ts', '--bogus'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    // Assess
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^bake: Unknown option '--bogus'.*\(npm run bake -- --help lists the options\)$/);
  }, 90_000);

  test('--help wins over everything else; without it a region is still required', () => {
    // Act + Assess
    expect(parseBakeArgs(['--arch', 'arm64', '--help'], {}).help).toBe(true);
    expect(() => parseBakeArgs(['--arch', 'arm64'], {})).toThrow('bake: no region. Pass --region us-east-1 or set AWS_REGION.');
  });

  test("the AMI ids come out of Packer's artifact id, one per region", () => {
    // Act + Assess
    expect(amiIdsFromArtifactId('eu-west-1:ami-0123456789abcdef0')).toEqual([{ region: 'eu-west-1', amiId: 'ami-0123456789abcdef0' }]);
    expect(amiIdsFromArtifactId('eu-west-1:ami-0123456789abcdef0,us-east-1:ami-0fedcba9876543210')).toEqual([
      { region: 'eu-west-1', amiId: 'ami-0123456789abcdef0' },
      { region: 'us-east-1', amiId: 'ami-0fedcba9876543210' },
    ]);
    expect(() => amiIdsFromArtifactId('something else')).toThrow(/cannot read an AMI id from Packer's artifact id "something else"; expected region:ami-/);
  });
});
