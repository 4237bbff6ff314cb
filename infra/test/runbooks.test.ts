/**
 * Every alarm links to its runbook: each AWS::CloudWatch::Alarm of the default stack, and of a
 * stack with every optional part on (alarm e-mail, spot, warm pool, the reconciler), ends its
 * description with `Runbook: docs/operations.md#<anchor>`, and the anchor is a heading of
 * docs/operations.md as GitHub renders it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { RUNBOOK_PATH } from '../agent-fleet';
import { buildApp } from '../app';
import { RUNBOOK_SECTIONS, INTAKE_RUNBOOK_SECTIONS } from '../monitoring';

const ROOT = path.resolve(__dirname, '..', '..');
const RUNBOOK = path.join(ROOT, RUNBOOK_PATH);

/** GitHub's heading anchors: lower case, punctuation dropped (letters, digits, '-', '_' and spaces kept), spaces to '-', repeats numbered. */
export function githubAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) inFence = !inFence;
    const m = inFence ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

interface Alarm {
  Properties: { AlarmDescription: string };
}

function alarmDescriptions(context: Record<string, unknown>): Map<string, string> {
  const { app, stack } = buildApp({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [], ...context } });
  app.synth();
  const alarms = Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm') as Record<string, Alarm>;
  return new Map(Object.entries(alarms).map(([id, a]) => [id, a.Properties.AlarmDescription]));
}

describe('runbook links', () => {
  const markdown = fs.readFileSync(RUNBOOK, 'utf8');
  const anchors = githubAnchors(markdown);

  test('the anchor rules match GitHub on the headings this file uses', () => {
    // Act
    const sample = githubAnchors('# Operations: runbooks, costs, teardown\n### A shell on an instance (SSM Session Manager)\n## Costs\n## Costs\n```sh\n# not a heading\n```\n');
    // Assess
    expect([...sample]).toEqual(['operations-runbooks-costs-teardown', 'a-shell-on-an-instance-ssm-session-manager', 'costs', 'costs-1']);
  });

  test.each([
    ['the default stack', {}],
    ['a stack with every optional part on', { alarmEmail: 'oncall@example.com', spot: 'true', instanceTypes: 'm7g.xlarge,m6g.xlarge', fleetName: 'gpu' }],
  ])('%s: every alarm ends with a runbook link to a heading of docs/operations.md', (_what, context) => {
    // Act
    const descriptions = alarmDescriptions(context);
    // Assess
    // The fleet's alarms and the intake's (the stack has both).
    expect(descriptions.size).toBe(Object.keys(RUNBOOK_SECTIONS).length + Object.keys(INTAKE_RUNBOOK_SECTIONS).length);
    for (const [id, description] of descriptions) {
      const link = / Runbook: (\S+)#([^\s#]+)$/.exec(description);
      expect({ id, link: link?.[0] ?? 'no runbook link' }).toEqual({ id, link: expect.stringContaining(`Runbook: ${RUNBOOK_PATH}#`) });
      expect({ id, anchor: link![2], exists: anchors.has(link![2]) }).toEqual({ id, anchor: link![2], exists: true });
    }
  });

  test('the runbook exists at the path the links use, and every in-page link in it resolves', () => {
    // Act
    const internal = [...markdown.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]);
    // Assess
    expect(fs.existsSync(RUNBOOK)).toBe(true);
    expect(internal.length).toBeGreaterThan(5);
    expect(internal.filter((a) => !anchors.has(a))).toEqual([]);
  });
});
