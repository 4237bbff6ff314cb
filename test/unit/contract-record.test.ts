/**
 * Task records read back from DynamoDB: validated on every read, since other tools and versions
 * may write the table.
 */
import { parseTaskRecord, type TaskRecord } from '../../daemon/src/contract';

const makeRecord = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  task_id: 't-1',
  status: 'QUEUED',
  spec: { image: 'agent-fleet/demo-agent:latest' },
  created_at: 1_764_288_000_000,
  updated_at: 1_764_288_000_000,
  attempt: 0,
  attempts_left: 3,
  ...overrides,
});

describe('Contract: task record', () => {
  it('accepts a freshly submitted record', () => {
    // Prepare
    const item = makeRecord();

    // Act
    const parsed = parseTaskRecord(item);

    // Assess
    expect(parsed).toEqual({ ok: true, value: item });
  });

  it('accepts a finished record with every optional field', () => {
    // Prepare
    const item = makeRecord({
      status: 'COMPLETED',
      attempt: 1,
      attempts_left: 2,
      idempotency_key: 'k',
      instance_id: 'i-0123456789abcdef0',
      lease_expires_at: 1,
      heartbeat_at: 1,
      container_id: 'abc',
      claimed_at: 1,
      started_at: 1,
      finished_at: 2,
      exit_code: 0,
      oom_killed: false,
      duration_ms: 1,
      result: { ok: true },
      result_error: 'none',
      log_tail: 'done\n',
      reason: 'ok',
      cancel_requested_at: 1,
      message_sent_at: 1,
      expires_at: 1_766_880_000,
    });

    // Act
    const parsed = parseTaskRecord(item);

    // Assess
    expect(parsed.ok && (parsed.value as TaskRecord).status).toBe('COMPLETED');
  });

  it('drops attributes it does not know (written by a newer version) instead of failing', () => {
    // Act
    const parsed = parseTaskRecord(makeRecord({ future_field: 1 }));

    // Assess
    expect(parsed.ok).toBe(true);
    expect(parsed.ok && 'future_field' in parsed.value).toBe(false);
  });

  it.each([
    ['an unknown status', { status: 'DONE' }, 'task record.status: Invalid option: expected one of', 'got "DONE"'],
    ['a lower-case status', { status: 'queued' }, 'task record.status: Invalid option: expected one of', 'got "queued"'],
    ['a negative attempt', { attempt: -1 }, 'task record.attempt: ', 'got number -1'],
    ['a string created_at', { created_at: '2026-11-28' }, 'task record.created_at: expected number', 'got "2026-11-28"'],
    ['a spec that is not a map', { spec: 'image=x' }, 'task record.spec: expected record', 'got "image=x"'],
    ['a non-integer exit code', { exit_code: 1.5 }, 'task record.exit_code: expected int', 'got number 1.5'],
    ['a missing task_id', { task_id: undefined }, 'task record.task_id: expected string', 'got nothing'],
  ])('rejects %s, naming the attribute, what was expected and what was got', (_name, overrides, expected, got) => {
    // Act
    const parsed = parseTaskRecord(makeRecord(overrides));

    // Assess
    expect(parsed.ok).toBe(false);
    const problems = parsed.ok ? [] : parsed.problems;
    expect(problems).toHaveLength(1);
    expect(problems[0].startsWith(expected)).toBe(true);
    expect(problems[0]).toContain(got);
  });

  it('lists every missing attribute of an empty item', () => {
    // Act
    const parsed = parseTaskRecord({});

    // Assess
    const problems = parsed.ok ? [] : parsed.problems;
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      'task record.task_id',
      'task record.status',
      'task record.spec',
      'task record.created_at',
      'task record.updated_at',
      'task record.attempt',
      'task record.attempts_left',
    ]);
  });
});
