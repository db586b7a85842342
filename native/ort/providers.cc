#include "ort/providers.h"

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "core/error.h"
#include "ort/runtime.h"

namespace maskface::ort {
namespace {

[[noreturn]] void Unavailable(const std::string& message) { throw Error(ErrorCode::kProviderUnavailable, message); }

struct CudaOptionsDeleter {
  void operator()(OrtCUDAProviderOptionsV2* p) const { Ort::GetApi().ReleaseCUDAProviderOptions(p); }
};
struct TensorRtOptionsDeleter {
  void operator()(OrtTensorRTProviderOptionsV2* p) const { Ort::GetApi().ReleaseTensorRTProviderOptions(p); }
};

// Key/value options as ORT's Update*ProviderOptions take them: parallel arrays of C strings.
class OptionList {
 public:
  void Add(const std::string& key, const std::string& value) {
    strings_.push_back(key);
    strings_.push_back(value);
  }
  size_t size() const { return strings_.size() / 2; }
  std::vector<const char*> Keys() const { return Column(0); }
  std::vector<const char*> Values() const { return Column(1); }

 private:
  std::vector<const char*> Column(size_t offset) const {
    std::vector<const char*> out;
    for (size_t i = offset; i < strings_.size(); i += 2) out.push_back(strings_[i].c_str());
    return out;
  }
  std::vector<std::string> strings_;  // key, value, key, value, ...
};

void AppendCuda(Ort::SessionOptions& options, int device_id) {
  OrtCUDAProviderOptionsV2* raw = nullptr;
  Ort::ThrowOnError(Ort::GetApi().CreateCUDAProviderOptions(&raw));
  std::unique_ptr<OrtCUDAProviderOptionsV2, CudaOptionsDeleter> cuda(raw);
  OptionList list;
  list.Add("device_id", std::to_string(device_id));
  // Copies run on the compute stream, so a Run's input upload is ordered with its kernels.
  list.Add("do_copy_in_default_stream", "1");
  // Exhaustive cuDNN search costs seconds per shape at load; heuristics are close for these convs.
  list.Add("cudnn_conv_algo_search", "HEURISTIC");
  const auto keys = list.Keys(), values = list.Values();
  Ort::ThrowOnError(Ort::GetApi().UpdateCUDAProviderOptions(cuda.get(), keys.data(), values.data(), list.size()));
  options.AppendExecutionProvider_CUDA_V2(*cuda);
}

void AppendTensorRt(Ort::SessionOptions& options, const ProviderConfig& config) {
  if (config.engine_cache_dir.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "TensorRT needs an engine cache folder");
  }
  OrtTensorRTProviderOptionsV2* raw = nullptr;
  Ort::ThrowOnError(Ort::GetApi().CreateTensorRTProviderOptions(&raw));
  std::unique_ptr<OrtTensorRTProviderOptionsV2, TensorRtOptionsDeleter> trt(raw);
  OptionList list;
  list.Add("device_id", std::to_string(config.device_id));
  list.Add("trt_fp16_enable", config.fp16 ? "1" : "0");
  // Building an engine takes minutes; the folder is keyed by model, TensorRT version and GPU (in
  // lib/api/providers.ts), so a cached engine is only ever reused where it was built.
  list.Add("trt_engine_cache_enable", "1");
  list.Add("trt_engine_cache_path", config.engine_cache_dir);
  list.Add("trt_timing_cache_enable", "1");
  list.Add("trt_timing_cache_path", config.engine_cache_dir);
  const auto keys = list.Keys(), values = list.Values();
  Ort::ThrowOnError(Ort::GetApi().UpdateTensorRTProviderOptions(trt.get(), keys.data(), values.data(), list.size()));
  options.AppendExecutionProvider_TensorRT_V2(*trt);
}

}  // namespace

const char* OrtProviderName(Provider provider) {
  switch (provider) {
    case Provider::kCpu: return "CPUExecutionProvider";
    case Provider::kCuda: return "CUDAExecutionProvider";
    case Provider::kTensorRt: return "TensorrtExecutionProvider";
  }
  return "unknown";
}

void AppendProvider(Ort::SessionOptions& options, const ProviderConfig& config) {
  if (config.provider == Provider::kCpu) return;
  const RuntimeInfo& runtime = CurrentRuntime();
  const auto has = [&](Provider p) {
    return std::find(runtime.providers.begin(), runtime.providers.end(), OrtProviderName(p)) != runtime.providers.end();
  };
  if (!has(config.provider) || !has(Provider::kCuda)) {
    Unavailable(std::string("the ONNX Runtime ") + runtime.version + " at " + runtime.path + " was built without " +
                OrtProviderName(config.provider));
  }
  try {
    if (config.provider == Provider::kTensorRt) AppendTensorRt(options, config);
    AppendCuda(options, config.device_id);
  } catch (const Ort::Exception& e) {
    Unavailable(std::string("ONNX Runtime could not set up ") + OrtProviderName(config.provider) + ": " + e.what());
  }
}

}  // namespace maskface::ort
