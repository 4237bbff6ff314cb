/**
 * `npm run schemas`: the fleet's published wire formats as JSON Schema (draft 2020-12), written
 * to schemas/ from the contract's zod schemas with zod's own `z.toJSONSchema`, so they can never
 * say something the code does not check. Committed; test/unit/schemas.test.ts regenerates them
 * in memory and fails when they drift.
 *
 * What JSON Schema cannot express (refinements: payload size and depth, payload vs payload_ref,
 * env/secrets clashes, valid Unicode) is still checked by the fleet; the schemas are the shape.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { EnvelopeSchema, IntakeMessageSchema, TaskRecordSchema, TaskSpecSchema, TaskStateChangeSchema } from '../../daemon/src/contract';

export const SCHEMAS_DIR = path.resolve(__dirname, '..', '..', 'schemas');
const BASE_ID = 'https://github.com/agent-fleet/agent-fleet/schemas/';

interface Published {
  readonly schema: z.ZodType;
  readonly title: string;
  readonly description: string;
  /** `input`: what a producer may write (defaults optional, unknown keys of a non-strict object allowed); `output`: what the fleet writes. */
  readonly io: 'input' | 'output';
}

const PUBLISHED: Record<string, Published> = {
  'intake-message.json': { schema: IntakeMessageSchema, io: 'input', title: 'Agent Fleet intake message', description: 'The body of a message on the fleet intake queue (FLEET_INTAKE_QUEUE_URL): a task spec, an optional idempotency key and an optional Step Functions task token. daemon/src/contract/intake.ts' },
  'spec.json': { schema: TaskSpecSchema, io: 'input', title: 'Agent Fleet task spec', description: 'What a submitter asks the fleet to run (fleet submit, the client library, the intake). daemon/src/contract/spec.ts' },
  'envelope.json': { schema: EnvelopeSchema, io: 'output', title: 'Agent Fleet task queue envelope', description: 'The body of a message on the task queue (FLEET_QUEUE_URL): only the task id; the record is the truth. daemon/src/contract/envelope.ts' },
  // As the fleet reads it: attributes it does not know are allowed (written by another version), not refused.
  'task-record.json': { schema: TaskRecordSchema, io: 'input', title: 'Agent Fleet task record', description: 'An item of the tasks table (FLEET_TASKS_TABLE) as the fleet writes it. daemon/src/contract/record.ts' },
  'task-state-change.json': { schema: TaskStateChangeSchema, io: 'output', title: 'Agent Fleet Task State Change (detail)', description: 'The detail of the EventBridge event (source "agent-fleet", detail-type "Agent Fleet Task State Change") every task transition produces. daemon/src/contract/task-state-change.ts' },
};

/** File name → file content, as `npm run schemas` writes them. */
export function generateSchemas(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(PUBLISHED).map(([file, p]) => {
      const generated = z.toJSONSchema(p.schema, { target: 'draft-2020-12', io: p.io, unrepresentable: 'any' }) as Record<string, unknown>;
      const { $schema, ...rest } = generated;
      const doc = { $schema, $id: `${BASE_ID}${file}`, title: p.title, description: p.description, ...rest };
      return [file, `${JSON.stringify(doc, null, 2)}\n`];
    }),
  );
}

if (require.main === module) {
  fs.mkdirSync(SCHEMAS_DIR, { recursive: true });
  for (const [file, text] of Object.entries(generateSchemas())) {
    fs.writeFileSync(path.join(SCHEMAS_DIR, file), text);
    console.error(`wrote ${path.relative(process.cwd(), path.join(SCHEMAS_DIR, file))}`);
  }
}
