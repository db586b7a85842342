// The published declarations compile for a strict consumer (and @ts-expect-error lines prove
// the types reject what they should).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/data.js';

function typecheck(project: string): { ok: boolean; output: string } {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    return { ok: true, output: execFileSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' }) };
  } catch (error) {
    return { ok: false, output: String((error as { stdout?: string }).stdout ?? error) };
  }
}

t.test('a strict TypeScript consumer type-checks against dist/*.d.ts', async (t) => {
  const { ok, output } = typecheck(join(repoRoot, 'test', 'types', 'tsconfig.json'));
  t.ok(ok, 'tsc reports no errors', ok ? {} : { output });
});

t.test('the tests themselves type-check (test/tsconfig.json, the strict settings of lib/)', async (t) => {
  const { ok, output } = typecheck(join(repoRoot, 'test', 'tsconfig.json'));
  t.ok(ok, 'tsc reports no errors', ok ? {} : { output });
});
