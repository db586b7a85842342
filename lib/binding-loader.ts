import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { MaskFaceError } from './errors.js';
import type { NativeBinding } from './native.js';
import { packageRoot } from './package-root.js';

const requireNative = createRequire(join(packageRoot, 'package.json'));

/**
 * Where the loader looks for the addon, in order. MASKFACE_BINDING, when set, is the only
 * candidate: an explicit choice never falls back to another binary.
 * @internal
 */
export function bindingCandidates(root: string = packageRoot, env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.MASKFACE_BINDING) return [env.MASKFACE_BINDING];
  const platform = `${process.platform}-${process.arch}`;
  return [join(root, 'build', 'Release', 'maskface.node'), join(root, 'prebuilds', platform, 'maskface.napi.glibc.node')];
}

/** Turns a dlopen failure into advice a user can act on. @internal */
export function adviceFor(message: string): string | undefined {
  if (/VERS_\d/.test(message)) {
    return 'the libonnxruntime.so.1 beside maskface.node is another ONNX Runtime build; use the one it was built with (npm run build:native copies it)';
  }
  if (/libonnxruntime\.so/.test(message)) {
    return 'libonnxruntime.so.1 must sit beside maskface.node (it is copied there by the build); rebuild with `npm run build:native`';
  }
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
 * @internal
 */
export function loadBinding(candidates: readonly string[] = bindingCandidates()): NativeBinding {
  const failures: string[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) {
      failures.push(`${path}: not found`);
      continue;
    }
    try {
      return requireNative(path) as NativeBinding;
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

let binding: NativeBinding | undefined;

/** The addon, loaded on first use and initialised with the MaskFaceError class. @internal */
export function native(): NativeBinding {
  if (binding === undefined) {
    const loaded = loadBinding();
    loaded.init({ MaskFaceError });
    binding = loaded;
  }
  return binding;
}
