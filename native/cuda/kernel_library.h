// Loading libmaskface_cuda.so (the kernels of native/cuda behind the C ABI of maskface_cuda.h)
// at run time. The addon never links it: it is dlopened only after the NVIDIA driver has loaded
// and reported a GPU, so the addon and every CPU path work on machines without either.
#pragma once
#include <string>

#include "cuda/maskface_cuda.h"

namespace maskface::cuda {

// The C ABI, resolved from the loaded library. Every pointer is set when `loaded`.
struct KernelLibrary {
  bool loaded = false;
  std::string path;
  std::string error;  // why it is not loaded
#define MASKFACE_CUDA_FUNCTION(name) decltype(&::maskface_cuda_##name) name = nullptr;
#include "cuda/kernel_functions.inc"
#undef MASKFACE_CUDA_FUNCTION
};

// Loads the library at `path` once per process (later calls return the first result, whatever
// their path). Refuses without a driver and a GPU (ProbeDriver), when a function is missing, or
// when its ABI version is not MASKFACE_CUDA_ABI_VERSION. Never throws.
const KernelLibrary& LoadKernelLibrary(const std::string& path);

// The library when LoadKernelLibrary has loaded it, else null.
const KernelLibrary* LoadedKernelLibrary();

}  // namespace maskface::cuda
