#include "ort/session.h"

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include "core/error.h"
#include "core/flush_denormals.h"
#include "gpu/kernel_library.h"
#include "ort/attention_op.h"
#include "ort/ort_env.h"
#include "ort/shape_text.h"

namespace maskface::ort {
namespace {

std::string ElementTypeName(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    default: return "type#" + std::to_string(static_cast<int>(type));
  }
}

TensorDescription Describe(const std::string& name, const Ort::TypeInfo& type_info) {
  TensorDescription description;
  description.name = name;
  if (type_info.GetONNXType() != ONNX_TYPE_TENSOR) {
    description.element_type = "non-tensor";
    return description;
  }
  auto tensor = type_info.GetTensorTypeAndShapeInfo();
  description.shape = tensor.GetShape();
  description.element_type = ElementTypeName(tensor.GetElementType());
  return description;
}

[[noreturn]] void FailLoad(const std::string& message) { throw Error(ErrorCode::kModelLoad, message); }

// Product of the dimensions after the batch; -1 when one of them is symbolic.
int64_t PerItemSize(const std::vector<int64_t>& shape) {
  int64_t size = 1;
  for (size_t i = 1; i < shape.size(); ++i) {
    if (shape[i] < 0) return -1;
    size *= shape[i];
  }
  return size;
}

}  // namespace

struct InferenceSession::Impl {
  Ort::Session session{nullptr};
  ProviderConfig provider;
  int64_t max_batch = 32;
  std::string input_name;
  std::vector<std::string> output_names;  // the outputs Run fetches: embedding, then regions
};

InferenceSession::InferenceSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
InferenceSession::~InferenceSession() = default;

