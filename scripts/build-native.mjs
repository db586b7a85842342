#!/usr/bin/env node
// Builds build/Release/maskface.node with cmake-js against ONNX Runtime 1.29.0 (fetched from
// the npm registry by scripts/fetch-ort.mjs); libonnxruntime.so.1 is copied beside it.
// Extra arguments go to cmake-js (for example --debug). Set MASKFACE_TESTS=OFF to skip the
// native test executables, and MASKFACE_CUDA=OFF|ON|AUTO (default AUTO: where nvcc >= 12 is
// found) to choose whether libmaskface_cuda.so, the CUDA kernel library, is built beside the addon.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

export async function buildNative(extra = []) {
  if (!existsSync(join(root, 'dist', 'esm', 'npm-fetch.js'))) {
    execFileSync(process.execPath, [join(root, 'scripts', 'build-ts.mjs')], { stdio: 'inherit' });
  }
  const { fetchOrt } = await import('./fetch-ort.mjs');
  const ortRoot = await fetchOrt();
  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  } catch {
    throw new Error('cmake-js is not installed: building maskface from source needs its devDependencies (npm install in a clone)');
  }
  const parallel = process.env.CMAKE_BUILD_PARALLEL_LEVEL || '2';
  execFileSync(
    process.execPath,
    [
      cmakeJs,
      'rebuild',
      '--out',
      join(root, 'build'),
      `--CDONNXRUNTIME_ROOT=${ortRoot}`,
      `--CDMASKFACE_TESTS=${process.env.MASKFACE_TESTS ?? 'ON'}`,
      `--CDMASKFACE_CUDA=${process.env.MASKFACE_CUDA ?? 'AUTO'}`,
      `--parallel`,
      parallel,
      ...extra,
    ],
    { stdio: 'inherit', cwd: root },
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  buildNative(process.argv.slice(2)).catch((error) => {
    console.error(`maskface: native build failed: ${error.message}`);
    process.exit(1);
  });
}
