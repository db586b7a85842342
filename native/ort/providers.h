// Execution providers: which one a session runs on, and how it is set up.
#pragma once
#include <string>

namespace Ort {
struct SessionOptions;
}

namespace maskface::ort {

enum class Provider { kCpu, kCuda, kTensorRt };

struct ProviderConfig {
  Provider provider = Provider::kCpu;
  int device_id = 0;
  bool fp16 = true;              // TensorRT: allow FP16 kernels in the engine
  std::string engine_cache_dir;  // TensorRT: folder for engines and timing caches; required
};

// ONNX Runtime's name of a provider ("CUDAExecutionProvider", ...).
const char* OrtProviderName(Provider provider);

// Adds the provider to `options`. CPU needs nothing. For CUDA and TensorRT, throws
// Error(kProviderUnavailable) when the loaded runtime was built without the provider or ONNX
// Runtime refuses it (its provider library or one of that library's dependencies is missing).
// TensorRT is followed by CUDA, which runs the nodes TensorRT does not take.
void AppendProvider(Ort::SessionOptions& options, const ProviderConfig& config);

}  // namespace maskface::ort
