// A one-minute soak: 8 callers on the main thread and 4 worker threads embed photos and faces,
// detect, add and remove, search and save/load galleries at once. No call may fail, and memory
// must level off (a generous bound: the first seconds grow ONNX Runtime's arenas). The half-hour
// run and its plot: `node scripts/soak.mjs --png docs/pictures/soak.png` (docs/reliability.md).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { repoRoot } from '../helpers/data.js';

t.test('60 s of 8 callers and 4 worker threads: no errors, memory levels off', { timeout: 240_000 }, async (t) => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(repoRoot, 'scripts', 'soak.mjs'), '--seconds', '60', '--callers', '8', '--workers', '4', '--sample', '2', '--max-growth', '0.5'],
    { maxBuffer: 1 << 20 },
  ).catch((error: { stdout: string; stderr: string; code: number }) => {
    t.fail(`soak exited with ${error.code}: ${error.stdout}\n${error.stderr}`);
    return { stdout: error.stdout };
  });
  t.match(stdout, /: \d+ operations, 0 errors;/, stdout.trim());
  const operations = Number(/: (\d+) operations/.exec(stdout)?.[1]);
  t.ok(operations > 500, `${operations} operations in a minute`);
});
