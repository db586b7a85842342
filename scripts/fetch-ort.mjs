#!/usr/bin/env node
// Puts the ONNX Runtime 1.29.0 C/C++ headers and the Linux x64 libonnxruntime into
// .cache/onnxruntime-1.29.0/{include,lib}, from the npm package com.github.asus4.onnxruntime@0.4.9.
// It is stored (and shipped) as libonnxruntime.so.1 with its SONAME renamed to maskface's own
// (lib/setup/elf-soname.ts), so that another addon linking libonnxruntime.so.1 by name, loaded after
// maskface, gets its own library rather than this one.
// Prints the folder (ONNXRUNTIME_ROOT) on stdout. Also fetches xxHash's header (fetchXxhash).
import { mkdir, readdir, rename, rm, writeFile, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setSoname } from '../dist/cjs/setup/elf-soname.js';
import { exists, fetchPackageMembers, sha256File } from '../dist/cjs/setup/npm-fetch.js';

export const ORT = {
  name: 'com.github.asus4.onnxruntime',
  version: '0.4.9',
  ortVersion: '1.29.0',
  sha256: 'e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d',
  headers: 'package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers',
  library: 'package/Plugins/Linux/x64/libonnxruntime.so',
};

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function fetchOrt({ log = (m) => process.stderr.write(`maskface: ${m}\n`) } = {}) {
  const ortRoot = process.env.MASKFACE_ORT_ROOT || join(root, '.cache', `onnxruntime-${ORT.ortVersion}`);
  const stamp = join(ortRoot, 'maskface-source.json');
  if (await exists(stamp)) {
    const recorded = JSON.parse(await readFile(stamp, 'utf8'));
    if (recorded.sha256 === ORT.sha256 && (await exists(join(ortRoot, 'lib', 'libonnxruntime.so.1')))) {
      setSoname(join(ortRoot, 'lib', 'libonnxruntime.so.1'));  // a cache from before the rename
      return ortRoot;
    }
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`building maskface from source needs linux-x64 for ONNX Runtime (this is ${process.platform}-${process.arch})`);
  }
  const staging = `${ortRoot}.partial`;
  await rm(staging, { recursive: true, force: true });
  await fetchPackageMembers({ ...ORT, members: [ORT.headers, ORT.library], destination: staging, log });
  await mkdir(join(staging, 'lib'));
  await rename(join(staging, 'Headers'), join(staging, 'include'));
  await rename(join(staging, 'libonnxruntime.so'), join(staging, 'lib', 'libonnxruntime.so.1'));
  setSoname(join(staging, 'lib', 'libonnxruntime.so.1'));
  const headers = await readdir(join(staging, 'include'));
  if (!headers.includes('onnxruntime_cxx_api.h')) throw new Error('ONNX Runtime headers are missing from the package');
  const libSha256 = await sha256File(join(staging, 'lib', 'libonnxruntime.so.1'));
  await writeFile(join(staging, 'maskface-source.json'), JSON.stringify({ ...ORT, libSha256 }, null, 2));
  await rm(ortRoot, { recursive: true, force: true });
  await rename(staging, ortRoot);
  log(`ONNX Runtime ${ORT.ortVersion} ready in ${ortRoot}`);
  return ortRoot;
}

/**
 * xxHash 0.8.3 (BSD-2-Clause, Yann Collet), the checksum of gallery files: its single header,
 * compiled into the addon (XXH_INLINE_ALL), from the npm package xxhash-addon@2.1.0, which
 * carries xxHash's sources. Puts xxhash.h into .cache/xxhash-0.8.3 and returns the folder.
 */
export const XXHASH = {
  name: 'xxhash-addon',
  version: '2.1.0',
  xxhashVersion: '0.8.3',
  sha256: '2a680912f0d3150f55a5983f13a190566bc7f5ec50c33428f028621ada4cbb25',
  header: 'package/xxHash/xxhash.h',
};

export async function fetchXxhash({ log = (m) => process.stderr.write(`maskface: ${m}\n`) } = {}) {
  const dir = process.env.MASKFACE_XXHASH_DIR || join(root, '.cache', `xxhash-${XXHASH.xxhashVersion}`);
  if (await exists(join(dir, 'xxhash.h'))) return dir;
  const staging = `${dir}.partial`;
  await rm(staging, { recursive: true, force: true });
  await fetchPackageMembers({ ...XXHASH, members: [XXHASH.header], destination: staging, log });
  await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);
  log(`xxHash ${XXHASH.xxhashVersion} ready in ${dir}`);
  return dir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  Promise.all([fetchOrt(), fetchXxhash()]).then(
    ([dir]) => console.log(dir),
    (error) => {
      console.error(`maskface: ${error.message}`);
      process.exit(1);
    },
  );
}
