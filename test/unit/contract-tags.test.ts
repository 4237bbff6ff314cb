/**
 * Instance tag keys: `<prefix>:status`, `<prefix>:task-id`, `<prefix>:fleet`, prefix configurable.
 */
import { DEFAULT_TAG_PREFIX, InstanceStatus, TAG_PREFIX_PATTERN, tagKeys } from '../../daemon/src/contract';

describe('Contract: instance tag keys', () => {
  it('uses the bgagent prefix by default (ABCA\'s)', () => {
    // Act
    const keys = tagKeys();

    // Assess
    expect(DEFAULT_TAG_PREFIX).toBe('bgagent');
    expect(keys).toEqual({ status: 'bgagent:status', taskId: 'bgagent:task-id', fleet: 'bgagent:fleet' });
  });

  it.each(['myfleet', 'A', 'team.fleet-2_x', 'a'.repeat(32)])('uses the custom prefix %s', (prefix) => {
    // Act
    const keys = tagKeys(prefix);

    // Assess
    expect(keys).toEqual({ status: `${prefix}:status`, taskId: `${prefix}:task-id`, fleet: `${prefix}:fleet` });
  });

  it.each([
    ['empty', ''],
    ['a colon', 'bg:agent'],
    ['a leading digit', '1fleet'],
    ['a leading dash', '-fleet'],
    ['a space', 'bg agent'],
    ['the aws: namespace', 'aws:x'],
    ['33 characters', 'a'.repeat(33)],
    ['a newline', 'bgagent\n'],
    ['shell metacharacters', '$(id)'],
  ])('rejects a prefix with %s, quoting it and the expected pattern', (_name, prefix) => {
    // Act & Assess
    expect(() => tagKeys(prefix)).toThrow(`tag prefix: got ${JSON.stringify(prefix)}, expected ${TAG_PREFIX_PATTERN}`);
  });

  it.each(['aws', 'AWS', 'Aws', 'aWs'])(
    'rejects the prefix %s: AWS reserves the aws: tag namespace in any case, so EC2 would refuse the tags',
    (prefix) => {
      // Act & Assess
      expect(() => tagKeys(prefix)).toThrow(`tag prefix: got ${JSON.stringify(prefix)}`);
      expect(() => tagKeys(prefix)).toThrow('reserved');
    },
  );

  it.each(['awsfleet', 'aws-fleet', 'my-aws'])('accepts %s (only the bare aws prefix makes aws: keys)', (prefix) => {
    // Assess
    expect(tagKeys(prefix).status).toBe(`${prefix}:status`);
  });

  it('the error message stays on one line even for a multi-line prefix', () => {
    // Prepare
    let message = '';

    // Act
    try {
      tagKeys('a\nb');
    } catch (err) {
      message = (err as Error).message;
    }

    // Assess
    expect(message).not.toMatch(/[\r\n]/);
  });

  it('instance statuses are the lower-case values people see in the console', () => {
    // Assess
    expect(Object.values(InstanceStatus).sort()).toEqual(['booting', 'busy', 'draining', 'idle', 'retiring', 'unhealthy', 'warm']);
  });
});
