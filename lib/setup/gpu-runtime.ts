/**
 * The GPU runtime: an ONNX Runtime 1.29.0 build with the CUDA and TensorRT execution providers,
 * installed on request (`npx maskface install-gpu`) into the cache folder. The CPU build that
 * ships beside the addon has no provider bridge, so GPU providers need a different
 * libonnxruntime: the Linux x64 one of onnxruntime-node@1.29.0 (built with CUDA and TensorRT),
 * plus the provider libraries of com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (the same ONNX
 * Runtime release). ONNX Runtime loads provider libraries from the folder of libonnxruntime, so
 * all four files live in one folder. Neither package is needed by CPU users.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MASKFACE_ORT_SONAME, setSoname } from './elf-soname.js';
import { MaskFaceError } from '../api/errors.js';
import { fetchPackageMembers, sha256File } from './npm-fetch.js';
import { cacheRoot } from './models.js';

/** ONNX Runtime version of the GPU runtime (the same release as the bundled CPU runtime). */
export const GPU_RUNTIME_ORT_VERSION = '1.29.0';

export const GPU_RUNTIME_SOURCES = [
  {
    name: 'onnxruntime-node',
    version: '1.29.0',
    sha256: 'cfdfb45ec4044b1fdca43e5d2e180fb6817e649ff8ad1e0dfc90e18e51b67037',
    members: ['package/bin/napi-v6/linux/x64/libonnxruntime.so.1'],
  },
  {
    name: 'com.github.asus4.onnxruntime.linux-x64-gpu',
    version: '0.4.9',
    sha256: '2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412',
    members: [
      'package/Plugins/Linux/x64/libonnxruntime_providers_shared.so',
      'package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so',
      'package/Plugins/Linux/x64/libonnxruntime_providers_tensorrt.so',
    ],
  },
] as const;

/** The files of an installed GPU runtime, by base name. */
export const GPU_RUNTIME_FILES = GPU_RUNTIME_SOURCES.flatMap((source) =>
  source.members.map((member) => member.slice(member.lastIndexOf('/') + 1)),
);

const STAMP = 'maskface-gpu-runtime.json';

/** Folder of the GPU runtime: onnxruntime-gpu-1.29.0 in the cache root ($MASKFACE_CACHE_DIR, else $XDG_CACHE_HOME/maskface, else ~/.cache/maskface). */
export function gpuRuntimeDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), `onnxruntime-gpu-${GPU_RUNTIME_ORT_VERSION}`);
}

/**
 * Whether `dir` holds a complete GPU runtime: the install writes its stamp file last, and the
 * stamp records the SONAME given to its libonnxruntime.
 */
export function gpuRuntimeComplete(dir: string = gpuRuntimeDir()): boolean {
  if (![STAMP, ...GPU_RUNTIME_FILES].every((file) => existsSync(join(dir, file)))) return false;
  try {
    return (JSON.parse(readFileSync(join(dir, STAMP), 'utf8')) as { soname?: string }).soname === MASKFACE_ORT_SONAME;
  } catch {
    return false;
  }
}

export interface InstallGpuRuntimeOptions {
  /** Progress messages; default: none. */
  log?: (message: string) => void;
  /** Download again even when installed. */
  force?: boolean;
}

/**
 * Downloads the GPU runtime from the npm registry (about 290 MB, sha256-pinned) into
 * gpuRuntimeDir() and returns the folder. From the next process on, maskface loads it instead of
 * the CPU runtime. It also needs, from the system: the NVIDIA driver; for CUDA, libcudart.so.13,
 * libcublasLt.so.13, libcublas.so.13, libcurand.so.10 and libcudnn.so.9; for TensorRT also
 * libnvinfer.so.10 and libnvonnxparser.so.10. `listProviders()` says which are missing. Throws ERR_MODEL_FETCH when a download fails or a checksum differs.
 */
export async function installGpuRuntime(options: InstallGpuRuntimeOptions = {}): Promise<string> {
  const { log = () => {}, force = false } = options;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new MaskFaceError(
      `The GPU runtime is for linux-x64; this is ${process.platform}-${process.arch}`,
      'ERR_PROVIDER_UNAVAILABLE',
    );
  }
  const dir = gpuRuntimeDir();
  if (!force && gpuRuntimeComplete(dir)) {
    log(`the GPU runtime is already installed in ${dir}`);
    return dir;
  }
  const staging = `${dir}.partial`;
  await rm(staging, { recursive: true, force: true });
  for (const source of GPU_RUNTIME_SOURCES) {
    await fetchPackageMembers({ ...source, destination: staging, log });
  }
  // Renamed like the CPU runtime's (lib/elf-soname.ts): an addon loaded later that links
  // libonnxruntime.so.1 by name then gets its own library.
  setSoname(join(staging, 'libonnxruntime.so.1'));
  const files: Record<string, string> = {};
  for (const file of GPU_RUNTIME_FILES) files[file] = await sha256File(join(staging, file));
  await writeFile(
    join(staging, STAMP),
    JSON.stringify({ onnxruntime: GPU_RUNTIME_ORT_VERSION, soname: MASKFACE_ORT_SONAME, sources: GPU_RUNTIME_SOURCES, files }, null, 2),
  );
  await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);
  log(`GPU runtime (ONNX Runtime ${GPU_RUNTIME_ORT_VERSION} with CUDA and TensorRT) installed in ${dir}`);
  return dir;
}

/** Removes the GPU runtime; maskface uses the CPU runtime again from the next process on. */
export async function uninstallGpuRuntime(): Promise<void> {
  await rm(gpuRuntimeDir(), { recursive: true, force: true });
}
