/**
 * The local stand-in for the SSM Agent. moto records SendCommand but never runs it, so this
 * process polls ListCommands (every 500 ms) and executes each new command on the instance(s)
 * it names, the way the real agent would run the document's `aws:runShellScript` step, except
 * that it never uses a shell:
 *  - each parameter is checked against the document's allowedPattern (moto does not);
 *  - the command line template is split into argv on whitespace *before* substitution, so a
 *    parameter value can never add or split arguments;
 *  - only `fleetd` (FLEETD_BIN_PATH, mapped to this checkout's bin/fleetd.js) may run.
 * The daemon of instance i-x listens on .fleet/run/i-x/fleetd.sock.
 */
import '../../../daemon/src/quiet-sdk-warning';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GetDocumentCommand, ListCommandsCommand, type Command, type SSMClient } from '@aws-sdk/client-ssm';
import { FLEETD_BIN_PATH, FLEET_ENV } from '../../../daemon/src/contract';
import { createAwsClients } from '../../../daemon/src/aws';
import { FLEET_DIR, PROJECT_ROOT, instanceDir } from './paths';

interface DocumentStep {
  action?: string;
  inputs?: { runCommand?: string[] };
}
interface DocumentContent {
  parameters?: Record<string, { allowedPattern?: string }>;
  mainSteps?: DocumentStep[];
}

const SEEN_FILE = path.join(FLEET_DIR, 'ssm-agent-seen.json');
const log = (line: Record<string, unknown>) => console.log(JSON.stringify({ at: new Date().toISOString(), ...line }));

/** Builds argv from a runCommand template: split first, substitute second. Exported for tests. */
export function buildArgv(template: string, parameters: Record<string, string[]>, content: DocumentContent): string[] {
  for (const [name, values] of Object.entries(parameters)) {
    const pattern = content.parameters?.[name]?.allowedPattern;
    for (const v of values) {
      if (pattern !== undefined && !new RegExp(pattern).test(v)) {
        throw new Error(`parameter ${name}: value does not match allowedPattern ${pattern}`);
      }
    }
  }
  return template
    .trim()
    .split(/\s+/)
    .map((token) => token.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => (parameters[name] ?? []).join(',')));
}

/**
 * Present while an instance runs an SSM agent of its own (a test's, see cli.test.ts): one agent
 * per instance, as on EC2, so this shared agent leaves that instance's commands alone.
 */
export function ownAgentMarker(instanceId: string): string {
  return path.join(instanceDir(instanceId), 'ssm-agent.own');
}

async function runOnInstance(argv: string[], instanceId: string): Promise<void> {
  if (argv[0] !== FLEETD_BIN_PATH) throw new Error(`refused: the local SSM agent only runs ${FLEETD_BIN_PATH}, got ${argv[0]}`);
  if (fs.existsSync(ownAgentMarker(instanceId))) {
    log({ msg: 'this instance runs its own SSM agent: skipped', instanceId });
    return;
  }
  const socket = path.join(instanceDir(instanceId), 'fleetd.sock');
  // moto targets every instance it knows; only instances a local daemon acts as can answer.
  if (!fs.existsSync(socket)) {
    log({ msg: 'no local daemon acts as this instance: skipped', instanceId });
    return;
  }
  await new Promise<void>((resolve) => {
    execFile(
      process.execPath,
      [path.join(PROJECT_ROOT, 'bin', 'fleetd.js'), ...argv.slice(1)],
      { env: { ...process.env, [FLEET_ENV.socket]: socket }, timeout: 120_000 },
      (err, stdout, stderr) => {
        log({ msg: 'command finished', instanceId, argv, exit: err ? (err as { code?: unknown }).code ?? 1 : 0, stdout: stdout.trim(), stderr: stderr.trim() });
        resolve();
      },
    );
  });
}

export async function pollOnce(ssm: SSMClient, seen: Set<string>, documents: Map<string, DocumentContent>): Promise<number> {
  const fresh: Command[] = [];
  let nextToken: string | undefined;
  do {
    const page = await ssm.send(new ListCommandsCommand({ NextToken: nextToken, MaxResults: 50 }));
    for (const c of page.Commands ?? []) if (c.CommandId && !seen.has(c.CommandId)) fresh.push(c);
    nextToken = page.NextToken;
  } while (nextToken);
  for (const command of fresh) {
    seen.add(command.CommandId!);
    try {
      const name = command.DocumentName!;
      if (!documents.has(name)) {
        const doc = await ssm.send(new GetDocumentCommand({ Name: name }));
        documents.set(name, JSON.parse(doc.Content ?? '{}') as DocumentContent);
      }
      const content = documents.get(name)!;
      const step = content.mainSteps?.find((s) => s.action === 'aws:runShellScript');
      const templates = step?.inputs?.runCommand ?? [];
      for (const instanceId of command.InstanceIds ?? []) {
        for (const template of templates) {
          const argv = buildArgv(template, command.Parameters ?? {}, content);
          log({ msg: 'running command', commandId: command.CommandId, document: name, instanceId, argv });
          await runOnInstance(argv, instanceId);
        }
      }
    } catch (err) {
      log({ msg: 'command refused', commandId: command.CommandId, error: (err as Error).message });
    }
  }
  return fresh.length;
}

async function main(): Promise<void> {
  const { ssm } = createAwsClients();
  const seen = new Set<string>(fs.existsSync(SEEN_FILE) ? (JSON.parse(fs.readFileSync(SEEN_FILE, 'utf8')) as string[]) : []);
  const documents = new Map<string, DocumentContent>();
  log({ msg: 'local ssm agent polling ListCommands every 500 ms' });
  let stopping = false;
  process.on('SIGTERM', () => (stopping = true));
  process.on('SIGINT', () => (stopping = true));
  while (!stopping) {
    try {
      if ((await pollOnce(ssm, seen, documents)) > 0) fs.writeFileSync(SEEN_FILE, JSON.stringify([...seen]));
    } catch (err) {
      log({ msg: 'poll failed', error: (err as Error).message });
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  log({ msg: 'stopped' });
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
