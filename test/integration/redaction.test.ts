/**
 * Issue #15 on real Docker + moto: a task declares secrets that escape naive redaction (a quote,
 * a backslash, newlines and non-ASCII; a JSON body whose fields are printed alone; the fleet's
 * plain demo secret), prints them (split across writes, on stdout and stderr) and writes them
 * into result.json JSON-escaped, as values and as keys. None of them, nor their escaped forms,
 * reaches the record (result, log_tail, reason), an event, fleetd's log lines or the task's log
 * file.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateSecretCommand, DeleteSecretCommand } from '@aws-sdk/client-secrets-manager';
import { TaskStatus, type TaskSpecInput } from '../../daemon/src/contract';
import { REDACTED } from '../../daemon/src/log';
import { FleetClient } from '../../scripts/lib/client';
import { TaskLogStreamReader, createLogsClient } from '../../scripts/lib/task-logs';
import { TestDaemon } from '../../scripts/dev/harness/daemon';
import { freshFleet, type TestFleet } from '../../scripts/dev/harness/fleet';

let fleet: TestFleet;
let client: FleetClient;
let daemon: TestDaemon | undefined;
const created: string[] = [];

const hex = (): string => randomBytes(6).toString('hex');
const tricky = `pa"ss\\word-${hex()}\nsecond line ${hex()} \\n"\n🔑 ünïcode-${hex()}`;
const jsonUser = `svc-redact-${hex()}`;
const jsonSecret = JSON.stringify({ username: jsonUser, password: `pw-${hex()}"q\\z` });

/**
 * The agent, fixed text (an argv, no shell built from test data): prints each secret, the tricky
 * one split across two writes a second apart and once more on stderr, the JSON secret's
 * username field alone, then writes result.json with the tricky secret JSON-escaped (sed + awk)
 * as a value and a key, and the demo secret as a value and a key. Exits 3, so the record has a
 * reason too.
 */
const SCRIPT = String.raw`set -eu
printf 'tricky: %s\n' "$REDACT_TRICKY"
printf 'demo: %s\n' "$REDACT_DEMO"
printf 'json: %s\n' "$REDACT_JSON"
user=$(printf '%s' "$REDACT_JSON" | sed -n 's/.*"username":"\([^"]*\)".*/\1/p')
printf 'user: %s\n' "$user"
printf '%s' "$REDACT_TRICKY" | head -c 7
sleep 1
printf '%s\n' "$REDACT_TRICKY" | tail -c +8
printf 'on stderr: %s\n' "$REDACT_TRICKY" >&2
esc=$(printf '%s' "$REDACT_TRICKY" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | awk 'NR>1{printf "\\n"} {printf "%s", $0}')
jesc=$(printf '%s' "$REDACT_JSON" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')
printf '{"token":"%s","%s":"tricky as a key","demo":"%s","%s":"demo as a key","json":"%s","user":"%s","nested":{"list":["x %s y"]}}\n' "$esc" "$esc" "$REDACT_DEMO" "$REDACT_DEMO" "$jesc" "$user" "$esc" > "$FLEET_OUTPUT_DIR/result.json"
echo 'agent: done'
exit 3`;

const escaped = (s: string): string => JSON.stringify(s).slice(1, -1);

/** Every string and every key of a decoded JSON value. */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      strings(x, out);
    }
  }
  return out;
}

