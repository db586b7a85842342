import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { MaskFaceError } from '../api/errors.js';
import { gpuRuntimeComplete, gpuRuntimeDir } from '../setup/gpu-runtime.js';
import type { NativeBinding, NativeRuntime } from './native.js';
import { packageRoot } from './package-root.js';

const requireNative = createRequire(join(packageRoot, 'package.json'));

/**
 * Where the loader looks for the addon, in order. MASKFACE_BINDING, when set, is the only
 * candidate: an explicit choice never falls back to another binary.
 */
export function bindingCandidates(root: string = packageRoot, env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.MASKFACE_BINDING) return [env.MASKFACE_BINDING];
  const platform = `${process.platform}-${process.arch}`;
  return [join(root, 'build', 'Release', 'maskface.node'), join(root, 'prebuilds', platform, 'maskface.napi.glibc.node')];
}

/** Turns a dlopen failure into advice a user can act on. */
export function adviceFor(message: string): string | undefined {
  if (/GLIBC_|GLIBCXX_|CXXABI_/.test(message)) {
    return 'the binary needs a newer C/C++ runtime than this system has; build from source with `npm run build:native`';
  }
  if (/invalid ELF header|wrong ELF class|file too short/.test(message)) {
    return 'the binary is for another platform or is damaged; rebuild with `npm run build:native`';
  }
  if (/--no-addons|Cannot load native addon/.test(message)) {
    return 'Node was started with --no-addons; maskface needs native addons';
  }
  return undefined;
}

/**
 * Loads the first addon that exists and loads, or throws ERR_BINDING_LOAD listing every place
 * tried and why each failed.
 */
export function loadBinding(candidates: readonly string[] = bindingCandidates()): { binding: NativeBinding; path: string } {
  const failures: string[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) {
      failures.push(`${path}: not found`);
      continue;
    }
    try {
      return { binding: requireNative(path) as NativeBinding, path };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const advice = adviceFor(message);
      failures.push(`${path}: ${message}${advice ? `\n      → ${advice}` : ''}`);
    }
  }
  const platform = `${process.platform}-${process.arch}`;
  throw new MaskFaceError(
    [
      `Could not load the maskface native addon for ${platform} (Node ${process.version}).`,
      'Tried:',
      ...failures.map((failure) => `  - ${failure}`),
      'Possible solutions:',
      '  - build it from source: npm run build:native (needs cmake >= 3.18, a C++17 compiler and the npm registry)',
      '  - reinstall without --ignore-scripts so that the install step can build or check it',
      '  - point MASKFACE_BINDING at a maskface.node you built elsewhere',
    ].join('\n'),
    'ERR_BINDING_LOAD',
    { details: { platform, failures } },
  );
}

/**
 * The ONNX Runtime library to load, and why: MASKFACE_ORT_LIBRARY when set (alone, never
 * falling back), else the GPU runtime when `maskface install-gpu` put a complete one in the cache
 * folder, else the CPU runtime copied beside the addon.
 */
export function runtimeLibrary(bindingPath: string, env: NodeJS.ProcessEnv = process.env): { path: string; origin: string } {
  if (env.MASKFACE_ORT_LIBRARY) return { path: env.MASKFACE_ORT_LIBRARY, origin: 'MASKFACE_ORT_LIBRARY' };
  const gpu = gpuRuntimeDir(env);
  if (gpuRuntimeComplete(gpu)) {
    return { path: join(gpu, 'libonnxruntime.so.1'), origin: 'the GPU runtime (npx maskface install-gpu)' };
  }
  return { path: join(dirname(bindingPath), 'libonnxruntime.so.1'), origin: 'the CPU runtime beside the addon' };
}

let loaded: { binding: NativeBinding; path: string; runtime: NativeRuntime } | undefined;

function load(): NonNullable<typeof loaded> {
  if (loaded === undefined) {
    const { binding, path } = loadBinding();
    binding.init({ MaskFaceError });
    const library = runtimeLibrary(path);
    let runtime: NativeRuntime;
    try {
      runtime = binding.loadRuntime(library.path);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new MaskFaceError(
        [
          `Could not load ONNX Runtime, chosen as ${library.origin}: ${message}`,
          'Possible solutions:',
          '  - MASKFACE_ORT_LIBRARY: point it at a libonnxruntime.so.1 of ONNX Runtime 1.29 or later, or unset it',
          '  - a damaged GPU runtime: `npx maskface install-gpu --force`, or remove it with `npx maskface uninstall-gpu`',
          '  - the CPU runtime is copied beside maskface.node by the build: `npm run build:native`',
        ].join('\n'),
        'ERR_BINDING_LOAD',
        { cause: error, details: { library: library.path, origin: library.origin } },
      );
    }
    loaded = { binding, path, runtime };
  }
  return loaded;
}

/** The addon, loaded on first use, initialised with the MaskFaceError class, with ONNX Runtime loaded. */
export function native(): NativeBinding {
  return load().binding;
}

/** Path of the loaded addon. */
export function nativeBindingPath(): string {
  return load().path;
}

/** The ONNX Runtime library this process loaded. */
export function loadedRuntime(): NativeRuntime {
  return load().runtime;
}
