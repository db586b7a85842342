// The C++ tests of native/core (alignment, search, storage, attention masking) and, where nvcc
// was found, of the CUDA kernels run under ctest; this runs them as part of npm test when the
// build has them (npm install builds them in a checkout). A test that exits with its
// SKIP_RETURN_CODE (the CUDA harness without a GPU) is reported as skipped, with its reason.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/data.js';

const buildDir = join(repoRoot, 'build');
const skip = existsSync(join(buildDir, 'CTestTestfile.cmake')) ? false : 'native tests not built (npm run build:native)';

t.test('native core tests pass under ctest', { skip }, async (t) => {
  const tests = execFileSync('ctest', ['--test-dir', buildDir, '-N'], { encoding: 'utf8' });
  const names = [...tests.matchAll(/Test\s+#\d+: (\S+)/g)].map((m) => m[1]!);
  t.ok(names.length >= 2, `ctest lists ${names.join(', ')}`);
  for (const name of names) {
    let output = '';
    let ok = true;
    try {
      // -V: the test's own output is kept, so a skip can say why.
      output = execFileSync('ctest', ['--test-dir', buildDir, '-R', `^${name}$`, '-V'], { encoding: 'utf8' });
    } catch (error) {
      ok = false;
      output = String((error as { stdout?: string }).stdout ?? error);
    }
    if (ok && /\*\*\*Skipped/.test(output)) {
      const reason = /SKIP: (.*)/.exec(output)?.[1] ?? 'skipped by the test';
      t.pass(name, { skip: reason });
      continue;
    }
    t.ok(ok, name, ok ? {} : { diagnostic: true, output });
  }
});
