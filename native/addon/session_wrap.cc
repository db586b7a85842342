#include "addon/session_wrap.h"

#include <chrono>
#include <string>

#include "addon/args.h"
#include "addon/errors.h"
#include "addon/promise_worker.h"
#include "core/vector_math.h"

namespace maskface::addon {
namespace {

using Clock = std::chrono::steady_clock;

double MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Handed from LoadWorker::Result to the constructor, so JS cannot construct a Session itself.
thread_local std::shared_ptr<ort::InferenceSession> pending_session;

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, Napi::Uint8Array bytes, ort::SessionConfig config)
      : PromiseWorker(env, "maskface:load"),
        bytes_ref_(Napi::Persistent(bytes)),
        data_(bytes.Data()),
        size_(bytes.ByteLength()),
        config_(config) {}

 protected:
  void Compute() override { session_ = ort::InferenceSession::Create(data_, size_, config_); }

  Napi::Value Result(Napi::Env env) override {
    pending_session = std::move(session_);
    Napi::Object wrap = InstanceData::Get(env)->session_class.New({});
    pending_session.reset();
    return wrap;
  }

 private:
  Napi::Reference<Napi::Uint8Array> bytes_ref_;  // keeps the model bytes alive while ORT parses them
  const uint8_t* data_;
  size_t size_;
  ort::SessionConfig config_;
  std::unique_ptr<ort::InferenceSession> session_;
};

struct FaceInput {
  std::vector<uint8_t> pixels;  // copied: callers may reuse their buffers as soon as embed() returns
  ImageView view;
  std::vector<double> landmarks;  // image pixels, (x, y) pairs; empty when the crop is used as is
};

class EmbedWorker : public PromiseWorker {
 public:
  EmbedWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<const ort::InferenceSession> session,
              std::shared_ptr<const Preprocessing> preprocessing, std::vector<FaceInput> faces, bool want_regions)
      : PromiseWorker(env, "maskface:embed"),
        owner_(Napi::Persistent(owner)),
        session_(std::move(session)),
        preprocessing_(std::move(preprocessing)),
        faces_(std::move(faces)),
        want_regions_(want_regions && session_->description().regions_output >= 0) {}

 protected:
  void Compute() override {
    const auto& d = session_->description();
    const TensorSpec& spec = preprocessing_->spec;
    const size_t n = faces_.size();
    const size_t item = static_cast<size_t>(spec.channels) * spec.height * spec.width;
    const size_t dim = static_cast<size_t>(d.embedding_dim);

    auto start = Clock::now();
    std::vector<float> input(n * item);
    for (size_t i = 0; i < n; ++i) {
      const FaceInput& face = faces_[i];
      Affine out_to_src;
      if (!face.landmarks.empty()) {
        Affine src_to_template;
        const int points = static_cast<int>(face.landmarks.size() / 2);
        if (!EstimateSimilarity(face.landmarks.data(), preprocessing_->template_points.data(), points,
                                &src_to_template) ||
            !InvertAffine(src_to_template, &out_to_src)) {
          throw Error(ErrorCode::kInvalidArgument,
                      "face " + std::to_string(i) + ": landmarks are degenerate (no similarity transform fits them)");
        }
      } else {
        out_to_src = ResizeMap(face.view.width, face.view.height, spec.width, spec.height);
      }
      WarpToTensor(face.view, out_to_src, spec, input.data() + i * item);
    }
    faces_.clear();
    faces_.shrink_to_fit();
    preprocess_ms_ = MillisecondsSince(start);

    start = Clock::now();
    embeddings_.resize(n * dim);
    if (want_regions_) regions_.resize(n * 3 * d.regions_height * d.regions_width);
    session_->Run(input.data(), static_cast<int64_t>(n), embeddings_.data(), want_regions_ ? regions_.data() : nullptr);
    inference_ms_ = MillisecondsSince(start);

    start = Clock::now();
    for (size_t i = 0; i < n; ++i) {
      float* row = embeddings_.data() + i * dim;
      if (!AllFinite(row, dim)) {
        throw Error(ErrorCode::kInference, "the model produced a non-finite embedding for face " + std::to_string(i));
      }
      if (!L2Normalize(row, dim)) {
        throw Error(ErrorCode::kInference, "the model produced an all-zero embedding for face " + std::to_string(i));
      }
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
  std::vector<FaceInput> faces_;
  bool want_regions_;
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
    config.provider = ProviderArg(env, options);
    return (new LoadWorker(env, bytes, config))->Start();
  });
}

SessionWrap::SessionWrap(const Napi::CallbackInfo& info)
    : ObjectWrap<SessionWrap>(info), registration_(info.Env(), this) {
  if (!pending_session) {
    throw MakeError(info.Env(), JsCode::kInvalidArgument, "Session cannot be constructed directly; use loadSession()");
  }
  session_ = std::move(pending_session);
}

SessionWrap::~SessionWrap() = default;

void SessionWrap::Release() {
  session_.reset();
  preprocessing_.reset();
}

std::shared_ptr<const ort::InferenceSession> SessionWrap::Live(Napi::Env env) const {
  if (!session_) throw MakeError(env, JsCode::kDisposed, "the session has been disposed");
  return session_;
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
    preprocessing_ = std::move(preprocessing);
    return env.Undefined();
  });
}

// embed(faces: {data, width, height, channels, bgr, landmarks?: Float64Array}[], wantRegions)
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
    bool want_regions = info[1].ToBoolean();
    return (new EmbedWorker(env, Value(), session, preprocessing_, std::move(faces), want_regions))->Start();
  });
}

Napi::Value SessionWrap::Dispose(const Napi::CallbackInfo& info) {
  // In-flight runs hold their own reference to the session; it is freed when the last one ends.
  Release();
  return info.Env().Undefined();
}

}  // namespace maskface::addon
