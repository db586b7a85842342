// docs/api.md documents every export of 'maskface' and 'maskface/setup', values and types alike.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/data.js';

const require = createRequire(import.meta.url);
const api = readFileSync(join(repoRoot, 'docs', 'api.md'), 'utf8');
// Every code span and fenced block of the page.
const code = [...api.matchAll(/```[\s\S]*?```|`[^`\n]+`/g)].map((m) => m[0]).join('\n');

/** Names a TypeScript entry file exports, values and types (export { a, b } / export type { C }). */
function exportedNames(entry: string): string[] {
  const source = readFileSync(join(repoRoot, 'lib', entry), 'utf8');
  return [...source.matchAll(/^export (?:type )?\{([^}]+)\}/gm)].flatMap((m) => m[1]!.split(',').map((name) => name.trim()).filter(Boolean));
}

for (const entry of ['index', 'setup']) {
  t.test(`docs/api.md names every export of ${entry === 'index' ? "'maskface'" : "'maskface/setup'"}`, async (t) => {
    const runtime = Object.keys(require(join(repoRoot, 'dist', 'cjs', `${entry}.js`))).filter((name) => name !== '__esModule');
    const declared = exportedNames(`${entry}.ts`);
    t.same([...runtime].sort(), declared.filter((name) => runtime.includes(name)).sort(), 'the runtime exports are those of the entry file');
    t.ok(runtime.length > 5, `${runtime.length} runtime exports`);
    for (const name of declared) t.match(code, new RegExp(`\\b${name}\\b`), `${name} appears in a code span`);
  });
}
