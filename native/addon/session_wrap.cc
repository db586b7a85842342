#include "addon/session_wrap.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <string>

#include "addon/args.h"
#include "addon/errors.h"
#include "addon/promise_worker.h"
#include "core/vector_math.h"
#include "gpu/gpu_preprocess.h"
#include "gpu/kernel_library.h"

namespace maskface::addon {
namespace {

// Handed from LoadWorker::Result to the constructor, so JS cannot construct a Session itself.
thread_local std::shared_ptr<ort::InferenceSession> pending_session;
thread_local std::shared_ptr<gpu::GpuPreprocessor> pending_preprocessor;

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, Napi::Uint8Array bytes, ort::SessionConfig config, bool device_input)
      : PromiseWorker(env, "maskface:load"),
        bytes_ref_(Napi::Persistent(bytes)),
        data_(bytes.Data()),
        size_(bytes.ByteLength()),
        config_(config),
        device_input_(device_input) {}

 protected:
  void Compute() override {
    if (device_input_) {
      // Checked before the (slow) session build: device input needs a GPU session and the kernels.
      const gpu::KernelLibrary* kernels = gpu::LoadedKernelLibrary();
      if (config_.provider.provider == ort::Provider::kCpu || kernels == nullptr) {
        throw Error(ErrorCode::kProviderUnavailable,
                    "alignment on the GPU needs a CUDA or TensorRT session and libmaskface_cuda.so loaded");
      }
      preprocessor_ = std::make_shared<gpu::GpuPreprocessor>(*kernels, config_.provider.device_id);
    }
    session_ = ort::InferenceSession::Create(data_, size_, config_);
  }

  Napi::Value Result(Napi::Env env) override {
    pending_session = std::move(session_);
    pending_preprocessor = std::move(preprocessor_);
    Napi::Object wrap = InstanceData::Get(env)->session_class.New({});
    pending_session.reset();
    pending_preprocessor.reset();
    return wrap;
  }

 private:
  Napi::Reference<Napi::Uint8Array> bytes_ref_;  // keeps the model bytes alive while ORT parses them
  const uint8_t* data_;
  size_t size_;
  ort::SessionConfig config_;
  bool device_input_;
  std::unique_ptr<ort::InferenceSession> session_;
  std::shared_ptr<gpu::GpuPreprocessor> preprocessor_;
};

struct FaceInput {
  std::vector<uint8_t> pixels;  // copied: callers may reuse their buffers as soon as embed() returns
  ImageView view;
  std::vector<double> landmarks;  // image pixels, (x, y) pairs; empty when the crop is used as is
};

// The output-to-image map of face `index`: the similarity onto the template when it has
// landmarks, else a resize of the whole image.
Affine FaceMap(const FaceInput& face, const Preprocessing& preprocessing, size_t index) {
  const TensorSpec& spec = preprocessing.spec;
  if (face.landmarks.empty()) return ResizeMap(face.view.width, face.view.height, spec.width, spec.height);
  Affine src_to_template, out_to_src;
  const int points = static_cast<int>(face.landmarks.size() / 2);
  if (!EstimateSimilarity(face.landmarks.data(), preprocessing.template_points.data(), points, &src_to_template) ||
      !InvertAffine(src_to_template, &out_to_src)) {
    throw Error(ErrorCode::kInvalidArgument,
                "face " + std::to_string(index) + ": landmarks are degenerate (no similarity transform fits them)");
  }
  return out_to_src;
}

