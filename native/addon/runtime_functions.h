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

}  // namespace maskface::addon
