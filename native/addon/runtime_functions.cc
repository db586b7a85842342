#include "addon/runtime_functions.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <string>

#include "addon/args.h"
#include "addon/errors.h"
#include "gpu/gpu_probe.h"
#include "gpu/kernel_library.h"
#include "ort/runtime.h"

namespace maskface::addon {

Napi::Value LoadRuntime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) ThrowInvalid(env, "loadRuntime expects a path");
    const ort::RuntimeInfo runtime = ort::LoadRuntime(info[0].As<Napi::String>().Utf8Value());
    Napi::Object out = Napi::Object::New(env);
    out.Set("path", runtime.path);
    out.Set("version", runtime.version);
    Napi::Array providers = Napi::Array::New(env, runtime.providers.size());
    for (size_t i = 0; i < runtime.providers.size(); ++i) providers.Set(static_cast<uint32_t>(i), runtime.providers[i]);
    out.Set("providers", providers);
    return out;
  });
}

Napi::Value ProbeGpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    Napi::Object options = ObjectArg(env, info[0], "options");
    const gpu::DriverProbe driver = gpu::ProbeDriver();
    Napi::Object driver_out = Napi::Object::New(env);
    driver_out.Set("loaded", driver.loaded);
    driver_out.Set("error", driver.error);
    driver_out.Set("version", driver.driver_version);
    Napi::Array devices = Napi::Array::New(env, driver.devices.size());
    for (size_t i = 0; i < driver.devices.size(); ++i) {
      const gpu::GpuDevice& d = driver.devices[i];
      Napi::Object device = Napi::Object::New(env);
      device.Set("index", d.index);
      device.Set("name", d.name);
      device.Set("totalMemory", static_cast<double>(d.total_memory));
      device.Set("computeCapability", std::to_string(d.compute_major) + "." + std::to_string(d.compute_minor));
      devices.Set(static_cast<uint32_t>(i), device);
    }
    driver_out.Set("devices", devices);

    const bool have_gpu = driver.loaded && !driver.devices.empty();
    Napi::Object libraries = Napi::Object::New(env);
    if (have_gpu && options.Get("libraries").IsArray()) {
      Napi::Array names = options.Get("libraries").As<Napi::Array>();
      for (uint32_t i = 0; i < names.Length(); ++i) {
        const std::string name = names.Get(i).ToString();
        libraries.Set(name, gpu::ProbeLibrary(name));
      }
    }

    Napi::Object kernels = Napi::Object::New(env);
    if (options.Get("kernelLibrary").IsString()) {
      const gpu::KernelLibrary& library = gpu::LoadKernelLibrary(options.Get("kernelLibrary").ToString());
      kernels.Set("loaded", library.loaded);
      kernels.Set("path", library.path);
      kernels.Set("error", library.error);
    }

    Napi::Object out = Napi::Object::New(env);
    out.Set("driver", driver_out);
    out.Set("libraries", libraries);
    const bool tensorrt = options.Get("tensorrt").ToBoolean();
    out.Set("tensorrtVersion", have_gpu && tensorrt ? gpu::TensorRtVersion() : std::string());
    out.Set("kernels", kernels);
    return out;
  });
}

Napi::Value MallocStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 m = mallinfo2();
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("inUse", static_cast<double>(m.uordblks));
  stats.Set("free", static_cast<double>(m.fordblks));
  stats.Set("mmapped", static_cast<double>(m.hblkhd));
  return stats;
#else
  return env.Null();
#endif
}

Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace maskface::addon
