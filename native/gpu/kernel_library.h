// Loading libmaskface_cuda.so (the kernels of native/cuda behind the C ABI of maskface_cuda.h)
// at run time. The addon never links it: it is dlopened only after the NVIDIA driver has loaded
// and reported a GPU, so the addon and every CPU path work on machines without either.
#pragma once
#include <cstddef>
#include <string>

#include "core/error.h"
#include "cuda/maskface_cuda.h"

namespace maskface::gpu {

// The C ABI, resolved from the loaded library. Every pointer is set when `loaded`.
struct KernelLibrary {
  bool loaded = false;
  std::string path;
  std::string error;  // why it is not loaded
#define MASKFACE_CUDA_FUNCTION(name) decltype(&::maskface_cuda_##name) name = nullptr;
#include "gpu/kernel_functions.inc"
#undef MASKFACE_CUDA_FUNCTION
};

// Loads the library at `path` once per process (later calls return the first result, whatever
// their path). Refuses without a driver and a GPU (ProbeDriver), when a function is missing, or
// when its ABI version is not MASKFACE_CUDA_ABI_VERSION. Never throws.
const KernelLibrary& LoadKernelLibrary(const std::string& path);

// The library when LoadKernelLibrary has loaded it, else null.
const KernelLibrary* LoadedKernelLibrary();

// Throws maskface::Error for a failed call of the library: INVALID_ARGUMENT and OUT_OF_MEMORY keep
// their meaning, any other status (the CUDA runtime or a kernel failed) is kCuda. The message is
// "<owner>: <call>: <the library's message>".
void ThrowIfFailed(const KernelLibrary& library, int status, const char* owner, const char* call);

// Device memory from the library that only grows: Reserve keeps the buffer when it is big enough.
// Freed with its owner, on whatever device is current then (the owners set theirs first).
class DeviceBuffer {
 public:
  DeviceBuffer(const KernelLibrary& library, const char* owner) : library_(library), owner_(owner) {}
  ~DeviceBuffer() { library_.free(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // At least `bytes`; with headroom half as much again, so calls of rising size reallocate rarely.
  void Reserve(size_t bytes, bool headroom = true);
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  const KernelLibrary& library_;
  const char* owner_;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace maskface::gpu