/** fleetd's lines are JSON; anything else on its output (a runtime warning) is checked raw only. */
function parseOrNothing(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

beforeAll(async () => {
  fleet = await freshFleet({ instances: 1 });
  client = new FleetClient(fleet.clients, fleet.resources);
});

afterAll(async () => {
  await daemon?.stop();
  for (const id of created) await fleet.clients.secrets.send(new DeleteSecretCommand({ SecretId: id, ForceDeleteWithoutRecovery: true })).catch(() => undefined);
});

async function createSecret(name: string, value: string): Promise<string> {
  const res = await fleet.clients.secrets.send(new CreateSecretCommand({ Name: `${fleet.resources.fleetName}/${name}`, SecretString: value }));
  created.push(res.ARN!);
  expect(res.ARN!.startsWith(fleet.resources.secretArnPrefix)).toBe(true);
  return res.ARN!;
}

test('secrets with quotes, backslashes, newlines, unicode and JSON bodies reach no record field, event, fleetd log line or task log file', async () => {
  // Prepare: the two secrets under the fleet's allowed prefix, and a daemon.
  const trickyArn = await createSecret(`redact-tricky-${hex()}`, tricky);
  const jsonArn = await createSecret(`redact-json-${hex()}`, jsonSecret);
  const { demoSecretArn, demoSecretValue } = fleet.resources;
  daemon = new TestDaemon(fleet, fleet.resources.instanceIds[0]).start();
  await daemon.ready();
  const spec: TaskSpecInput = {
    image: fleet.demoImage,
    command: ['sh', '-c', SCRIPT],
    secrets: { REDACT_TRICKY: trickyArn, REDACT_DEMO: demoSecretArn, REDACT_JSON: jsonArn },
    memory_mb: 128,
    cpus: 0.5,
  };

  // Act
  const { taskId } = await client.submitTask(spec);
  const record = await client.waitForTerminal(taskId, { timeoutMs: 90_000 });
  await daemon.waitForLog(/task finished/);
  const events = await client.listEvents(taskId);
  const logFile = path.join(daemon.workDir, 'lib', 'logs', `${taskId}.log`);
  const taskLog = fs.readFileSync(logFile, 'utf8');
  // The CloudWatch stream fleetd shipped (docs/logs.md): the same redacted lines as the file.
  const reader = new TaskLogStreamReader(await createLogsClient(fleet.resources.region), fleet.resources.logGroup, taskId, record.attempt);
  const shipped = ((await reader.read()) ?? []).map((l) => (l.message === ' ' ? '' : l.message)).join('\n');

  // Assess: the task ran and printed and recorded what it was given, redacted...
  expect(record.status).toBe(TaskStatus.FAILED);
  expect(record.reason).toBe('exit code 3');
  expect(record.result_error).toBeUndefined();
  expect(record.result).toEqual({
    token: REDACTED,
    [REDACTED]: 'demo as a key', // the tricky key collided with the demo key once redacted: the later one stays
    demo: REDACTED,
    json: REDACTED,
    user: REDACTED, // a string field of the JSON secret, registered on its own
    nested: { list: [`x ${REDACTED} y`] },
  });
  expect(record.log_tail).toContain(`tricky: ${REDACTED}`);
  expect(record.log_tail).toContain(`user: ${REDACTED}`);
  expect(record.log_tail).toContain('agent: done');
  expect(taskLog).toContain(`on stderr: ${REDACTED}`);
  expect(taskLog).toContain(`demo: ${REDACTED}`);
  expect(`${shipped}\n`).toBe(taskLog);

  // ...and no secret, no escaped form of one and no registered line or field of one is anywhere.
  const secrets = [tricky, demoSecretValue, jsonSecret, jsonUser, JSON.parse(jsonSecret).password as string, ...tricky.split('\n').filter((l) => l.trim().length >= 8)];
  const decoded = [...strings(record), ...strings(events), ...daemon.lines.flatMap((l) => strings(parseOrNothing(l)))];
  const raw = [JSON.stringify(record), JSON.stringify(events), ...daemon.lines, taskLog, shipped];
  for (const s of secrets) {
    for (const text of [...decoded, ...raw]) {
      expect(text.includes(s)).toBe(false);
      expect(text.includes(escaped(s))).toBe(false);
    }
  }
  expect(daemon.lines.length).toBeGreaterThan(3);
  expect(events.length).toBeGreaterThanOrEqual(4);
});
