#!/usr/bin/env node
// Compiles lib/ once, as CommonJS, into dist/cjs (tsconfig.build.json; tsconfig.json is the
// ES module view that editors and the tests use); dist/esm/index.js is a thin ES module wrapper
// that re-exports it. One implementation means one module instance: a process that imports
// maskface and also requires it gets the same classes (one MaskFaceError, one model cache).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
if (!readFileSync(join(root, 'lib', 'api', 'versions.ts'), 'utf8').includes(`MASKFACE_VERSION = '${version}'`)) {
  console.error(`lib/api/versions.ts MASKFACE_VERSION differs from package.json version ${version}`);
  process.exit(1);
}
const tsc = require.resolve('typescript/bin/tsc');
rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
writeFileSync(join(root, 'dist', 'cjs', 'package.json'), '{ "type": "commonjs" }\n');

// Each entry point ('maskface', 'maskface/setup') gets a wrapper that names every export, so
// `import { FaceRecognizer } from 'maskface'` needs no guess by Node's CommonJS export detection.
mkdirSync(join(root, 'dist', 'esm'));
for (const entry of ['index', 'setup']) {
  const names = Object.keys(require(join(root, 'dist', 'cjs', `${entry}.js`))).filter((name) => name !== '__esModule');
  writeFileSync(
    join(root, 'dist', 'esm', `${entry}.js`),
    `// ES module entry: re-exports the CommonJS build, so both module systems share one instance.\n` +
      `import maskface from '../cjs/${entry}.js';\n\n` +
      `export const {\n${names.map((name) => `  ${name},`).join('\n')}\n} = maskface;\n`,
  );
  writeFileSync(join(root, 'dist', 'esm', `${entry}.d.ts`), `export * from '../cjs/${entry}.js';\n`);
}
