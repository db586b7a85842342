#include "gpu/gpu_probe.h"

#include <dlfcn.h>

#include <mutex>

namespace maskface::gpu {
namespace {

// The few driver API entry points used, declared by hand (CUresult and CUdevice are ints).
using CuInit = int (*)(unsigned);
using CuDriverGetVersion = int (*)(int*);
using CuDeviceGetCount = int (*)(int*);
using CuDeviceGet = int (*)(int*, int);
using CuDeviceGetName = int (*)(char*, int, int);
using CuDeviceTotalMem = int (*)(size_t*, int);
using CuDeviceGetAttribute = int (*)(int*, int, int);
using CuGetErrorString = int (*)(int, const char**);
constexpr int kComputeCapabilityMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kComputeCapabilityMinor = 76;

std::string DlError(const char* fallback) {
  const char* message = dlerror();
  return message != nullptr ? message : fallback;
}

template <typename F>
F Symbol(void* handle, const char* name) {
  return reinterpret_cast<F>(dlsym(handle, name));
}

DriverProbe ProbeDriverOnce() {
  DriverProbe probe;
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cuda == nullptr) {
    probe.error = "no NVIDIA driver: " + DlError("libcuda.so.1 did not load");
    return probe;
  }
  auto init = Symbol<CuInit>(cuda, "cuInit");
  auto driver_version = Symbol<CuDriverGetVersion>(cuda, "cuDriverGetVersion");
  auto count = Symbol<CuDeviceGetCount>(cuda, "cuDeviceGetCount");
  auto get = Symbol<CuDeviceGet>(cuda, "cuDeviceGet");
  auto get_name = Symbol<CuDeviceGetName>(cuda, "cuDeviceGetName");
  auto total_memory = Symbol<CuDeviceTotalMem>(cuda, "cuDeviceTotalMem_v2");
  auto attribute = Symbol<CuDeviceGetAttribute>(cuda, "cuDeviceGetAttribute");
  auto error_string = Symbol<CuGetErrorString>(cuda, "cuGetErrorString");
  if (!init || !driver_version || !count || !get || !get_name || !total_memory || !attribute) {
    probe.error = "libcuda.so.1 lacks the driver API entry points maskface uses (a very old driver?)";
    return probe;
  }
  const auto describe = [&](const char* call, int status) {
    const char* text = nullptr;
    if (error_string != nullptr) error_string(status, &text);
    return std::string(call) + " failed: " + (text != nullptr ? text : "CUresult " + std::to_string(status));
  };
  if (int status = init(0); status != 0) {
    probe.error = describe("cuInit", status);
    return probe;
  }
  driver_version(&probe.driver_version);
  int devices = 0;
  if (int status = count(&devices); status != 0) {
    probe.error = describe("cuDeviceGetCount", status);
    return probe;
  }
  for (int i = 0; i < devices; ++i) {
    int device = 0;
    if (get(&device, i) != 0) continue;
    GpuDevice d;
    d.index = i;
    char name[256] = {};
    get_name(name, sizeof(name) - 1, device);
    d.name = name;
    total_memory(&d.total_memory, device);
    attribute(&d.compute_major, kComputeCapabilityMajor, device);
    attribute(&d.compute_minor, kComputeCapabilityMinor, device);
    probe.devices.push_back(d);
  }
  probe.loaded = true;
  if (probe.devices.empty()) probe.error = "the NVIDIA driver is loaded but reports no GPU";
  return probe;
}

}  // namespace

DriverProbe ProbeDriver() {
  // The driver is initialised once per process; its answer does not change while it runs.
  static std::once_flag once;
  static DriverProbe probe;
  std::call_once(once, [] { probe = ProbeDriverOnce(); });
  return probe;
}

std::string ProbeLibrary(const std::string& name) {
  dlerror();
  if (dlopen(name.c_str(), RTLD_LAZY | RTLD_LOCAL) != nullptr) return "";
  return DlError("did not load");
}

std::string TensorRtVersion() {
  void* nvinfer = dlopen("libnvinfer.so.10", RTLD_LAZY | RTLD_LOCAL);
  if (nvinfer == nullptr) return "";
  auto version = Symbol<int (*)()>(nvinfer, "getInferLibVersion");
  if (version == nullptr) return "";
  const int v = version();  // major * 10000 + minor * 100 + patch (TensorRT 10)
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

}  // namespace maskface::gpu
