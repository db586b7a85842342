#!/usr/bin/env node
// npm install hook. Uses a prebuilt addon when one loads on this machine and compiles nothing;
// otherwise builds from source (cmake-js, ONNX Runtime headers and library from the npm
// registry). Then prepares the default model unless MASKFACE_SKIP_MODEL_DOWNLOAD=1: a bundled
// default is only checked against its sidecar, a catalogue default is fetched into the cache
// (it is also fetched on first use).
// MASKFACE_BUILD_FROM_SOURCE=1 forces a build.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (message) => console.error(`maskface: ${message}`);

// A checkout has the TypeScript sources and compiles them; a published package ships dist/.
function ensureTypeScriptBuild() {
  if (!existsSync(join(root, 'lib', 'index.ts'))) return;
  execFileSync(process.execPath, [join(root, 'scripts', 'build-ts.mjs')], { stdio: 'inherit' });
}

// Loads the addon and its ONNX Runtime in a child process, so a crash while loading cannot take
// the install with it.
function bindingLoads() {
  const probe = `import(${JSON.stringify(join(root, 'dist', 'cjs', 'runtime', 'binding-loader.js'))})
    .then((m) => console.log(JSON.stringify(m.native().versions())))
    .catch((e) => { console.error(e.message); process.exit(1); });`;
  const result = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
  return { ok: result.status === 0, output: (result.stdout + result.stderr).trim() };
}

async function main() {
  ensureTypeScriptBuild();
  const forced = process.env.MASKFACE_BUILD_FROM_SOURCE === '1';
  const probe = forced ? { ok: false, output: 'MASKFACE_BUILD_FROM_SOURCE=1' } : bindingLoads();
  if (probe.ok) {
    log(`native addon loads (${probe.output}); nothing to compile`);
  } else {
    log(`no usable prebuilt addon (${probe.output.split('\n')[0]}); building from source`);
    const { buildNative } = await import('./build-native.mjs');
    await buildNative();
  }
  if (process.env.MASKFACE_SKIP_MODEL_DOWNLOAD === '1') return;
  try {
    const { ensureModel, defaultModel } = await import(join(root, 'dist', 'cjs', 'setup', 'models.js'));
    await ensureModel(defaultModel, { onProgress: log });
  } catch (error) {
    log(`warning: the default model is not ready (${error.message})`);
  }
}

main().catch((error) => {
  log(`install failed: ${error.message}`);
  process.exit(1);
});
