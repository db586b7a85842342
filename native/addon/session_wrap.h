// JS handle for a loaded face network: load (async), describe, embed (async), dispose.
#pragma once
#include <napi.h>

#include <memory>
#include <vector>

#include "addon/instance_data.h"
#include "core/align.h"
#include "gpu/gpu_preprocess.h"
#include "ort/session.h"

namespace maskface::addon {

// How faces become network input: the normalisation and the landmark template, fixed per
// session by lib/ from the model's metadata or the user's options.
struct Preprocessing {
  TensorSpec spec;
  std::vector<double> template_points;  // (x, y) pairs in input pixels; empty: no landmark alignment
};

class SessionWrap : public Napi::ObjectWrap<SessionWrap>, public Releasable {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // loadSession(bytes: Uint8Array, options: {intraOpThreads, interOpThreads}) -> Promise<Session>
  static Napi::Value Load(const Napi::CallbackInfo& info);

  explicit SessionWrap(const Napi::CallbackInfo& info);
  ~SessionWrap() override;
  void Release() override;

  // The live session and its preprocessing, for a native call that embeds faces it found itself
  // (FaceDetector's detect). Throws ERR_DISPOSED / ERR_INVALID_ARGUMENT as embed() would.
  std::shared_ptr<const ort::InferenceSession> Live(Napi::Env env) const;
  std::shared_ptr<const Preprocessing> LivePreprocessing(Napi::Env env) const;
  // The SessionWrap behind a JS value, or an ERR_INVALID_ARGUMENT naming `what`.
  static SessionWrap* FromValue(Napi::Env env, Napi::Value value, const char* what);

 private:
  Napi::Value Describe(const Napi::CallbackInfo& info);
  Napi::Value SetPreprocessing(const Napi::CallbackInfo& info);
  Napi::Value Embed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<const ort::InferenceSession> session_;
  std::shared_ptr<const Preprocessing> preprocessing_;
  std::shared_ptr<gpu::GpuPreprocessor> preprocessor_;  // alignment on the GPU (gpu.alignOnDevice), or null
  LiveRegistration registration_;
};

}  // namespace maskface::addon
