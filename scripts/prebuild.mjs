#!/usr/bin/env node
// Produces prebuilds/<platform>-<arch>/maskface.napi.glibc.node with libonnxruntime.so.1 beside
// it (prebuildify's layout and naming), built by cmake-js through scripts/cmake-js-shim.mjs.
// Binaries are built without -march=native; SIMD is chosen at run time.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuildify = createRequire(import.meta.url).resolve('prebuildify/bin.js');
execFileSync(
  process.execPath,
  [prebuildify, '--napi', '--tag-libc', '--strip', '--name', 'maskface.napi', '--node-gyp', join(root, 'scripts', 'cmake-js-shim.mjs')],
  { stdio: 'inherit', cwd: root },
);
