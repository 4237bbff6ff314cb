/**
 * The control protocol (daemon/src/contract/control.ts): the server's request parser and the
 * client's answer parser, with good and bad inputs. Neither ever throws.
 */
import { parseControlRequest, parseControlResponse, type StatusResponse } from '../../daemon/src/contract';

const TASK_ID = 't-01jd8k2m3n4p5q6r7s8t9v0w1x';

const STATUS: StatusResponse = {
  ok: true,
  instance_id: 'i-0123456789abcdef0',
  state: 'busy',
  fleetd_state: 'serving',
  receiving: true,
  not_claiming: null,
  draining: false,
  drain: null,
  interruption: null,
  slots: 2,
  free_slots: 1,
  idle: { idle_for_s: 0, terminate_after_s: 600, state: 'not checked yet' },
  disk_problem: null,
  engine_problem: null,
  credentials: { endpoint: 'http://169.254.170.2:80', active_tasks: [TASK_ID] },
  last_prune: { containers: [], images: ['a:1'], files: [], reclaimedBytes: 12, at: '2025-01-01T00:00:00.000Z' },
  imds_watch: 'watching',
  tasks: [{ task_id: TASK_ID, attempt: 1, phase: 'running', stopping: null, heartbeat_age_s: 3 }],
};

const problemsOf = <T>(r: { ok: true; value: T } | { ok: false; problems: string[] }): string => {
  if (r.ok) throw new Error(`expected a rejection, got ${JSON.stringify(r.value)}`);
  return r.problems.join('; ');
};

describe('Contract: control requests (server side)', () => {
  it.each([
    ['status', { cmd: 'status' }],
    ['cancel', { cmd: 'cancel', task_id: TASK_ID }],
  ])('accepts %s', (_name, req) => {
    // Act
    const parsed = parseControlRequest(JSON.stringify(req));

    // Assess
    expect(parsed).toEqual({ ok: true, value: req });
  });

  it.each<[string, string, RegExp]>([
    ['not JSON', '{cmd: status', /request: not JSON/],
    ['an empty line', '', /request: not JSON/],
    ['a JSON string', '"status"', /^request: expected object, got "status"$/],
    ['null', 'null', /^request: expected object, got null$/],
    ['an array', '[{"cmd":"status"}]', /^request: expected object, got an array of 1$/],
    ['an unknown command', '{"cmd":"reboot"}', /^request\.cmd: expected "cancel" or "status", got "reboot"$/],
    ['no command', '{"task_id":"t-01jd8k2m3n4p5q6r7s8t9v0w1x"}', /^request\.cmd: expected "cancel" or "status", got nothing$/],
    ['cancel without task_id', '{"cmd":"cancel"}', /request\.task_id: expected string/],
    ['cancel with a number', '{"cmd":"cancel","task_id":42}', /request\.task_id: expected string/],
    ['cancel with a shell payload', '{"cmd":"cancel","task_id":"t-1; rm -rf /"}', /request\.task_id: expected a task id matching/],
    ['cancel with an extra field', `{"cmd":"cancel","task_id":"${TASK_ID}","force":true}`, /unknown field\(s\) "force"/],
    ['status with an extra field', '{"cmd":"status","verbose":1}', /unknown field\(s\) "verbose"/],
  ])('refuses %s', (_name, line, problem) => {
    // Act
    const parsed = parseControlRequest(line);

    // Assess
    expect(problemsOf(parsed)).toMatch(problem);
  });
});

describe('Contract: control answers (client side)', () => {
  it('accepts a full status answer', () => {
    // Act
    const parsed = parseControlResponse('status', `${JSON.stringify(STATUS)}\n`);

    // Assess
    expect(parsed).toEqual({ ok: true, value: STATUS });
  });

  it('accepts a draining status with a spot interruption', () => {
    // Prepare
    const draining = {
      ...STATUS,
      fleetd_state: 'draining',
      receiving: false,
      draining: true,
      not_claiming: 'draining: spot',
      drain: { reason: 'spot', since: '2025-01-01T00:00:00.000Z', releasing: 'spot' },
      interruption: { kind: 'spot', action: 'terminate', time: '2025-01-01T00:02:00Z' },
    };

    // Act
    const parsed = parseControlResponse('status', JSON.stringify(draining));

    // Assess
    expect(parsed.ok).toBe(true);
  });

  it.each([
    ['found', { ok: true, found: true, message: `cancelling ${TASK_ID}` }],
    ['not found', { ok: true, found: false, message: 'not running here' }],
  ])('accepts a cancel answer: %s', (_name, answer) => {
    // Assess
    expect(parseControlResponse('cancel', JSON.stringify(answer))).toEqual({ ok: true, value: answer });
  });

  it.each(['status', 'cancel'] as const)('accepts an error answer to %s', (cmd) => {
    // Assess
    expect(parseControlResponse(cmd, '{"ok":false,"error":"request too large"}')).toEqual({ ok: true, value: { ok: false, error: 'request too large' } });
  });

  it.each<[string, 'status' | 'cancel', string, RegExp]>([
    ['an empty answer (fleetd closed the socket)', 'status', '', /answer: not JSON/],
    ['not JSON', 'status', 'Segmentation fault', /answer: not JSON/],
    ['a status without tasks', 'status', JSON.stringify({ ...STATUS, tasks: undefined }), /status answer\.tasks: expected array/],
    ['a status with a string slot count', 'status', JSON.stringify({ ...STATUS, slots: '2' }), /status answer\.slots: expected number/],
    ['a status with an unknown state', 'status', JSON.stringify({ ...STATUS, state: 'sleeping' }), /status answer\.state/],
    ['a status with an unknown task phase', 'status', JSON.stringify({ ...STATUS, tasks: [{ ...STATUS.tasks[0], phase: 'dancing' }] }), /status answer\.tasks\[0\]\.phase/],
    ['a status with an extra field', 'status', JSON.stringify({ ...STATUS, surprise: 1 }), /unknown field\(s\) "surprise"/],
    ['a cancel answer to a status request', 'status', JSON.stringify({ ok: true, found: true, message: 'x' }), /status answer/],
    ['a status answer to a cancel request', 'cancel', JSON.stringify(STATUS), /cancel answer/],
    ['a cancel answer without found', 'cancel', '{"ok":true,"message":"x"}', /cancel answer\.found: expected boolean/],
    ['an error without its message', 'cancel', '{"ok":false}', /cancel answer/],
    ['a bare true', 'cancel', 'true', /cancel answer/],
  ])('refuses %s', (_name, cmd, text, problem) => {
    // Act
    const parsed = parseControlResponse(cmd, text);

    // Assess
    expect(problemsOf(parsed)).toMatch(problem);
  });
});
