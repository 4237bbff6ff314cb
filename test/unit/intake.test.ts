/**
 * The intake's and the stream consumer's pure decisions: parsing an intake message, the task id
 * it makes, which record changes are transitions (events) and which Step Functions callback each
 * one calls for.
 */
import { TaskStatus, intakeTaskId, parseIntakeMessage, taskIdForIdempotencyKey, taskIdForMessageId, taskStateChange, type TaskRecord } from '../../daemon/src/contract';
import { SFN_LIMITS, callbackFor, decodeStreamRecord, successOutput, taskEventsConfigFromEnv, unmarshallImage } from '../../scripts/lib/task-events';

const spec = { image: 'agent-fleet/demo-agent:latest', payload: { prompt: 'hi' } };

describe('parseIntakeMessage', () => {
  test('a minimal message is valid; the key and token come back', () => {
    const r = parseIntakeMessage(JSON.stringify({ v: 1, spec, idempotency_key: 'k1', task_token: 'tok' }));
    expect(r).toEqual({ ok: true, value: { spec: { ...spec, idempotency_key: 'k1' }, idempotencyKey: 'k1', taskToken: 'tok' } });
  });

  test('a key in the spec counts; two different keys are refused', () => {
    expect(parseIntakeMessage(JSON.stringify({ v: 1, spec: { ...spec, idempotency_key: 'k2' } }))).toMatchObject({ ok: true, value: { idempotencyKey: 'k2' } });
    expect(parseIntakeMessage(JSON.stringify({ v: 1, idempotency_key: 'a', spec: { ...spec, idempotency_key: 'b' } }))).toMatchObject({ ok: false, problems: [expect.stringContaining('differs from spec.idempotency_key')] });
  });

  test.each([
    ['not JSON', '{"v":1', /not JSON/],
    ['a wrong version', JSON.stringify({ v: 2, spec }), /intake message\.v: unsupported intake message version/],
    ['an unknown field', JSON.stringify({ v: 1, spec, task_id: 't-1' }), /unknown field\(s\) "task_id"/],
    ['a bad spec', JSON.stringify({ v: 1, spec: { ...spec, image: 'UPPER' } }), /intake message\.spec\.image/],
    ['an own __proto__ key in the spec', '{"v":1,"spec":{"image":"agent-fleet/demo-agent:latest","__proto__":{"privileged":true}}}', /unknown field/],
    ['an empty task token', JSON.stringify({ v: 1, spec, task_token: '' }), /task_token/],
  ])('%s is refused with a one-line reason', (_name, body, reason) => {
    const r = parseIntakeMessage(body);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems.join('; ')).toMatch(reason);
      expect(r.problems.every((p) => !/\n/.test(p))).toBe(true);
    }
  });

  test('a payload over the inline limit is accepted (the submit path uploads it); over the cap it is refused', () => {
    expect(parseIntakeMessage(JSON.stringify({ v: 1, spec: { ...spec, payload: { blob: 'x'.repeat(40_000) } } })).ok).toBe(true);
    expect(parseIntakeMessage(JSON.stringify({ v: 1, spec: { ...spec, payload: { blob: 'x'.repeat(40_000) }, payload_ref: { bucket: 'b-bucket', key: 'k' } } })).ok).toBe(false);
  });

  test('the task id: the key decides (as fleet submit derives it), else the message id', () => {
    expect(intakeTaskId({ idempotencyKey: 'k1' }, 'm1')).toBe(taskIdForIdempotencyKey('k1'));
    expect(intakeTaskId({}, 'm1')).toBe(taskIdForMessageId('m1'));
    expect(taskIdForMessageId('m1')).toMatch(/^m-[0-9a-f]{40}$/);
  });
});

const base: TaskRecord = { task_id: 't-1', status: TaskStatus.RUNNING, spec: { image: 'x', labels: { team: 'a' } }, created_at: 1, updated_at: 10, attempt: 1, attempts_left: 2, task_token: 'tok', heartbeat_at: 1_000 };

