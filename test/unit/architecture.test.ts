/**
 * Architecture rules that keep the core in one piece (docs/architecture.md, "Who writes what"):
 * - only the store module (daemon/src/store/) sends writes to the fleet's tables; the one other
 *   DynamoDB writer in the product is the ABCA heartbeat mirror, which writes ABCA's table;
 * - the shipped code (fleetd, the CLI and client library, the Lambdas) never imports the dev
 *   tooling under scripts/dev/ or the tests.
 * Dev tooling and tests may write tables directly: they play foreign writers on purpose (bad
 * records for the chaos suite, races in the store's tests).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/** The product's source: what ships on the AMI, in the CLI, or as a Lambda. */
const PRODUCT_DIRS = ['daemon/src', 'scripts/lib', 'scripts/cli', 'infra/handlers'];
const PRODUCT_FILES = ['scripts/fleet.ts', 'scripts/fleet-bundle.ts'];

/** Files allowed to send DynamoDB writes, and why. */
const WRITERS: Record<string, string> = {
  'daemon/src/store/': 'the store: the one writer of the tasks, events and instances tables',
  'daemon/src/abca-mirror.ts': "mirrors heartbeats into ABCA's TaskTable, which is not a fleet table",
};

/** Every DynamoDB command that writes, in lib-dynamodb's and client-dynamodb's names. */
const WRITE_COMMAND = /\b(Put|Update|Delete|TransactWrite|BatchWrite)(Item|Items)?Command\b|\b(Batch)?ExecuteStatementCommand\b|\bExecuteTransactionCommand\b/;

function sourceFiles(): string[] {
  const out: string[] = [...PRODUCT_FILES];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (rel.endsWith('.ts')) out.push(rel);
    }
  };
  PRODUCT_DIRS.forEach(walk);
  return out;
}

/** Lines of `source` that name a DynamoDB write command (comments included: an import is enough). */
export function writeCommandLines(source: string): string[] {
  return source.split('\n').filter((line) => WRITE_COMMAND.test(line));
}

function allowedWriter(file: string): boolean {
  return Object.keys(WRITERS).some((allowed) => (allowed.endsWith('/') ? file.startsWith(allowed) : file === allowed));
}

describe('the scanner itself', () => {
  test.each([
    ["import { PutCommand } from '@aws-sdk/lib-dynamodb';"],
    ['await ddb.send(new UpdateCommand({ TableName: t }));'],
    ['new TransactWriteItemsCommand({})'],
    ['new BatchWriteCommand({})'],
    ['new DeleteItemCommand({})'],
    ['new ExecuteStatementCommand({ Statement: "UPDATE tasks SET x = 1" })'],
  ])('finds a write in %s', (line) => {
    expect(writeCommandLines(`const a = 1;\n${line}\n`)).toEqual([line]);
  });

  test.each([["import { GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';"], ['new SendMessageCommand({})'], ['new PutObjectCommand({})'], ['new PutMetricDataCommand({})']])(
    'leaves reads and other services alone: %s',
    (line) => {
      expect(writeCommandLines(line)).toEqual([]);
    },
  );
});

test('only the store module writes the fleet tables', () => {
  const strays = sourceFiles()
    .filter((file) => !allowedWriter(file))
    .flatMap((file) => writeCommandLines(fs.readFileSync(path.join(ROOT, file), 'utf8')).map((line) => `${file}: ${line.trim()}`));
  expect(strays).toEqual([]);
});

test('the shipped code never imports dev tooling or tests', () => {
  const imports = /(?:from\s+|import\s*\(|require\s*\(|^import\s+)['"]([^'"]+)['"]/gm;
  const strays: string[] = [];
  for (const file of sourceFiles()) {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(imports)) {
      const spec = m[1];
      if (!spec.startsWith('.')) continue;
      const target = path.relative(ROOT, path.resolve(ROOT, path.dirname(file), spec));
      if (target.startsWith('scripts/dev') || target.startsWith('test')) strays.push(`${file} imports ${spec}`);
    }
  }
  expect(strays).toEqual([]);
});