std::unique_ptr<InferenceSession> InferenceSession::Create(const uint8_t* model, size_t size,
                                                           const SessionConfig& config) {
  MF_CHECK_ARG(model != nullptr && size > 0, "model bytes are empty");
  MF_CHECK_ARG(config.intra_op_threads >= 1 && config.inter_op_threads >= 1, "thread counts must be >= 1");
  MF_CHECK_ARG(config.max_batch >= 1, "max_batch must be >= 1");
  auto impl = std::make_unique<Impl>();
  impl->provider = config.provider;
  impl->max_batch = config.max_batch;
  ModelDescription d;
  try {
    Ort::SessionOptions options;
    options.SetIntraOpNumThreads(config.intra_op_threads);
    options.SetInterOpNumThreads(config.inter_op_threads);
    options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    // By default the threads of a session sleep as soon as they run out of work: the addon's
    // callers share the cores with the Node event loop and with other sessions. With spinning
    // they spin-wait between the parallel steps of a run (no wake-up per step: faster for small
    // batches), and stop spinning when the run returns, so that idle threads never spin.
    const char* spinning = config.allow_spinning ? "1" : "0";
    options.AddConfigEntry("session.intra_op.allow_spinning", spinning);
    options.AddConfigEntry("session.inter_op.allow_spinning", spinning);
    options.AddConfigEntry("session.force_spinning_stop", "1");
    options.AddConfigEntry("session.set_denormal_as_zero", "1");
    AppendProvider(options, config.provider);
    // Models exported with fused attention use maskface::AttentionMask; GPU sessions also get its
    // CUDA kernel when libmaskface_cuda.so is loaded.
    AddMaskfaceOps(options, config.provider.provider == Provider::kCpu ? nullptr : gpu::LoadedKernelLibrary());
    {
      std::lock_guard<std::mutex> registering(CustomDomainRegistrationMutex());
      impl->session = Ort::Session(GetEnv(), model, size, options);
    }

    Ort::AllocatorWithDefaultOptions allocator;
    if (impl->session.GetInputCount() != 1) {
      FailLoad("expected a model with exactly one input (an image batch [N,C,H,W]); this one has " +
               std::to_string(impl->session.GetInputCount()));
    }
    d.input = Describe(impl->session.GetInputNameAllocated(0, allocator).get(), impl->session.GetInputTypeInfo(0));
    for (size_t i = 0; i < impl->session.GetOutputCount(); ++i) {
      d.outputs.push_back(
          Describe(impl->session.GetOutputNameAllocated(i, allocator).get(), impl->session.GetOutputTypeInfo(i)));
    }
    auto metadata = impl->session.GetModelMetadata();
    for (auto& key : metadata.GetCustomMetadataMapKeysAllocated(allocator)) {
      auto value = metadata.LookupCustomMetadataMapAllocated(key.get(), allocator);
      d.metadata[key.get()] = value ? value.get() : "";
    }
    d.producer = metadata.GetProducerNameAllocated(allocator).get();
    d.graph_name = metadata.GetGraphNameAllocated(allocator).get();
  } catch (const Ort::Exception& e) {
    const std::string on = config.provider.provider == Provider::kCpu
                               ? ""
                               : std::string(" with ") + OrtProviderName(config.provider.provider);
    FailLoad("ONNX Runtime could not load the model" + on + ": " + e.what());
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kOutOfMemory, "out of memory while loading the model");
  }

  const auto& input = d.input;
  if (input.element_type != "float32" || input.shape.size() != 4) {
    FailLoad("input '" + input.name + "' is " + input.element_type + " " + ShapeText(input.shape) +
             "; expected float32 [N,C,H,W]");
  }
  if (input.shape[1] != 1 && input.shape[1] != 3) {
    FailLoad("input '" + input.name + "' has " + std::to_string(input.shape[1]) + " channels; expected 1 or 3");
  }
  if (input.shape[2] <= 0 || input.shape[3] <= 0) {
    FailLoad("input '" + input.name + "' has a symbolic height or width " + ShapeText(input.shape) +
             "; face models need a fixed input size");
  }
  d.input_channels = static_cast<int>(input.shape[1]);
  d.input_height = static_cast<int>(input.shape[2]);
  d.input_width = static_cast<int>(input.shape[3]);
  d.fixed_batch = input.shape[0] > 0 ? input.shape[0] : 0;
  if (d.fixed_batch > 1) {
    FailLoad("input '" + input.name + "' has a fixed batch of " + std::to_string(d.fixed_batch) +
             "; only symbolic or 1 is supported");
  }

  // The embedding: an output named `embedding`, else the only output, else the first [N,D] one.
  int embedding = -1;
  for (size_t i = 0; i < d.outputs.size(); ++i) {
    if (d.outputs[i].name == "embedding") embedding = static_cast<int>(i);
    if (d.outputs[i].name == "regions") d.regions_output = static_cast<int>(i);
  }
  if (embedding < 0 && d.outputs.size() == 1) embedding = 0;
  for (size_t i = 0; embedding < 0 && i < d.outputs.size(); ++i) {
    if (d.outputs[i].shape.size() == 2 && static_cast<int>(i) != d.regions_output) embedding = static_cast<int>(i);
  }
  if (embedding < 0) FailLoad("no embedding output: expected an output named 'embedding' or one [N,D] output");
  d.embedding_output = embedding;
  const auto& out = d.outputs[embedding];
  // [N, D], or [N, D, 1, ...]: the batch first (symbolic, or 1), then the embedding. Anything else
  // (an image, [D, N]) would read as an embedding of the wrong values.
  bool batch_first = out.shape.size() >= 2 && (out.shape[0] < 0 || out.shape[0] == 1);
  for (size_t i = 2; i < out.shape.size(); ++i) batch_first = batch_first && out.shape[i] == 1;
  if (out.element_type != "float32" || !batch_first) {
    FailLoad("embedding output '" + out.name + "' is " + out.element_type + " " + ShapeText(out.shape) +
             "; expected float32 [N,D] (the batch first, then the embedding)");
  }
  d.embedding_dim = PerItemSize(out.shape);
  if (d.regions_output >= 0) {
    const auto& regions = d.outputs[d.regions_output];
    if (regions.element_type != "float32" || regions.shape.size() != 4 || regions.shape[1] != 3 ||
        PerItemSize(regions.shape) <= 0) {
      FailLoad("output 'regions' is " + regions.element_type + " " + ShapeText(regions.shape) +
               "; expected float32 [N,3,h,w] with fixed h and w");
    }
    d.regions_height = static_cast<int>(regions.shape[2]);
    d.regions_width = static_cast<int>(regions.shape[3]);
  }
  impl->input_name = d.input.name;
  impl->output_names.push_back(out.name);
  if (d.regions_output >= 0) impl->output_names.push_back(d.outputs[d.regions_output].name);

  std::unique_ptr<InferenceSession> session(new InferenceSession(std::move(impl)));
  session->description_ = d;
  if (d.embedding_dim <= 0) {
    // A symbolic embedding size: one probe run on a blank face tells it.
    std::vector<float> blank(static_cast<size_t>(d.input_channels) * d.input_height * d.input_width, 0.0f);
    Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    std::vector<int64_t> shape = {1, d.input_channels, d.input_height, d.input_width};
    Ort::Value tensor = Ort::Value::CreateTensor<float>(memory, blank.data(), blank.size(), shape.data(), 4);
    const char* in_name = session->impl_->input_name.c_str();
    const char* out_name = session->impl_->output_names[0].c_str();
    try {
      auto outputs = session->impl_->session.Run(Ort::RunOptions{nullptr}, &in_name, &tensor, 1, &out_name, 1);
      auto info = outputs[0].GetTensorTypeAndShapeInfo();
      session->description_.embedding_dim = static_cast<int64_t>(info.GetElementCount());
    } catch (const Ort::Exception& e) {
      FailLoad(std::string("probe run to find the embedding size failed: ") + e.what());
    }
  }
  if (config.provider.provider == Provider::kCpu && d.fixed_batch != 1 && config.max_batch >= 2) session->SelfCheck();
  return session;
}

