/**
 * Execution providers: what the loaded ONNX Runtime has compiled in, what this machine can run,
 * and why not; and the choice behind `provider: 'auto'`.
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadedRuntime, native, nativeBindingPath } from '../runtime/binding-loader.js';
import { MaskFaceError } from './errors.js';
import { gpuRuntimeDir } from '../setup/gpu-runtime.js';
import type { NativeGpuProbe } from '../runtime/native.js';
import type { Provider, ProviderPreference } from './types.js';

/** A GPU as the NVIDIA driver reports it. */
export interface GpuDevice {
  readonly index: number;
  readonly name: string;
  /** bytes */
  readonly totalMemory: number;
  /** for example '9.0' */
  readonly computeCapability: string;
}

/** One execution provider on this machine. */
export interface ProviderInfo {
  readonly name: Provider;
  /** Built into the ONNX Runtime library that this process loaded. */
  readonly compiled: boolean;
  /** Compiled in, and everything it needs is here: a driver, a GPU, the CUDA/TensorRT libraries. */
  readonly available: boolean;
  /** Why it is not available (the first missing piece); undefined when it is. */
  readonly reason: string | undefined;
}

/** The GPU side of this machine, as maskface sees it. */
export interface GpuStatus {
  /** The ONNX Runtime library loaded by this process, its version and its compiled-in providers (ONNX Runtime's names). */
  readonly runtime: { readonly path: string; readonly version: string; readonly providers: readonly string[] };
  /** libcuda.so.1: loaded, the CUDA version it supports ('13.0'), or why not. */
  readonly driver: { readonly loaded: boolean; readonly cudaVersion: string | undefined; readonly error: string | undefined };
  readonly devices: readonly GpuDevice[];
  /** TensorRT's version when libnvinfer.so.10 loads. */
  readonly tensorrtVersion: string | undefined;
  /** libmaskface_cuda.so (maskface's own CUDA kernels): loaded, or why not. */
  readonly kernels: { readonly loaded: boolean; readonly path: string; readonly error: string | undefined };
}

/** System libraries each GPU provider needs (beyond the driver), in the order they are reported. */
export const providerLibraries: Record<'cuda' | 'tensorrt', readonly string[]> = {
  cuda: ['libcudart.so.13', 'libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudnn.so.9'],
  tensorrt: ['libnvinfer.so.10', 'libnvonnxparser.so.10'],
};

/** What to install for a library that does not load. */
const librarySource: Record<string, string> = {
  'libcudnn.so.9': 'cuDNN 9 for CUDA 13',
  'libnvinfer.so.10': 'TensorRT 10',
  'libnvonnxparser.so.10': 'TensorRT 10',
};

const ortNames: Record<Provider, string> = {
  cpu: 'CPUExecutionProvider',
  cuda: 'CUDAExecutionProvider',
  tensorrt: 'TensorrtExecutionProvider',
};

// What the native probe found, gathered as needed: the driver, its GPUs and the kernel library on
// the first call; the CUDA libraries then too; TensorRT's only when TensorRT is asked about, since
// loading libnvinfer costs time and memory that a CUDA or CPU user should not pay.
let probed: NativeGpuProbe | undefined;
const probedParts = new Set<'cuda' | 'tensorrt'>();

function probe(withTensorRt: boolean): NativeGpuProbe {
  const parts = withTensorRt ? (['cuda', 'tensorrt'] as const) : (['cuda'] as const);
  const missing = parts.filter((part) => !probedParts.has(part));
  if (probed === undefined || missing.length > 0) {
    const found = native().probeGpu({
      libraries: missing.flatMap((part) => providerLibraries[part]),
      kernelLibrary: join(dirname(nativeBindingPath()), 'libmaskface_cuda.so'),
      tensorrt: missing.includes('tensorrt'),
    });
    probed = {
      ...found,
      libraries: { ...probed?.libraries, ...found.libraries },
      tensorrtVersion: found.tensorrtVersion || probed?.tensorrtVersion || '',
    };
    for (const part of missing) probedParts.add(part);
  }
  return probed;
}

function statusFrom(p: NativeGpuProbe): GpuStatus {
  const cudaVersion = p.driver.version > 0 ? `${Math.floor(p.driver.version / 1000)}.${(p.driver.version % 1000) / 10}` : undefined;
  return {
    runtime: loadedRuntime(),
    driver: { loaded: p.driver.loaded, cudaVersion, error: p.driver.error || undefined },
    devices: p.driver.devices,
    tensorrtVersion: p.tensorrtVersion || undefined,
    kernels: { loaded: p.kernels.loaded, path: p.kernels.path, error: p.kernels.error || undefined },
  };
}

/**
 * The GPU side of this machine: the loaded ONNX Runtime, the NVIDIA driver and its GPUs,
 * TensorRT, and maskface's CUDA kernel library. Never throws for a missing GPU: it says so.
 */
export function gpuStatus(): GpuStatus {
  return statusFrom(probe(true));
}