// Alignment on the GPU must give what the CPU gives. Checked once per session, when its
// preprocessing is set: a probe image under a rotated, scaled map partly outside the image goes
// through both paths, then through the network from each tensor. A disagreement fails the load.
void CheckDeviceAlignment(const ort::InferenceSession& session, gpu::GpuPreprocessor& preprocessor,
                          const Preprocessing& preprocessing) {
  const TensorSpec& spec = preprocessing.spec;
  constexpr int kWidth = 97, kHeight = 83;
  std::vector<uint8_t> pixels(kWidth * kHeight * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i * 37 + (i / 291) * 11) & 0xff);
  ImageView image;
  image.data = pixels.data();
  image.width = kWidth;
  image.height = kHeight;
  image.channels = 3;
  const double angle = 0.2, scale = 0.8;
  Affine map{{scale * std::cos(angle), -scale * std::sin(angle), -6.0, scale * std::sin(angle), scale * std::cos(angle), 4.0}};

  const size_t item = static_cast<size_t>(spec.channels) * spec.height * spec.width;
  std::vector<float> host(item), device(item);
  WarpToTensor(image, map, spec, host.data());
  auto lock = preprocessor.Lock();
  const float* tensor = preprocessor.Prepare({image}, {map}, spec);
  preprocessor.Download(tensor, device.data(), item);
  double worst = 0;
  for (size_t i = 0; i < item; ++i) worst = std::max(worst, static_cast<double>(std::fabs(host[i] - device[i])));
  // Both compute in float; 2e-3 of a grey level (as the CUDA harness allows) is far below any
  // real difference, such as a pixel off by one or a channel swapped.
  const double allowed = 2e-3 / std::min({std::fabs(spec.std[0]), std::fabs(spec.std[1]), std::fabs(spec.std[2])});
  if (!(worst <= allowed)) {
    throw Error(ErrorCode::kInternal, "alignment on the GPU differs from the CPU by up to " + std::to_string(worst) +
                                          " on a probe image; load without gpu.alignOnDevice and report this");
  }
  const size_t dim = static_cast<size_t>(session.description().embedding_dim);
  std::vector<float> from_host(dim), from_device(dim);
  session.Run(host.data(), 1, from_host.data(), nullptr);
  session.RunDeviceInput(tensor, 1, from_device.data(), nullptr);
  L2Normalize(from_host.data(), dim);
  L2Normalize(from_device.data(), dim);
  double cosine = 0;
  for (size_t i = 0; i < dim; ++i) cosine += static_cast<double>(from_host[i]) * from_device[i];
  if (!(cosine >= 0.9999)) {
    throw Error(ErrorCode::kInternal, "the network's embedding from the device tensor differs from the host tensor's (cosine " +
                                          std::to_string(cosine) + "); load without gpu.alignOnDevice and report this");
  }
}

