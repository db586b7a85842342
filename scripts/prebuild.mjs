#!/usr/bin/env node
// Produces prebuilds/<platform>-<arch>/maskface.napi.glibc.node with libonnxruntime.so.1 beside
// it (prebuildify's layout and naming), built by cmake-js through scripts/cmake-js-shim.mjs, and
// maskface.sources.json, the fingerprint of the sources it was built from.
// Binaries are built without -march=native; SIMD is chosen at run time.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { root, sourcesDigest, stampPath } from './prebuild-sources.mjs';

const prebuildify = createRequire(import.meta.url).resolve('prebuildify/bin.js');
const sources = sourcesDigest();
execFileSync(
  process.execPath,
  [prebuildify, '--napi', '--tag-libc', '--strip', '--name', 'maskface.napi', '--node-gyp', join(root, 'scripts', 'cmake-js-shim.mjs')],
  { stdio: 'inherit', cwd: root },
);
writeFileSync(stampPath, `${JSON.stringify({ sources, builtAt: new Date().toISOString() }, null, 2)}\n`);
