#!/usr/bin/env node
// Fetches the reference runtime of the parity tests, onnxruntime-node 1.30.0 with its
// onnxruntime-common, into .cache/test-peers/node_modules: sha256-pinned tarballs from the npm
// registry, unpacked without running their install scripts (onnxruntime-node's would download
// CUDA libraries from outside the registry). Run by `npm test`; a no-op once fetched.
import { existsSync } from 'node:fs';
import { readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchPackageMembers } from '../dist/cjs/setup/npm-fetch.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const testPeersDir = join(root, '.cache', 'test-peers', 'node_modules');

const peers = [
  {
    name: 'onnxruntime-common',
    version: '1.30.0',
    sha256: '7906c439e0d3e0f4048caa23b64cdfadc0f455c377f579ce1ab2a4b778f07d5f',
    members: ['package/package.json', 'package/dist'],
  },
  {
    name: 'onnxruntime-node',
    version: '1.30.0',
    sha256: '6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75',
    members: ['package/package.json', 'package/dist', 'package/bin'],
  },
];

export async function fetchTestPeers({ log = (m) => process.stderr.write(`maskface: ${m}\n`) } = {}) {
  for (const peer of peers) {
    const target = join(testPeersDir, peer.name);
    const stamp = join(target, 'maskface-source.json');
    if (existsSync(stamp) && JSON.parse(await readFile(stamp, 'utf8')).sha256 === peer.sha256) continue;
    const staging = `${target}.partial`;
    await rm(staging, { recursive: true, force: true });
    await fetchPackageMembers({ ...peer, destination: staging, log });
    // onnxruntime-node carries every platform's binaries; this machine needs its own only.
    const platforms = join(staging, 'bin', 'napi-v6');
    if (existsSync(platforms)) {
      for (const platform of await readdir(platforms)) {
        if (platform !== process.platform) await rm(join(platforms, platform), { recursive: true });
        else for (const arch of await readdir(join(platforms, platform))) if (arch !== process.arch) await rm(join(platforms, platform, arch), { recursive: true });
      }
    }
    await writeFile(join(staging, 'maskface-source.json'), `${JSON.stringify({ name: peer.name, version: peer.version, sha256: peer.sha256 })}\n`);
    await rm(target, { recursive: true, force: true });
    await rename(staging, target);
    log(`${peer.name}@${peer.version} ready in ${target}`);
  }
  return testPeersDir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  fetchTestPeers().catch((error) => {
    console.error(`maskface: ${error.message}`);
    process.exit(1);
  });
}