class EmbedWorker : public PromiseWorker {
 public:
  EmbedWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<const ort::InferenceSession> session,
              std::shared_ptr<const Preprocessing> preprocessing, std::shared_ptr<gpu::GpuPreprocessor> preprocessor,
              std::vector<FaceInput> faces, bool want_regions, bool flip)
      : PromiseWorker(env, "maskface:embed"),
        owner_(Napi::Persistent(owner)),
        session_(std::move(session)),
        preprocessing_(std::move(preprocessing)),
        preprocessor_(std::move(preprocessor)),
        faces_(std::move(faces)),
        want_regions_(want_regions && session_->description().regions_output >= 0),
        flip_(flip) {}

 protected:
  void Compute() override {
    const auto& d = session_->description();
    const TensorSpec& spec = preprocessing_->spec;
    const size_t n = faces_.size();
    const size_t item = static_cast<size_t>(spec.channels) * spec.height * spec.width;
    const size_t dim = static_cast<size_t>(d.embedding_dim);
    const size_t region_item = want_regions_ ? 3 * static_cast<size_t>(d.regions_height) * d.regions_width : 0;
    // With flip, the network also sees each face's mirror image: items n..2n-1.
    const size_t items = flip_ ? 2 * n : n;

    auto start = Clock::now();
    std::vector<Affine> out_to_src(items);
    for (size_t i = 0; i < n; ++i) {
      out_to_src[i] = FaceMap(faces_[i], *preprocessing_, i);
      if (flip_) out_to_src[n + i] = MirrorOutput(out_to_src[i], spec.width);
    }
    embeddings_.resize(items * dim);
    regions_.resize(items * region_item);
    float* regions = want_regions_ ? regions_.data() : nullptr;
    std::vector<float> input;
    const float* device_input = nullptr;  // alignment on the GPU: the tensor stays on the device
    std::unique_lock<std::mutex> device_lock;
    if (preprocessor_) {
      std::vector<ImageView> views(items);
      for (size_t i = 0; i < items; ++i) views[i] = faces_[i % n].view;
      device_lock = preprocessor_->Lock();
      device_input = preprocessor_->Prepare(views, out_to_src, spec);
    } else {
      input.resize(items * item);
      for (size_t i = 0; i < items; ++i) WarpToTensor(faces_[i % n].view, out_to_src[i], spec, input.data() + i * item);
    }
    faces_.clear();
    faces_.shrink_to_fit();
    preprocess_ms_ = MillisecondsSince(start);

    start = Clock::now();
    if (device_input != nullptr) {
      session_->RunDeviceInput(device_input, static_cast<int64_t>(items), embeddings_.data(), regions);
    } else {
      session_->Run(input.data(), static_cast<int64_t>(items), embeddings_.data(), regions);
    }
    inference_ms_ = MillisecondsSince(start);

    start = Clock::now();
    for (size_t i = 0; i < items; ++i) {
      float* row = embeddings_.data() + i * dim;
      const bool finite = AllFinite(row, dim);
      if (!finite || !L2Normalize(row, dim)) {
        throw Error(ErrorCode::kInference, std::string("the model produced ") + (finite ? "an all-zero" : "a non-finite") +
                                               " embedding for face " + std::to_string(i % n) +
                                               (i < n ? "" : " (mirror image)"));
      }
    }
    if (flip_) {
      if (!MergeMirroredRows(embeddings_.data(), n, dim)) {
        throw Error(ErrorCode::kInference, "a face's embedding and its mirror image's cancel out (sum zero)");
      }
      // The region maps (and maskProbability) stay those of the faces as given.
      embeddings_.resize(n * dim);
      regions_.resize(n * region_item);
    }
    postprocess_ms_ = MillisecondsSince(start);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    auto embeddings = Napi::Float32Array::New(env, embeddings_.size());
    std::copy(embeddings_.begin(), embeddings_.end(), embeddings.Data());
    result.Set("embeddings", embeddings);
    if (want_regions_) {
      auto regions = Napi::Float32Array::New(env, regions_.size());
      std::copy(regions_.begin(), regions_.end(), regions.Data());
      result.Set("regions", regions);
    }
    Napi::Object timing = Napi::Object::New(env);
    timing.Set("preprocessMs", preprocess_ms_);
    timing.Set("inferenceMs", inference_ms_);
    timing.Set("postprocessMs", postprocess_ms_);
    result.Set("timing", timing);
    return result;
  }

 private:
  Napi::ObjectReference owner_;  // keeps the Session wrapper alive while the run is in flight
  std::shared_ptr<const ort::InferenceSession> session_;
  std::shared_ptr<const Preprocessing> preprocessing_;
  std::shared_ptr<gpu::GpuPreprocessor> preprocessor_;  // null: alignment on the CPU
  std::vector<FaceInput> faces_;
  bool want_regions_;
  bool flip_;
  std::vector<float> embeddings_;
  std::vector<float> regions_;
  double preprocess_ms_ = 0, inference_ms_ = 0, postprocess_ms_ = 0;
};

Napi::Array ShapeArray(Napi::Env env, const std::vector<int64_t>& shape) {
  Napi::Array array = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    array.Set(static_cast<uint32_t>(i), shape[i] < 0 ? env.Null() : Napi::Number::New(env, static_cast<double>(shape[i])));
  }
  return array;
}

Napi::Object TensorObject(Napi::Env env, const ort::TensorDescription& tensor) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("name", tensor.name);
  object.Set("type", tensor.element_type);
  object.Set("shape", ShapeArray(env, tensor.shape));
  return object;
}

void ReadFloat3(Napi::Env env, Napi::Object object, const char* key, float out[3]) {
  auto values = TypedArrayArg<float>(env, object.Get(key), key);
  if (values.ElementLength() != 3) ThrowInvalid(env, std::string(key) + " must hold 3 values");
  for (int c = 0; c < 3; ++c) out[c] = values[c];
}

