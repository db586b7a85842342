#include "ort/tensor_model.h"

#include <onnxruntime_cxx_api.h>

#include <cstring>
#include <new>

#include "core/error.h"
#include "core/flush_denormals.h"
#include "ort/ort_env.h"
#include "ort/shape_text.h"

namespace maskface::ort {

struct TensorModel::Impl {
  Ort::Session session{nullptr};
  std::string input_name;
  std::vector<std::string> output_names;
};

TensorModel::TensorModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TensorModel::~TensorModel() = default;

const std::vector<std::string>& TensorModel::output_names() const { return impl_->output_names; }

size_t TensorModel::input_size() const {
  size_t size = 1;
  for (int64_t d : input_shape_) size *= static_cast<size_t>(d);
  return size;
}

std::unique_ptr<TensorModel> TensorModel::Create(const uint8_t* model, size_t size, int intra_op_threads,
                                                 const TensorModelSpec& spec) {
  MF_CHECK_ARG(model != nullptr && size > 0, spec.what + ": model bytes are empty");
  MF_CHECK_ARG(intra_op_threads >= 1, "thread counts must be >= 1");
  auto fail = [&](const std::string& message) -> void { throw Error(ErrorCode::kModelLoad, spec.what + ": " + message); };
  auto impl = std::make_unique<Impl>();
  std::vector<int64_t> input_shape;
  std::vector<size_t> output_sizes;
  try {
    Ort::SessionOptions options;
    options.SetIntraOpNumThreads(intra_op_threads);
    options.SetInterOpNumThreads(1);
    options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    // As in InferenceSession: no spinning threads between runs, denormals flushed.
    options.AddConfigEntry("session.intra_op.allow_spinning", "0");
    options.AddConfigEntry("session.inter_op.allow_spinning", "0");
    options.AddConfigEntry("session.set_denormal_as_zero", "1");
    impl->session = Ort::Session(GetEnv(), model, size, options);
    Ort::AllocatorWithDefaultOptions allocator;
    if (impl->session.GetInputCount() != 1) fail("expected one input, found " + std::to_string(impl->session.GetInputCount()));
    impl->input_name = impl->session.GetInputNameAllocated(0, allocator).get();
    // The shape info views its TypeInfo: keep that alive.
    Ort::TypeInfo input_type = impl->session.GetInputTypeInfo(0);
    auto input = input_type.GetTensorTypeAndShapeInfo();
    input_shape = input.GetShape();
    if (input.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || static_cast<int>(input_shape.size()) != spec.input_rank) {
      fail("input '" + impl->input_name + "' must be float32 of rank " + std::to_string(spec.input_rank) + ", not " +
           ShapeText(input_shape));
    }
    if (input_shape[0] < 0) input_shape[0] = 1;  // one item per run
    for (int64_t d : input_shape) {
      if (d <= 0) fail("input '" + impl->input_name + "' has a symbolic size " + ShapeText(input_shape));
    }
    std::vector<std::string> wanted = spec.outputs;
    if (wanted.empty()) {
      for (size_t i = 0; i < impl->session.GetOutputCount(); ++i) wanted.push_back(impl->session.GetOutputNameAllocated(i, allocator).get());
    }
    for (const std::string& name : wanted) {
      bool found = false;
      for (size_t i = 0; i < impl->session.GetOutputCount() && !found; ++i) {
        if (impl->session.GetOutputNameAllocated(i, allocator).get() != name) continue;
        found = true;
        Ort::TypeInfo output_type = impl->session.GetOutputTypeInfo(i);
        auto info = output_type.GetTensorTypeAndShapeInfo();
        if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) fail("output '" + name + "' is not float32");
        size_t count = 1;
        auto shape = info.GetShape();
        for (size_t d = 0; d < shape.size(); ++d) {
          if (shape[d] < 0 && d == 0) continue;  // a symbolic batch: one item per run
          if (shape[d] <= 0) fail("output '" + name + "' has a symbolic size " + ShapeText(shape));
          count *= static_cast<size_t>(shape[d]);
        }
        output_sizes.push_back(count);
      }
      if (!found) fail("no output named '" + name + "'");
      impl->output_names.push_back(name);
    }
  } catch (const Ort::Exception& e) {
    fail(std::string("ONNX Runtime could not load it: ") + e.what());
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kOutOfMemory, spec.what + ": out of memory while loading");
  }
  std::unique_ptr<TensorModel> result(new TensorModel(std::move(impl)));
  result->input_shape_ = std::move(input_shape);
  result->output_sizes_ = std::move(output_sizes);
  return result;
}

void TensorModel::Run(const float* input, std::vector<std::vector<float>>* outputs) const {
  MF_CHECK_ARG(input != nullptr && outputs != nullptr, "TensorModel::Run: null buffers");
  const size_t n = impl_->output_names.size();
  std::vector<const char*> names(n);
  for (size_t i = 0; i < n; ++i) names[i] = impl_->output_names[i].c_str();
  const char* input_name = impl_->input_name.c_str();
  ScopedFlushDenormals flush_denormals;
  try {
    const Ort::MemoryInfo host = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    // ORT takes a non-const pointer but does not write model inputs.
    Ort::Value tensor = Ort::Value::CreateTensor<float>(host, const_cast<float*>(input), input_size(), input_shape_.data(),
                                                        input_shape_.size());
    auto values = impl_->session.Run(Ort::RunOptions{nullptr}, &input_name, &tensor, 1, names.data(), n);
    outputs->resize(n);
    for (size_t i = 0; i < n; ++i) {
      const size_t count = values[i].GetTensorTypeAndShapeInfo().GetElementCount();
      if (count != output_sizes_[i]) {
        throw Error(ErrorCode::kInference, "output '" + impl_->output_names[i] + "' has " + std::to_string(count) +
                                               " values; expected " + std::to_string(output_sizes_[i]));
      }
      const float* data = values[i].GetTensorData<float>();
      (*outputs)[i].assign(data, data + count);
    }
  } catch (const Ort::Exception& e) {
    throw Error(ErrorCode::kInference, std::string("ONNX Runtime Run failed: ") + e.what());
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kOutOfMemory, "out of memory during inference");
  }
}

}  // namespace maskface::ort
