// The runtime and what the machine offers: loading libonnxruntime, probing the GPU path.
#pragma once
#include <napi.h>

namespace maskface::addon {

// loadRuntime(path) -> { path, version, providers: string[] }: dlopens ONNX Runtime (once per
// process; lib/runtime/binding-loader.ts picks the path) before any session exists.
Napi::Value LoadRuntime(const Napi::CallbackInfo& info);
// probeGpu({ libraries: string[], kernelLibrary: string, tensorrt: boolean }) ->
//   { driver: { loaded, error, version, devices: [{ index, name, totalMemory, computeCapability }] },
//     libraries: { [name]: '' | error }, tensorrtVersion, kernels: { loaded, path, error } }
// Libraries (and, with `tensorrt`, libnvinfer's version) are only tried when the driver reports a
// GPU; their entries are absent otherwise.
Napi::Value ProbeGpu(const Napi::CallbackInfo& info);
// mallocStats() -> { inUse, free, mmapped } bytes of the C heap over all of glibc's arenas
// (mallinfo2), or null where the C library is not glibc. For the soak run: it tells memory that is
// held from memory that is allocated.
Napi::Value MallocStats(const Napi::CallbackInfo& info);
// mallocTrim() -> boolean: glibc's malloc_trim(0), which gives the free memory of every arena back
// to the system (false where the C library is not glibc, or nothing was released).
Napi::Value MallocTrim(const Napi::CallbackInfo& info);

}  // namespace maskface::addon