// A batch of two must give what two single runs give. Catches models whose output is not [N, D]
// with the batch first although its declared shape says so (or says nothing), and models that
// mix the faces of a batch (batch statistics left in): both answer plausibly for one face and
// wrongly for a batch. CPU sessions only: a GPU provider may build an engine per batch size.
void InferenceSession::SelfCheck() const {
  const auto& d = description_;
  const size_t item = static_cast<size_t>(d.input_channels) * d.input_height * d.input_width;
  const size_t dim = static_cast<size_t>(d.embedding_dim);
  std::vector<float> inputs(2 * item);
  for (size_t i = 0; i < item; ++i) {
    inputs[i] = 0.8f * std::sin(0.37f * static_cast<float>(i % 9973));
    inputs[item + i] = 0.8f * std::cos(0.11f * static_cast<float>(i % 7919)) - 0.1f;
  }
  std::vector<float> batched(2 * dim), single(2 * dim);
  try {
    Run(inputs.data(), 2, batched.data(), nullptr);
    Run(inputs.data(), 1, single.data(), nullptr);
    Run(inputs.data() + item, 1, single.data() + dim, nullptr);
  } catch (const Error& e) {
    FailLoad(std::string("the self-check run (a batch of two probe inputs) failed: ") + e.what());
  }
  for (size_t row = 0; row < 2; ++row) {
    double difference = 0, norm = 0;
    for (size_t i = 0; i < dim; ++i) {
      const double s = single[row * dim + i], b = batched[row * dim + i];
      difference += (b - s) * (b - s);
      norm += s * s;
    }
    if (!(difference <= 1e-6 * norm)) {
      FailLoad("a batch of two faces does not give what each face gives alone (row " + std::to_string(row) +
               " differs by " + std::to_string(std::sqrt(difference / std::max(norm, 1e-30))) +
               " of its length): the embedding output must be [N,D] with the batch first, and faces must not "
               "depend on each other (batch statistics)");
    }
  }
}

