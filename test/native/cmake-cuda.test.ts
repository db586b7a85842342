// MASKFACE_CUDA at configure time: AUTO builds libmaskface_cuda.so only with a CUDA 12+ compiler
// and otherwise says why and goes on (so npm install works where nvcc is absent or old); ON fails
// without one; anything else is refused. Configures the C++ project alone (no addon, no ONNX
// Runtime) in temporary folders.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/data.js';

const work = mkdtempSync(join(tmpdir(), 'maskface-cmake-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const noNvccPath = '/usr/bin:/bin';

function configure(name: string, args: string[], path = noNvccPath) {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: path };
  delete env.CUDACXX;
  const result = spawnSync('cmake', ['-S', repoRoot, '-B', join(work, name), '-DMASKFACE_ADDON=OFF', ...args], { env, encoding: 'utf8' });
  return { status: result.status, output: result.stdout + result.stderr };
}

const cmakeFound = spawnSync('cmake', ['--version'], { env: { ...process.env, PATH: noNvccPath } }).status === 0;

t.test('MASKFACE_CUDA at configure time', { skip: cmakeFound ? false : `no cmake in ${noNvccPath}` }, async (t) => {
  const absent = configure('absent', []);
  t.equal(absent.status, 0, 'AUTO without nvcc configures');
  t.match(absent.output, /no CUDA compiler found; libmaskface_cuda\.so is not built \(MASKFACE_CUDA=AUTO\)/);

  const fake = join(work, 'nvcc');
  writeFileSync(fake, '#!/bin/sh\necho "Cuda compilation tools, release 11.8, V11.8.89"\n');
  chmodSync(fake, 0o755);
  const old = configure('old', [`-DCMAKE_CUDA_COMPILER=${fake}`]);
  t.equal(old.status, 0, 'AUTO with CUDA 11 configures');
  t.match(old.output, /is CUDA '11', older than 12; libmaskface_cuda\.so is not built/);

  const required = configure('required', ['-DMASKFACE_CUDA=ON']);
  t.not(required.status, 0, 'ON without nvcc fails');
  t.match(required.output, /MASKFACE_CUDA=ON but CMake found no CUDA compiler/);

  const off = configure('off', ['-DMASKFACE_CUDA=OFF']);
  t.equal(off.status, 0);
  t.notMatch(off.output, /CUDA compiler/, 'OFF does not look for one');

  const bogus = configure('bogus', ['-DMASKFACE_CUDA=maybe']);
  t.not(bogus.status, 0);
  t.match(bogus.output, /MASKFACE_CUDA must be OFF, ON or AUTO, not 'maybe'/);
});
