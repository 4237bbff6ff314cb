/**
 * SpecSealer.verifyEarly (issue #18): the seal's KMS check begun beside the claim's write. The
 * task's own `verify` still decides: it uses an early answer only for the same MAC over the same
 * fields, at most once, and an early failure goes to the caller's retry like any other.
 * (The end-to-end cases, tampered and unsealed records through a real fleetd and moto's KMS,
 * are in test/integration/sealed-specs.test.ts.) KMS here is an in-process fake: the point is how
 * many calls are made, with which message, which a real server does not report.
 */
import type { KMSClient } from '@aws-sdk/client-kms';
import { sealMessage, type TaskRecord } from '../../daemon/src/contract';
import { SpecSealer, sealedFieldsOf } from '../../daemon/src/seal';

interface VerifyCall {
  readonly message: string;
  readonly mac: string;
}

/** A fake KMS whose MAC is valid when it equals `macFor(message)`; `fail` throws the next calls. */
function fakeKms() {
  const calls: VerifyCall[] = [];
  const state = { fail: 0 };
  const client = {
    send: async (command: { input: { Message: Uint8Array; Mac: Uint8Array } }) => {
      const message = Buffer.from(command.input.Message).toString('base64');
      const mac = Buffer.from(command.input.Mac).toString('base64');
      calls.push({ message, mac });
      if (state.fail > 0) {
        state.fail--;
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      }
      return { MacValid: mac === macFor(message) };
    },
  } as unknown as KMSClient;
  return { client, calls, state };
}

const macFor = (messageBase64: string) => Buffer.from(`mac:${messageBase64}`).toString('base64');

function sealedRecord(overrides: Partial<TaskRecord> = {}): TaskRecord {
  const base = { task_id: 't-early', spec: { image: 'demo:latest', command: ['true'] }, max_attempts: 3 } as unknown as TaskRecord;
  const message = Buffer.from(sealMessage(sealedFieldsOf(base))).toString('base64');
  return { ...base, seal: { v: 1, key_id: 'key', mac: macFor(message) }, ...overrides } as TaskRecord;
}

test('an early check is the answer verify gives for the same record: one KMS call', async () => {
  // Prepare
  const kms = fakeKms();
  const sealer = new SpecSealer(kms.client, 'key');
  const record = sealedRecord();
  // Act
  sealer.verifyEarly(record);
  const verdict = await sealer.verify(sealedFieldsOf(record), record.seal);
  // Assess
  expect(verdict).toEqual({ valid: true });
  expect(kms.calls).toHaveLength(1);
});

test('a record whose spec changed after the early check is asked afresh, and fails', async () => {
  const kms = fakeKms();
  const sealer = new SpecSealer(kms.client, 'key');
  const record = sealedRecord();
  sealer.verifyEarly(record);
  const tampered = { ...record, spec: { ...record.spec, command: ['sh', '-c', 'steal'] } } as TaskRecord;
  const verdict = await sealer.verify(sealedFieldsOf(tampered), tampered.seal);
  expect(verdict.valid).toBe(false);
  expect(kms.calls).toHaveLength(2);
  expect(kms.calls[1].message).not.toBe(kms.calls[0].message);
});

test('an early answer is used once: a second verify asks KMS again', async () => {
  const kms = fakeKms();
  const sealer = new SpecSealer(kms.client, 'key');
  const record = sealedRecord();
  sealer.verifyEarly(record);
  await sealer.verify(sealedFieldsOf(record), record.seal);
  await sealer.verify(sealedFieldsOf(record), record.seal);
  expect(kms.calls).toHaveLength(2);
});

test('an early failure is thrown to verify once; the retry that follows asks KMS and gets the verdict', async () => {
  const kms = fakeKms();
  kms.state.fail = 1;
  const sealer = new SpecSealer(kms.client, 'key');
  const record = sealedRecord();
  sealer.verifyEarly(record);
  await expect(sealer.verify(sealedFieldsOf(record), record.seal)).rejects.toMatchObject({ name: 'ThrottlingException' });
  await expect(sealer.verify(sealedFieldsOf(record), record.seal)).resolves.toEqual({ valid: true });
  expect(kms.calls).toHaveLength(2);
});

test('an unsealed record starts no early call, and verify says why it may not run', async () => {
  const kms = fakeKms();
  const sealer = new SpecSealer(kms.client, 'key');
  const record = sealedRecord({ seal: undefined });
  sealer.verifyEarly(record);
  const verdict = await sealer.verify(sealedFieldsOf(record), record.seal);
  expect(verdict).toMatchObject({ valid: false, reason: expect.stringMatching(/no seal/) });
  expect(kms.calls).toHaveLength(0);
});

test('an early check nobody uses (a claim lost the race) that fails raises no unhandled rejection', async () => {
  const kms = fakeKms();
  kms.state.fail = 1;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    new SpecSealer(kms.client, 'key').verifyEarly(sealedRecord());
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(kms.calls).toHaveLength(1);
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
