/**
 * Injection attempts as a task id are refused at every layer a cancel passes through: the CLI's
 * argument check, the client library, the SSM document's allowedPattern as the local SSM agent
 * applies it (buildArgv), and the argv it builds never lets a value add or split arguments.
 * (`fleetd cancel` refusing them is tested on the real binary in test/integration/cli.test.ts.)
 */
import { CANCEL_DOCUMENT_PARAMETER, FLEETD_BIN_PATH, TASK_ID_PATTERN_SOURCE, cancelDocumentContent } from '../../daemon/src/contract';
import { UsageError } from '../../scripts/cli/errors';
import { parseTaskId } from '../../scripts/cli/parse';
import { InvalidTaskIdError, assertTaskId } from '../../scripts/lib/client';
import { buildArgv } from '../../scripts/dev/local/ssm-agent';

export const INJECTION_IDS: ReadonlyArray<[string, string]> = [
  ['shell separator', '; rm -rf /'],
  ['separator after a valid id', 't-1; rm -rf /'],
  ['single quote', "t-1' || reboot '"],
  ['double quote', 't-1" && reboot "'],
  ['command substitution', '$(reboot)'],
  ['backticks', '`reboot`'],
  ['newline', 't-1\nreboot'],
  ['carriage return', 't-1\rreboot'],
  ['trailing newline', 't-1\n'],
  ['pipe', 't-1|sh'],
  ['redirect', 't-1>/etc/passwd'],
  ['space and option', 't-1 --socket /tmp/x'],
  ['leading dash (an option)', '--help'],
  ['glob', 't-*'],
  ['NUL', 't-1\0x'],
  ['unicode look-alike', 't‐1'],
  ['empty', ''],
  ['10 KB', `t-${'a'.repeat(10 * 1024)}`],
  ['SSM parameter reference', '{{ssm:/secret}}'],
];

const document = cancelDocumentContent() as {
  parameters: Record<string, { allowedPattern: string }>;
  mainSteps: Array<{ inputs: { runCommand: string[] } }>;
};
const template = document.mainSteps[0].inputs.runCommand[0];

describe.each(INJECTION_IDS)('task id with %s', (_what, id) => {
  it('is refused by the CLI argument check with one clear line', () => {
    expect(() => parseTaskId(id)).toThrow(UsageError);
    try {
      parseTaskId(id);
    } catch (err) {
      expect((err as Error).message).not.toMatch(/[\n\r\0]/);
      expect((err as Error).message.length).toBeLessThan(200);
    }
  });

  it('is refused by the client library before any AWS call', () => {
    expect(() => assertTaskId(id)).toThrow(InvalidTaskIdError);
  });

  it("does not match the cancel document's allowedPattern", () => {
    const pattern = new RegExp(document.parameters[CANCEL_DOCUMENT_PARAMETER].allowedPattern);
    expect(pattern.test(id)).toBe(false);
  });

  it('is refused by the local SSM agent (buildArgv applies allowedPattern)', () => {
    expect(() => buildArgv(template, { [CANCEL_DOCUMENT_PARAMETER]: [id] }, document)).toThrow(/does not match allowedPattern/);
  });
});

describe('the cancel document and buildArgv', () => {
  it('uses the contract pattern for TaskId and runs only fleetd cancel', () => {
    expect(document.parameters[CANCEL_DOCUMENT_PARAMETER].allowedPattern).toBe(TASK_ID_PATTERN_SOURCE);
    expect(template).toBe(`${FLEETD_BIN_PATH} cancel --task-id {{${CANCEL_DOCUMENT_PARAMETER}}}`);
  });

  it('a valid id becomes exactly one argument', () => {
    expect(buildArgv(template, { [CANCEL_DOCUMENT_PARAMETER]: ['t-01jd8x5k2m3n4p5q6r7s8t9v0w'] }, document)).toEqual([FLEETD_BIN_PATH, 'cancel', '--task-id', 't-01jd8x5k2m3n4p5q6r7s8t9v0w']);
  });

  it('splits the template before substituting: even without a pattern a value cannot add arguments', () => {
    const noPattern = { ...document, parameters: {} };
    expect(buildArgv(template, { [CANCEL_DOCUMENT_PARAMETER]: ['a b; rm -rf /'] }, noPattern)).toEqual([FLEETD_BIN_PATH, 'cancel', '--task-id', 'a b; rm -rf /']);
  });
});
