// What this machine offers for the GPU path, found with dlopen only: the NVIDIA driver and its
// devices (through the driver API in libcuda.so.1), and whether a named shared library loads.
// Host-side C++ compiled into the addon; it needs no CUDA headers and no CUDA toolkit, so the
// addon loads, and these calls answer, on machines with no GPU at all.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace maskface::gpu {

struct GpuDevice {
  int index = 0;
  std::string name;
  size_t total_memory = 0;  // bytes
  int compute_major = 0;
  int compute_minor = 0;
};

struct DriverProbe {
  bool loaded = false;     // libcuda.so.1 loaded and cuInit succeeded
  std::string error;       // why not, when !loaded
  int driver_version = 0;  // CUDA version the driver supports, as 1000 * major + 10 * minor
  std::vector<GpuDevice> devices;
};

// Loads libcuda.so.1 (once; it stays loaded) and lists the devices. Never throws.
DriverProbe ProbeDriver();

// dlopens `name` with the normal search rules and keeps it loaded: "" when it loads, else the
// loader's message. Never throws.
std::string ProbeLibrary(const std::string& name);

// TensorRT's version as "10.9.0" from libnvinfer.so.10's getInferLibVersion, or "" when that
// library does not load.
std::string TensorRtVersion();

}  // namespace maskface::gpu