// { provider: 'cpu' | 'cuda' | 'tensorrt', deviceId, fp16, engineCacheDir } (checked in lib/).
ort::ProviderConfig ProviderArg(Napi::Env env, Napi::Object options) {
  ort::ProviderConfig config;
  const std::string name = options.Get("provider").ToString();
  if (name == "cuda") {
    config.provider = ort::Provider::kCuda;
  } else if (name == "tensorrt") {
    config.provider = ort::Provider::kTensorRt;
  } else if (name != "cpu") {
    ThrowInvalid(env, "unknown provider '" + name + "'");
  }
  if (config.provider == ort::Provider::kCpu) return config;
  config.device_id = static_cast<int>(IntegerArg(env, options.Get("deviceId"), "deviceId", 0, 1023));
  config.fp16 = options.Get("fp16").ToBoolean();
  if (options.Get("engineCacheDir").IsString()) config.engine_cache_dir = options.Get("engineCacheDir").ToString();
  return config;
}

}  // namespace

Napi::Function SessionWrap::DefineClass(Napi::Env env) {
  return ObjectWrap<SessionWrap>::DefineClass(env, "Session",
                                              {
                                                  InstanceMethod<&SessionWrap::Describe>("describe"),
                                                  InstanceMethod<&SessionWrap::SetPreprocessing>("setPreprocessing"),
                                                  InstanceMethod<&SessionWrap::Embed>("embed"),
                                                  InstanceMethod<&SessionWrap::Dispose>("dispose"),
                                              });
}


Napi::Value SessionWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto bytes = TypedArrayArg<uint8_t>(env, info[0], "model bytes");
    Napi::Object options = ObjectArg(env, info[1], "options");
    ort::SessionConfig config;
    config.intra_op_threads = static_cast<int>(IntegerArg(env, options.Get("intraOpThreads"), "intraOpThreads", 1, 1024));
    config.inter_op_threads = static_cast<int>(IntegerArg(env, options.Get("interOpThreads"), "interOpThreads", 1, 1024));
    config.max_batch = IntegerArg(env, options.Get("maxBatchSize"), "maxBatchSize", 1, 4096);
    config.allow_spinning = options.Get("spinning").ToBoolean();
    config.provider = ProviderArg(env, options);
    return (new LoadWorker(env, bytes, config, options.Get("deviceInput").ToBoolean()))->Start();
  });
}

SessionWrap::SessionWrap(const Napi::CallbackInfo& info)
    : ObjectWrap<SessionWrap>(info), registration_(info.Env(), this) {
  if (!pending_session) {
    throw MakeError(info.Env(), JsCode::kInvalidArgument, "Session cannot be constructed directly; use loadSession()");
  }
  session_ = std::move(pending_session);
  preprocessor_ = std::move(pending_preprocessor);
}

SessionWrap::~SessionWrap() = default;

void SessionWrap::Release() {
  session_.reset();
  preprocessing_.reset();
  preprocessor_.reset();
}

std::shared_ptr<const ort::InferenceSession> SessionWrap::Live(Napi::Env env) const {
  if (!session_) throw MakeError(env, JsCode::kDisposed, "the session has been disposed");
  return session_;
}

std::shared_ptr<const Preprocessing> SessionWrap::LivePreprocessing(Napi::Env env) const {
  Live(env);
  if (!preprocessing_) ThrowInvalid(env, "setPreprocessing() must be called before embed()");
  return preprocessing_;
}

SessionWrap* SessionWrap::FromValue(Napi::Env env, Napi::Value value, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(InstanceData::Get(env)->session_class.Value())) {
    ThrowInvalid(env, std::string(what) + " must be a loaded session");
  }
  return Unwrap(value.As<Napi::Object>());
}

Napi::Value SessionWrap::Describe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& d = Live(env)->description();
    Napi::Object out = Napi::Object::New(env);
    out.Set("input", TensorObject(env, d.input));
    Napi::Array outputs = Napi::Array::New(env, d.outputs.size());
    for (size_t i = 0; i < d.outputs.size(); ++i) outputs.Set(static_cast<uint32_t>(i), TensorObject(env, d.outputs[i]));
    out.Set("outputs", outputs);
    out.Set("embeddingOutput", d.outputs[d.embedding_output].name);
    out.Set("regionsOutput", d.regions_output >= 0 ? Napi::Value(Napi::String::New(env, d.outputs[d.regions_output].name))
                                                   : env.Null());
    out.Set("embeddingDim", static_cast<double>(d.embedding_dim));
    out.Set("fixedBatch", static_cast<double>(d.fixed_batch));
    out.Set("inputChannels", d.input_channels);
    out.Set("inputHeight", d.input_height);
    out.Set("inputWidth", d.input_width);
    Napi::Object metadata = Napi::Object::New(env);
    for (const auto& [key, value] : d.metadata) metadata.Set(key, value);
    out.Set("metadata", metadata);
    out.Set("producer", d.producer);
    out.Set("graphName", d.graph_name);
    return out;
  });
}

