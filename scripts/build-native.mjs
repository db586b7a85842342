#!/usr/bin/env node
// Builds build/Release/maskface.node with cmake-js against ONNX Runtime 1.29.0 (fetched from
// the npm registry by scripts/fetch-ort.mjs); libonnxruntime.so.1 is copied beside it.
// Extra arguments go to cmake-js (for example --debug). Set MASKFACE_TESTS=OFF to skip the
// native test executables (off by default where native/tests is absent, as in the published
// package), and MASKFACE_CUDA=OFF|ON|AUTO (default AUTO: where nvcc >= 12 is found) to choose
// whether libmaskface_cuda.so, the CUDA kernel library, is built beside the addon.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

const needs =
  'building maskface from source needs cmake >= 3.18 and a C++17 compiler on PATH, and the npm packages ' +
  'cmake-js and node-addon-api (a clone has them after `npm install`; in an installed package: ' +
  '`npm install --no-save cmake-js@8 node-addon-api@8` in the folder of your project, then `npm rebuild maskface`)';

/** cmake-js's entry point, or an error naming every missing tool. */
function sourceBuildTools() {
  const missing = [];
  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  } catch {
    missing.push('cmake-js');
  }
  try {
    require.resolve('node-addon-api');
  } catch {
    missing.push('node-addon-api');
  }
  if (spawnSync('cmake', ['--version']).error) missing.push('cmake');
  if (missing.length > 0) throw new Error(`${missing.join(', ')} not found: ${needs}`);
  return cmakeJs;
}

export async function buildNative(extra = []) {
  if (!existsSync(join(root, 'dist', 'cjs', 'setup', 'npm-fetch.js'))) {
    execFileSync(process.execPath, [join(root, 'scripts', 'build-ts.mjs')], { stdio: 'inherit' });
  }
  const { fetchOrt, fetchXxhash } = await import('./fetch-ort.mjs');
  const ortRoot = await fetchOrt();
  const xxhashDir = await fetchXxhash();
  const cmakeJs = sourceBuildTools();
  const parallel = process.env.CMAKE_BUILD_PARALLEL_LEVEL || '2';
  execFileSync(
    process.execPath,
    [
      cmakeJs,
      'rebuild',
      '--out',
      join(root, 'build'),
      `--CDONNXRUNTIME_ROOT=${ortRoot}`,
      `--CDXXHASH_INCLUDE_DIR=${xxhashDir}`,
      `--CDMASKFACE_TESTS=${process.env.MASKFACE_TESTS ?? (existsSync(join(root, 'native', 'tests')) ? 'ON' : 'OFF')}`,
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
