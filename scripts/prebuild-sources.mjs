// The fingerprint of everything a prebuild is compiled from: the native sources, CMakeLists.txt
// and the scripts that fetch ONNX Runtime and drive the build. Written beside the prebuild
// (prebuilds/<platform>-<arch>/maskface.sources.json) so that packing can tell a current
// prebuild from a stale one.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const platformDir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
export const stampPath = join(platformDir, 'maskface.sources.json');

function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** sha256 over the sorted paths and contents of the prebuild's inputs. */
export function sourcesDigest() {
  const inputs = [
    // native/tests and native/fuzz are compiled into test programs, not into the addon.
    ...filesUnder(join(root, 'native')).filter((path) => !/native\/(tests|fuzz)\//.test(relative(root, path))),
    ...['CMakeLists.txt', 'scripts/fetch-ort.mjs', 'scripts/build-native.mjs', 'scripts/cmake-js-shim.mjs', 'scripts/prebuild.mjs'].map((p) => join(root, p)),
  ].sort();
  const hash = createHash('sha256');
  for (const path of inputs) hash.update(`${relative(root, path)}\0`).update(readFileSync(path)).update('\0');
  return hash.digest('hex');
}

/** Why the prebuild of this platform cannot ship as it is, or undefined when it is current. */
export function prebuildProblem() {
  for (const name of ['maskface.napi.glibc.node', 'libonnxruntime.so.1']) {
    if (!existsSync(join(platformDir, name))) return `${relative(root, join(platformDir, name))} is missing`;
  }
  if (!existsSync(stampPath)) return `${relative(root, stampPath)} is missing`;
  const recorded = JSON.parse(readFileSync(stampPath, 'utf8')).sources;
  return recorded === sourcesDigest() ? undefined : 'the native sources changed since it was built';
}
