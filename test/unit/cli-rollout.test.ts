/**
 * `fleet rollout`: argument checks before any AWS call, the help that teaches, and the status
 * table (scripts/cli/rollout.ts). The AWS side runs in test/integration/rollout.test.ts.
 */
import { UsageError } from '../../scripts/cli/errors';
import { main } from '../../scripts/cli/program';
import { formatRolloutStatus } from '../../scripts/cli/rollout';
import { parseLaunchTemplateVersion } from '../../scripts/cli/rollout-options';

const MARKER = { v: 1 as const, launch_template_id: 'lt-0123', target_version: '7', previous_version: '6', started_at: '2026-12-02T10:00:00.000Z' };

/** Runs `fleet …` in-process with stdout and stderr captured. */
async function fleet(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((c) => ((out += String(c)), true));
  const se = jest.spyOn(process.stderr, 'write').mockImplementation((c) => ((err += String(c)), true));
  try {
    const code = await main(['node', 'fleet', ...args]);
    return { code, out, err };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}

describe('--launch-template-version', () => {
  it.each(['1', '7', '1234567890'])('accepts %s', (v) => {
    expect(parseLaunchTemplateVersion(v)).toBe(v);
  });

  it.each(['0', '07', 'x', '$Latest', '$Default', '-1', '1.5', ''])('refuses %j with what it expects', (v) => {
    expect(() => parseLaunchTemplateVersion(v)).toThrow(UsageError);
    expect(() => parseLaunchTemplateVersion(v)).toThrow(/--launch-template-version: got .*, expected a version number such as 7/);
  });

  it('is checked before any configuration is read: exit 2, one line and a hint, no AWS call', async () => {
    // Act: no FLEET_* variables would be needed to reach AWS; the flag is refused first.
    const r = await fleet('rollout', 'start', '--launch-template-version', '$Latest');

    // Assess
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^fleet: --launch-template-version: got "\$Latest", expected a version number such as 7\n {2}hint: /);
  });
});

describe('fleet rollout --help', () => {
  it('teaches what a rollout does, when to prefer an instance refresh, and the subcommands', async () => {
    // Act
    const r = await fleet('rollout', '--help');

    // Assess
    expect(r.code).toBe(0);
    for (const sub of ['start', 'status', 'abort', 'finish']) expect(r.out).toMatch(new RegExp(`^  ${sub} `, 'm'));
    expect(r.out).toMatch(/no drain\s+budget/);
    expect(r.out).toMatch(/instance refresh is simpler/);
    expect(r.out).toMatch(/\$ fleet rollout start --launch-template-version 7/);
  });

  it.each(['start', 'status', 'abort', 'finish'])('rollout %s --help has --json and an example', async (sub) => {
    // Act
    const r = await fleet('rollout', sub, '--help');

    // Assess
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--json/);
    expect(r.out).toMatch(new RegExp(`\\$ fleet rollout ${sub}`));
  });

  it('an unknown subcommand is a usage error', async () => {
    expect((await fleet('rollout', 'restart')).code).toBe(2);
  });
});

describe('the status table', () => {
  it('names the rollout, each instance\'s generation and the tasks still on old ones', () => {
    // Act
    const text = formatRolloutStatus({
      asgName: 'g',
      marker: MARKER,
      groupVersion: '7',
      instances: [
        { instanceId: 'i-old', generation: 'old', launchTemplateVersion: '6', status: 'retiring', lifecycleState: 'InService', running: ['t-1'] },
        { instanceId: 'i-new', generation: 'new', launchTemplateVersion: '7', status: 'busy', lifecycleState: 'InService', running: ['t-2'] },
      ],
      tasksOnOld: [{ taskId: 't-1', instanceId: 'i-old' }],
      done: false,
      warnings: [],
    });

    // Assess
    expect(text).toMatch(/^rollout of g to launch template lt-0123 version 7 \(from 6\)/);
    expect(text).toMatch(/i-old\s+old\s+6\s+retiring\s+InService\s+t-1/);
    expect(text).toMatch(/i-new\s+new\s+7\s+busy/);
    expect(text).toMatch(/1 task\(s\) still on old instances: t-1 \(i-old\)/);
  });

  it('says when nothing is left and how to end it; says when no rollout is under way', () => {
    expect(formatRolloutStatus({ asgName: 'g', marker: MARKER, groupVersion: '7', instances: [], tasksOnOld: [], done: true, warnings: [] })).toMatch(/no old instance left; "fleet rollout finish" ends it/);
    expect(formatRolloutStatus({ asgName: 'g', groupVersion: '$Latest', instances: [], tasksOnOld: [], done: false, warnings: [] })).toMatch(/^no rollout under way on g \(the group launches version \$Latest\)/);
  });
});
