/**
 * The committed JSON Schemas (schemas/) are what `npm run schemas` generates from the contract
 * now: a contract change without regenerating them fails here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SCHEMAS_DIR, generateSchemas } from '../../scripts/dev/schemas';

const generated = generateSchemas();

test.each(Object.keys(generated))('schemas/%s matches the contract', (file) => {
  const committedPath = path.join(SCHEMAS_DIR, file);
  const committed = fs.existsSync(committedPath) ? fs.readFileSync(committedPath, 'utf8') : '(missing)';
  if (committed !== generated[file]) {
    // The diff below says what changed; the fix is always the same.
    expect({ file, hint: 'schemas/ is out of date with the contract: run `npm run schemas` and commit the result', schema: JSON.parse(committed === '(missing)' ? 'null' : committed) }).toEqual({
      file,
      hint: 'schemas/ matches the contract',
      schema: JSON.parse(generated[file]),
    });
  }
});

test('every file in schemas/ is generated (none left behind by a rename)', () => {
  const present = fs.readdirSync(SCHEMAS_DIR).filter((f) => f.endsWith('.json')).sort();
  expect(present).toEqual(Object.keys(generated).sort());
});
