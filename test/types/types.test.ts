// The published declarations compile for a strict consumer (and @ts-expect-error lines prove
// the types reject what they should).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/data.js';

t.test('a strict TypeScript consumer type-checks against dist/*.d.ts', async (t) => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  let output = '';
  let ok = true;
  try {
    output = execFileSync(process.execPath, [tsc, '-p', join(repoRoot, 'test', 'types', 'tsconfig.json')], { encoding: 'utf8' });
  } catch (error) {
    ok = false;
    output = String((error as { stdout?: string }).stdout ?? error);
  }
  t.ok(ok, 'tsc reports no errors', ok ? {} : { output });
});
