#include "ort/runtime.h"

#include <dlfcn.h>

#include <mutex>

#include "core/error.h"
// ORT_API_MANUAL_INIT (set for the whole target in CMakeLists.txt): the C++ API reads the
// OrtApi pointer that InitApi stores, instead of calling OrtGetApiBase at static initialisation.
#include <onnxruntime_cxx_api.h>

namespace maskface::ort {
namespace {

std::mutex g_mutex;
RuntimeInfo* g_runtime = nullptr;  // set once, never freed: sessions may outlive everything else

[[noreturn]] void Fail(const std::string& message) { throw Error(ErrorCode::kRuntimeLoad, message); }

}  // namespace

RuntimeInfo LoadRuntime(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_runtime != nullptr) {
    if (g_runtime->path != path) {
      Fail("ONNX Runtime is already loaded from " + g_runtime->path + "; a process cannot switch to " + path);
    }
    return *g_runtime;
  }
  // RTLD_LOCAL: ONNX Runtime's symbols stay out of the global namespace, where another copy
  // (onnxruntime-node in the same process, say) could otherwise bind to them.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    Fail("could not load ONNX Runtime from " + path + ": " + (reason ? reason : "unknown dlopen error"));
  }
  using GetApiBase = const OrtApiBase* (*)();
  auto get_api_base = reinterpret_cast<GetApiBase>(dlsym(handle, "OrtGetApiBase"));
  if (get_api_base == nullptr) {
    dlclose(handle);
    Fail(path + " is not ONNX Runtime: it has no OrtGetApiBase");
  }
  const OrtApiBase* base = get_api_base();
  const OrtApi* api = base->GetApi(ORT_API_VERSION);
  const std::string version = base->GetVersionString();
  if (api == nullptr) {
    dlclose(handle);
    Fail(path + " is ONNX Runtime " + version + ", which lacks API version " + std::to_string(ORT_API_VERSION) +
         " (ONNX Runtime 1." + std::to_string(ORT_API_VERSION) + " or later is needed)");
  }
  Ort::InitApi(api);
  auto* info = new RuntimeInfo{path, version, {}};
  try {
    info->providers = Ort::GetAvailableProviders();
  } catch (const Ort::Exception& e) {
    delete info;
    Fail(std::string("ONNX Runtime at ") + path + " could not list its providers: " + e.what());
  }
  g_runtime = info;
  return *g_runtime;
}

const RuntimeInfo& CurrentRuntime() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_runtime == nullptr) Fail("ONNX Runtime is not loaded yet (LoadRuntime was not called)");
  return *g_runtime;
}

}  // namespace maskface::ort
