// The C++ tests of native/core again, built with AddressSanitizer and UBSan (MASKFACE_SANITIZE=ON)
// in their own folder, build/sanitize: an out-of-bounds access, a use after free, a leak or
// undefined behaviour (signed overflow, a bad shift, a misaligned load...) in the core or the
// tests aborts the test program, and the test fails with the sanitizer's report. The first run
// configures and compiles (about 15 s on 2 cores); later runs rebuild what changed. Skipped
// where cmake or a C++ compiler that links -fsanitize=address,undefined is missing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/data.js';

const buildDir = join(repoRoot, 'build', 'sanitize');

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const result = spawnSync(command, args, { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: result.error ? null : result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

// The compiler CMake would pick (CXX, else c++), and whether it links a sanitized program.
function findSkipReason(): string | false {
  if (run('cmake', ['--version']).status !== 0) return 'cmake not found';
  const compiler = process.env.CXX || 'c++';
  if (run(compiler, ['--version']).status !== 0) return `no C++ compiler (${compiler}) found`;
  const work = mkdtempSync(join(tmpdir(), 'maskface-sanitize-'));
  try {
    writeFileSync(join(work, 'probe.cc'), 'int main() { return 0; }\n');
    const probe = run(compiler, ['-fsanitize=address,undefined', join(work, 'probe.cc'), '-o', join(work, 'probe')]);
    if (probe.status !== 0) return `${compiler} cannot link -fsanitize=address,undefined (libasan/libubsan missing?)`;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return false;
}

const skip = findSkipReason();

t.test('native core tests pass under AddressSanitizer and UBSan', { skip }, async (t) => {
  const configure = run('cmake', ['-S', repoRoot, '-B', buildDir, '-DMASKFACE_ADDON=OFF', '-DMASKFACE_CUDA=OFF',
    '-DMASKFACE_TESTS=ON', '-DMASKFACE_SANITIZE=ON']);
  t.equal(configure.status, 0, 'cmake configures build/sanitize', configure.status === 0 ? {} : { output: configure.output });
  if (configure.status !== 0) return;

  const build = run('cmake', ['--build', buildDir, '-j2']);
  t.equal(build.status, 0, 'the sanitized core and tests build', build.status === 0 ? {} : { output: build.output.slice(-20000) });
  if (build.status !== 0) return;

  const listing = run('ctest', ['--test-dir', buildDir, '-N']).output;
  const names = [...listing.matchAll(/Test\s+#\d+: (\S+)/g)].map((m) => m[1]!);
  t.ok(names.length >= 2, `ctest lists ${names.join(', ')}`);
  // The build really is instrumented: every test program calls into both runtimes.
  for (const name of names) {
    const binary = join(buildDir, name);
    if (!existsSync(binary)) continue;
    const bytes = readFileSync(binary);
    t.ok(bytes.includes('__asan_init') && bytes.includes('__ubsan_handle_'), `${name} is built with ASan and UBSan`);
  }

  // LeakSanitizer stops the world with ptrace; it works in the sandboxes and CI containers this
  // runs in (checked), so leaks are reported too. halt_on_error: the first report fails the test.
  const env = {
    ...process.env,
    ASAN_OPTIONS: 'detect_leaks=1',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  };
  const ctest = run('ctest', ['--test-dir', buildDir, '--output-on-failure'], env);
  for (const name of names) {
    const line = new RegExp(`Test\\s+#\\d+: ${name} \\.+\\**\\s*(\\S[^\\n]*?)\\s+[\\d.]+ sec`).exec(ctest.output);
    const result = line?.[1] ?? 'not run';
    // A harness that needs hardware (the CUDA tests, where built) may skip; nothing else may.
    if (/Skipped/.test(result)) {
      t.pass(name, { skip: `skipped by the test (${result})` });
      continue;
    }
    t.equal(result, 'Passed', name, result === 'Passed' ? {} : { output: ctest.output.slice(-20000) });
  }
  t.equal(ctest.status, 0, 'ctest reports no failure', ctest.status === 0 ? {} : { output: ctest.output.slice(-20000) });
});
