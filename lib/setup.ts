/**
 * maskface/setup: fetching models ahead of first use, and installing the GPU runtime. What an
 * install script, a Dockerfile or an offline machine needs; an application needs 'maskface'.
 * @module
 */
export { ensureModel, modelCacheDir, sourceModelPath } from './setup/models.js';
export type { FetchModelOptions } from './setup/models.js';
export { gpuRuntimeDir, installGpuRuntime, uninstallGpuRuntime, GPU_RUNTIME_ORT_VERSION } from './setup/gpu-runtime.js';
export type { InstallGpuRuntimeOptions } from './setup/gpu-runtime.js';
