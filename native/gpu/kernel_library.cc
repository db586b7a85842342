#include "gpu/kernel_library.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>

#include "gpu/gpu_probe.h"

namespace maskface::gpu {
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
#include "gpu/kernel_functions.inc"
#undef MASKFACE_CUDA_FUNCTION
  if (!complete) return library;
  if (const int abi = library.abi_version(); abi != MASKFACE_CUDA_ABI_VERSION) {
    library.error = path + " has C ABI version " + std::to_string(abi) + "; this addon needs " +
                    std::to_string(MASKFACE_CUDA_ABI_VERSION) + " (rebuild both together)";
    return library;
  }
  // The driver saw a GPU; the library's CUDA runtime must see one too (a driver older than the
  // runtime the library was built with sees none): say why, in the runtime's words.
  int devices = 0;
  if (library.device_count(&devices) != MASKFACE_CUDA_OK) {
    library.error = path + ": the CUDA runtime cannot use this machine's GPUs: " + library.last_error();
    return library;
  }
  if (devices < 1) {
    library.error = path + ": the CUDA runtime sees no GPU, although the driver lists " + std::to_string(driver.devices.size());
    return library;
  }
  library.loaded = true;
  return library;
}

}  // namespace

namespace {
std::once_flag g_once;
KernelLibrary g_library;
std::atomic<bool> g_done{false};
}  // namespace

const KernelLibrary& LoadKernelLibrary(const std::string& path) {
  std::call_once(g_once, [&] {
    g_library = Load(path);
    g_done.store(true, std::memory_order_release);
  });
  return g_library;
}

const KernelLibrary* LoadedKernelLibrary() {
  return g_done.load(std::memory_order_acquire) && g_library.loaded ? &g_library : nullptr;
}

void ThrowIfFailed(const KernelLibrary& library, int status, const char* owner, const char* call) {
  if (status == MASKFACE_CUDA_OK) return;
  const std::string message = std::string(owner) + ": " + call + ": " + library.last_error();
  switch (status) {
    case MASKFACE_CUDA_INVALID_ARGUMENT: throw Error(ErrorCode::kInvalidArgument, message);
    case MASKFACE_CUDA_OUT_OF_MEMORY: throw Error(ErrorCode::kOutOfMemory, message);
    default: throw Error(ErrorCode::kCuda, message);
  }
}

void DeviceBuffer::Reserve(size_t bytes, bool headroom) {
  if (bytes_ >= bytes) return;
  ThrowIfFailed(library_, library_.free(data_), owner_, "free");
  data_ = nullptr;
  bytes_ = 0;
  const size_t size = headroom ? bytes + bytes / 2 : bytes;
  ThrowIfFailed(library_, library_.malloc(&data_, size), owner_, "malloc");
  bytes_ = size;
}

}  // namespace maskface::gpu