describe('transitions and events', () => {
  test('a heartbeat is no transition; a status change and a takeover (same status, new attempt) are', () => {
    expect(taskStateChange('f', { ...base, heartbeat_at: 31_000, updated_at: 31_000 }, base)).toBeUndefined();
    expect(taskStateChange('f', { ...base, status: TaskStatus.COMPLETED, exit_code: 0, updated_at: 99 }, base)).toMatchObject({ event_id: 't-1:1:COMPLETED:99', previous_status: 'RUNNING', exit_code: 0, labels: { team: 'a' }, has_task_token: true });
    expect(taskStateChange('f', { ...base, status: TaskStatus.CLAIMED, attempt: 2 }, { ...base, status: TaskStatus.CLAIMED })).toMatchObject({ status: 'CLAIMED', previous_status: 'CLAIMED', attempt: 2 });
    expect(taskStateChange('f', { ...base, status: TaskStatus.QUEUED }, undefined)).toMatchObject({ previous_status: null });
  });
});

describe('Step Functions callbacks', () => {
  const W = 300_000;
  test('none without a token, and none for QUEUED, CLAIMED or INTERRUPTED', () => {
    expect(callbackFor({ ...base, task_token: undefined, status: TaskStatus.COMPLETED }, base, W)).toBeUndefined();
    for (const status of [TaskStatus.QUEUED, TaskStatus.CLAIMED, TaskStatus.INTERRUPTED]) expect(callbackFor({ ...base, status }, base, W)).toBeUndefined();
  });

  test('a heartbeat on entering RUNNING, and on a lease heartbeat only when it crosses a window', () => {
    expect(callbackFor(base, { ...base, status: TaskStatus.CLAIMED, heartbeat_at: undefined }, W)).toEqual({ kind: 'heartbeat' });
    expect(callbackFor({ ...base, heartbeat_at: 31_000 }, base, W)).toBeUndefined();
    expect(callbackFor({ ...base, heartbeat_at: W + 5 }, { ...base, heartbeat_at: W - 5 }, W)).toEqual({ kind: 'heartbeat' });
  });

  test('success with the result; failure with the status and the cut reason; each only on the transition', () => {
    const done = { ...base, status: TaskStatus.COMPLETED, exit_code: 0, result: { ok: true } };
    expect(callbackFor(done, base, W)).toEqual({ kind: 'success', output: JSON.stringify({ task_id: 't-1', status: 'COMPLETED', attempt: 1, exit_code: 0, result: { ok: true } }) });
    expect(callbackFor(done, done, W)).toBeUndefined();
    const failed = { ...base, status: TaskStatus.TIMED_OUT, reason: 'r'.repeat(40_000) };
    expect(callbackFor(failed, base, W)).toEqual({ kind: 'failure', error: 'TIMED_OUT', cause: 'r'.repeat(SFN_LIMITS.causeChars) });
  });

  test('a result too large for Step Functions is left out with a note', () => {
    const out = JSON.parse(successOutput({ ...base, status: TaskStatus.COMPLETED, result: { blob: 'x'.repeat(300_000) } })) as Record<string, unknown>;
    expect(out.result).toBeUndefined();
    expect(out.result_error).toMatch(/too large/);
  });
});

describe('stream records', () => {
  test('images unmarshal to task records; a removal is skipped', () => {
    const image = { task_id: { S: 't-1' }, status: { S: 'QUEUED' }, spec: { M: { image: { S: 'x' }, labels: { M: {} } } }, created_at: { N: '1' }, updated_at: { N: '2' }, attempt: { N: '0' }, attempts_left: { N: '3' }, flag: { BOOL: true }, none: { NULL: true }, list: { L: [{ N: '1' }] } };
    expect(unmarshallImage(image)).toMatchObject({ task_id: 't-1', created_at: 1, flag: true, none: null, list: [1] });
    expect(decodeStreamRecord({ eventName: 'INSERT', dynamodb: { SequenceNumber: '7', NewImage: image } })).toMatchObject({ sequenceNumber: '7', record: { task_id: 't-1', status: 'QUEUED' } });
    expect(decodeStreamRecord({ eventName: 'REMOVE', dynamodb: { SequenceNumber: '8', OldImage: image } }).record).toBeUndefined();
  });

  test('configuration from the environment', () => {
    expect(taskEventsConfigFromEnv({ FLEET_NAME: 'f', FLEET_SFN_HEARTBEAT_SECONDS: '60', FLEET_EVENT_BUS_NAME: 'b' })).toEqual({ fleetName: 'f', heartbeatSeconds: 60, eventBusName: 'b' });
    expect(() => taskEventsConfigFromEnv({ FLEET_NAME: 'f', FLEET_SFN_HEARTBEAT_SECONDS: '0' })).toThrow(/whole number/);
    expect(() => taskEventsConfigFromEnv({})).toThrow(/FLEET_NAME/);
  });
});