// The batch loop of Run and RunDeviceInput: `make_input(start, step, shape)` gives the input
// tensor of faces [start, start + step); the run goes through an IO binding, with the outputs
// bound to host memory (ONNX Runtime allocates them there, copying from a GPU when it ran on one).
template <typename MakeInput>
void InferenceSession::RunBatches(int64_t batch, float* embeddings, float* regions, MakeInput&& make_input) const {
  MF_CHECK_ARG(embeddings != nullptr && batch >= 1, "Run: empty batch or null buffers");
  const auto& d = description_;
  const int64_t dim = d.embedding_dim;
  const int64_t region_item = d.regions_output >= 0 ? 3LL * d.regions_height * d.regions_width : 0;
  const bool want_regions = regions != nullptr && d.regions_output >= 0;
  const size_t n_outputs = want_regions ? 2 : 1;
  const Ort::MemoryInfo host = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  const int64_t chunk = d.fixed_batch == 1 ? 1 : std::min(batch, impl_->max_batch);
  ScopedFlushDenormals flush_denormals;

  for (int64_t start = 0; start < batch; start += chunk) {
    const int64_t step = std::min(chunk, batch - start);
    const std::vector<int64_t> shape = {step, d.input_channels, d.input_height, d.input_width};
    std::vector<Ort::Value> outputs;
    try {
      Ort::Value tensor = make_input(start, step, shape);
      Ort::IoBinding binding(impl_->session);
      binding.BindInput(impl_->input_name.c_str(), tensor);
      for (size_t i = 0; i < n_outputs; ++i) binding.BindOutput(impl_->output_names[i].c_str(), host);
      impl_->session.Run(Ort::RunOptions{nullptr}, binding);
      outputs = binding.GetOutputValues();
    } catch (const Ort::Exception& e) {
      // ONNX Runtime reports a failed allocation as a plain failure whose message says so.
      const std::string message = e.what();
      const bool allocation = message.find("Failed to allocate") != std::string::npos ||
                              message.find("bad_alloc") != std::string::npos;
      throw Error(allocation ? ErrorCode::kOutOfMemory : ErrorCode::kInference,
                  std::string(allocation ? "out of memory in ONNX Runtime (a batch of " + std::to_string(step) + " faces): " : "ONNX Runtime Run failed: ") + message);
    } catch (const std::bad_alloc&) {
      throw Error(ErrorCode::kOutOfMemory, "out of memory during inference");
    }
    auto embedding_info = outputs[0].GetTensorTypeAndShapeInfo();
    if (static_cast<int64_t>(embedding_info.GetElementCount()) != step * dim) {
      throw Error(ErrorCode::kInference, "embedding output has " + std::to_string(embedding_info.GetElementCount()) +
                                             " values for a batch of " + std::to_string(step) + "; expected " +
                                             std::to_string(step * dim));
    }
    std::memcpy(embeddings + start * dim, outputs[0].GetTensorData<float>(), sizeof(float) * step * dim);
    if (want_regions) {
      auto region_info = outputs[1].GetTensorTypeAndShapeInfo();
      if (static_cast<int64_t>(region_info.GetElementCount()) != step * region_item) {
        throw Error(ErrorCode::kInference, "regions output has an unexpected size");
      }
      std::memcpy(regions + start * region_item, outputs[1].GetTensorData<float>(), sizeof(float) * step * region_item);
    }
  }
}

void InferenceSession::Run(const float* input, int64_t batch, float* embeddings, float* regions) const {
  MF_CHECK_ARG(input != nullptr, "Run: null input");
  const int64_t item = static_cast<int64_t>(description_.input_channels) * description_.input_height * description_.input_width;
  const Ort::MemoryInfo host = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  RunBatches(batch, embeddings, regions, [&](int64_t start, int64_t step, const std::vector<int64_t>& shape) {
    // ORT takes a non-const pointer but does not write model inputs.
    return Ort::Value::CreateTensor<float>(host, const_cast<float*>(input + start * item), static_cast<size_t>(step * item),
                                           shape.data(), shape.size());
  });
}

void InferenceSession::RunDeviceInput(const float* device_input, int64_t batch, float* embeddings, float* regions) const {
  MF_CHECK_ARG(device_input != nullptr, "RunDeviceInput: null input");
  MF_CHECK_ARG(impl_->provider.provider != Provider::kCpu, "RunDeviceInput needs a CUDA or TensorRT session");
  const int64_t item = static_cast<int64_t>(description_.input_channels) * description_.input_height * description_.input_width;
  // The memory of the session's GPU, as the CUDA provider names it.
  const Ort::MemoryInfo device("Cuda", OrtDeviceAllocator, impl_->provider.device_id, OrtMemTypeDefault);
  RunBatches(batch, embeddings, regions, [&](int64_t start, int64_t step, const std::vector<int64_t>& shape) {
    return Ort::Value::CreateTensor<float>(device, const_cast<float*>(device_input + start * item),
                                           static_cast<size_t>(step * item), shape.data(), shape.size());
  });
}

}  // namespace maskface::ort
