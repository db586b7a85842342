#!/usr/bin/env node
// Compiles lib/ twice: ESM into dist/esm and CommonJS into dist/cjs (index.cjs entry).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync, copyFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
if (!readFileSync(join(root, 'lib', 'versions.ts'), 'utf8').includes(`MASKFACE_VERSION = '${version}'`)) {
  console.error(`lib/versions.ts MASKFACE_VERSION differs from package.json version ${version}`);
  process.exit(1);
}
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.cjs.json')], { stdio: 'inherit' });
const cjs = join(root, 'dist', 'cjs');
writeFileSync(join(cjs, 'package.json'), '{ "type": "commonjs" }\n');
// CommonJS has no import.meta: locate the package from __dirname instead.
writeFileSync(
  join(cjs, 'package-root.js'),
  '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\n' +
    'exports.packageRoot = require("node:path").join(__dirname, "..", "..");\n',
);
copyFileSync(join(cjs, 'index.js'), join(cjs, 'index.cjs'));
copyFileSync(join(cjs, 'index.d.ts'), join(cjs, 'index.d.cts'));