// setPreprocessing({mean: Float32Array(3), std: Float32Array(3), bgr: boolean, template: Float64Array | null})
Napi::Value SessionWrap::SetPreprocessing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& d = Live(env)->description();
    Napi::Object options = ObjectArg(env, info[0], "preprocessing");
    auto preprocessing = std::make_shared<Preprocessing>();
    preprocessing->spec.width = d.input_width;
    preprocessing->spec.height = d.input_height;
    preprocessing->spec.channels = d.input_channels;
    preprocessing->spec.bgr = options.Get("bgr").ToBoolean();
    ReadFloat3(env, options, "mean", preprocessing->spec.mean);
    ReadFloat3(env, options, "std", preprocessing->spec.std);
    for (int c = 0; c < 3; ++c) {
      if (!(preprocessing->spec.std[c] != 0.0f) || !std::isfinite(preprocessing->spec.std[c]) ||
          !std::isfinite(preprocessing->spec.mean[c])) {
        ThrowInvalid(env, "mean must be finite and std finite and non-zero");
      }
    }
    Napi::Value points = options.Get("template");
    if (!points.IsNull() && !points.IsUndefined()) {
      auto values = TypedArrayArg<double>(env, points, "template");
      if (values.ElementLength() < 4 || values.ElementLength() % 2 != 0) {
        ThrowInvalid(env, "template must hold at least 2 (x, y) points");
      }
      preprocessing->template_points.assign(values.Data(), values.Data() + values.ElementLength());
    }
    if (preprocessor_) CheckDeviceAlignment(*Live(env), *preprocessor_, *preprocessing);
    preprocessing_ = std::move(preprocessing);
    return env.Undefined();
  });
}

// embed(faces: {data, width, height, channels, bgr, landmarks?: Float64Array}[], wantRegions, flip)
//   -> Promise<{embeddings: Float32Array, regions?: Float32Array, timing}>
Napi::Value SessionWrap::Embed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto session = Live(env);
    if (!preprocessing_) ThrowInvalid(env, "setPreprocessing() must be called before embed()");
    if (!info[0].IsArray()) ThrowInvalid(env, "faces must be an array");
    Napi::Array list = info[0].As<Napi::Array>();
    const uint32_t count = list.Length();
    if (count == 0) ThrowInvalid(env, "faces must not be empty");
    const size_t template_points = preprocessing_->template_points.size();
    std::vector<FaceInput> faces(count);
    for (uint32_t i = 0; i < count; ++i) {
      const std::string name = "face " + std::to_string(i);
      const ImageView view = ImageArg(env, list.Get(i), name);
      FaceInput& input = faces[i];
      input.view = view;
      input.pixels.assign(view.data, view.data + view.row_stride * view.height);
      input.view.data = input.pixels.data();
      Napi::Object face = list.Get(i).As<Napi::Object>();
      Napi::Value landmarks = face.Get("landmarks");
      if (!landmarks.IsUndefined() && !landmarks.IsNull()) {
        auto points = TypedArrayArg<double>(env, landmarks, "face.landmarks");
        if (template_points == 0) ThrowInvalid(env, "this session has no landmark template");
        if (points.ElementLength() != template_points) {
          ThrowInvalid(env, name + ": expected " + std::to_string(template_points / 2) + " landmarks");
        }
        input.landmarks.assign(points.Data(), points.Data() + points.ElementLength());
      }
    }
    const bool want_regions = info[1].ToBoolean();
    const bool flip = info[2].ToBoolean();
    return (new EmbedWorker(env, Value(), session, preprocessing_, preprocessor_, std::move(faces), want_regions, flip))
        ->Start();
  });
}

Napi::Value SessionWrap::Dispose(const Napi::CallbackInfo& info) {
  // In-flight runs hold their own reference to the session; it is freed when the last one ends.
  Release();
  return info.Env().Undefined();
}

}  // namespace maskface::addon
