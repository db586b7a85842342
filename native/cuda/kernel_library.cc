#include "cuda/kernel_library.h"

#include <dlfcn.h>

#include <mutex>

#include "cuda/gpu_probe.h"

namespace maskface::cuda {
namespace {

KernelLibrary Load(const std::string& path) {
  KernelLibrary library;
  library.path = path;
  const DriverProbe driver = ProbeDriver();
  if (!driver.loaded || driver.devices.empty()) {
    library.error = driver.error;
    return library;
  }
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* message = dlerror();
    library.error = message != nullptr ? message : "dlopen failed";
    return library;
  }
  bool complete = true;
#define MASKFACE_CUDA_FUNCTION(name)                                                                   \
  library.name = reinterpret_cast<decltype(library.name)>(dlsym(handle, "maskface_cuda_" #name)); \
  if (library.name == nullptr) {                                                                       \
    library.error = path + " has no maskface_cuda_" #name;                                             \
    complete = false;                                                                                  \
  }
#include "cuda/kernel_functions.inc"
#undef MASKFACE_CUDA_FUNCTION
  if (!complete) return library;
  if (const int abi = library.abi_version(); abi != MASKFACE_CUDA_ABI_VERSION) {
    library.error = path + " has C ABI version " + std::to_string(abi) + "; this addon needs " +
                    std::to_string(MASKFACE_CUDA_ABI_VERSION) + " (rebuild both together)";
    return library;
  }
  library.loaded = true;
  return library;
}

}  // namespace

const KernelLibrary& LoadKernelLibrary(const std::string& path) {
  static std::once_flag once;
  static KernelLibrary library;
  std::call_once(once, [&] { library = Load(path); });
  return library;
}

}  // namespace maskface::cuda