/** gpuStatus() without asking about TensorRT (its tensorrtVersion is not looked up). */
export function cudaStatus(): GpuStatus {
  return statusFrom(probe(false));
}

/** Why `provider` cannot run here, or undefined when it can. */
export function unavailableReason(provider: Provider, found: NativeGpuProbe = probe(provider === 'tensorrt')): string | undefined {
  if (provider === 'cpu') return undefined;
  const status = statusFrom(found);
  for (const needed of provider === 'tensorrt' ? (['tensorrt', 'cuda'] as const) : (['cuda'] as const)) {
    if (!status.runtime.providers.includes(ortNames[needed])) {
      return (
        `the loaded ONNX Runtime (${status.runtime.path}) was built without ${ortNames[needed]}; ` +
        `install the GPU runtime with \`npx maskface install-gpu\` (it goes to ${gpuRuntimeDir()})`
      );
    }
  }
  // ONNX Runtime loads its GPU providers from its own folder.
  const folder = dirname(status.runtime.path);
  for (const needed of ['shared', 'cuda', ...(provider === 'tensorrt' ? ['tensorrt'] : [])]) {
    const file = join(folder, `libonnxruntime_providers_${needed}.so`);
    if (!existsSync(file)) return `${file} is missing: ONNX Runtime loads its GPU providers from its own folder`;
  }
  if (!status.driver.loaded) return status.driver.error ?? 'no NVIDIA driver';
  if (status.devices.length === 0) return 'the NVIDIA driver reports no GPU';
  const libraries = provider === 'tensorrt' ? [...providerLibraries.tensorrt, ...providerLibraries.cuda] : providerLibraries.cuda;
  for (const library of libraries) {
    const error = found.libraries[library];
    if (error) {
      const from = librarySource[library] ?? 'the CUDA 13 toolkit';
      return `${library} does not load (${error}); install ${from} and make it findable (ldconfig or LD_LIBRARY_PATH)`;
    }
  }
  return undefined;
}

/**
 * Every provider maskface knows, with whether the loaded ONNX Runtime has it compiled in, whether
 * it can run on this machine, and if not, why not.
 */
export function listProviders(): ProviderInfo[] {
  const found = probe(true);
  return (['cpu', 'cuda', 'tensorrt'] as const).map((name) => {
    const reason = unavailableReason(name, found);
    return { name, compiled: loadedRuntime().providers.includes(ortNames[name]), available: reason === undefined, reason };
  });
}

/**
 * The provider a session gets, and why. 'auto' takes CUDA when it is available and the CPU
 * otherwise (TensorRT only when asked for: building its engine takes minutes on first use). An
 * explicit provider that cannot run throws ERR_PROVIDER_UNAVAILABLE: it never falls back.
 */
export function resolveProvider(preference: ProviderPreference, deviceId = 0): { provider: Provider; reason: string } {
  if (preference === 'cpu') return { provider: 'cpu', reason: 'asked for' };
  const runtime = loadedRuntime();
  if (preference === 'auto' && !runtime.providers.includes(ortNames.cuda)) {
    // The CPU runtime: no need to look for a driver.
    return { provider: 'cpu', reason: `auto: the loaded ONNX Runtime has no CUDA provider (${runtime.path})` };
  }
  const found = probe(preference === 'tensorrt');
  const status = statusFrom(found);
  if (preference === 'auto') {
    const whyNot = unavailableReason('cuda', found) ?? (status.devices.some((d) => d.index === deviceId) ? undefined : `there is no GPU ${deviceId}`);
    return whyNot === undefined
      ? { provider: 'cuda', reason: `auto: CUDA is available (GPU ${deviceId}: ${status.devices.find((d) => d.index === deviceId)?.name})` }
      : { provider: 'cpu', reason: `auto: CUDA is not available: ${whyNot}` };
  }
  let whyNot = unavailableReason(preference, found);
  if (whyNot === undefined && !status.devices.some((d) => d.index === deviceId)) {
    whyNot = `there is no GPU ${deviceId} (the driver reports ${status.devices.length})`;
  }
  if (whyNot !== undefined) {
    throw new MaskFaceError(`Provider '${preference}' is unavailable: ${whyNot}`, 'ERR_PROVIDER_UNAVAILABLE', {
      details: { provider: preference },
    });
  }
  return { provider: preference, reason: 'asked for' };
}

/**
 * The engine-cache subfolder of a model on a GPU: the model's sha256, the TensorRT version and
 * the GPU (name and compute capability), since an engine built for one is invalid on another.
 */
export function engineCacheKey(modelSha256: string, deviceId: number, status: GpuStatus = gpuStatus()): string {
  const device = status.devices.find((d) => d.index === deviceId);
  if (device === undefined) {
    throw new MaskFaceError(`No GPU with index ${deviceId}: the driver reports ${status.devices.length}`, 'ERR_PROVIDER_UNAVAILABLE', {
      details: { deviceId },
    });
  }
  const gpu = device.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return `${modelSha256.slice(0, 16)}-trt${status.tensorrtVersion ?? 'unknown'}-${gpu}-sm${device.computeCapability.replace('.', '')}`;
}
