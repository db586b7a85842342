// A short run of the fuzzer of maskface's TypeScript readers of outside bytes (embedding bytes,
// pair sets, ONNX protobuf, PGM/PPM, the command line's gallery file): every mutated input must
// come back as a value or a MaskFaceError. The long runs (a million inputs a target) are
// `node scripts/fuzz-js.mjs`.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/data.js';

t.test('5,000 mutated inputs per reader: values or MaskFaceErrors only', async (t) => {
  const out = execFileSync(process.execPath, [join(repoRoot, 'scripts', 'fuzz-js.mjs'), '--runs', '5000', '--seed', '7'], {
    encoding: 'utf8',
  });
  const lines = out.trim().split('\n');
  t.equal(lines.length, 5, out);
  for (const line of lines) t.match(line, /: 5000 runs in [0-9.]+ s, \d+ accepted, 0 findings$/);
  t.ok(lines.every((line) => !/ 0 accepted/.test(line)), 'every target also accepts some mutated inputs (the seeds are valid)');
});
