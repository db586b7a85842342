// JS handle for the face detector (detector + landmark networks): load (async), detect (async,
// one worker hop per photo: detection, landmarks, and the embeddings when a session is given),
// dispose.
#pragma once
#include <napi.h>

#include <memory>

#include "addon/instance_data.h"
#include "ort/face_detector.h"

namespace maskface::addon {

class DetectorWrap : public Napi::ObjectWrap<DetectorWrap>, public Releasable {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // loadDetector(detector: Uint8Array, landmarks: Uint8Array, {intraOpThreads}) -> Promise<Detector>
  static Napi::Value Load(const Napi::CallbackInfo& info);

  explicit DetectorWrap(const Napi::CallbackInfo& info);
  void Release() override;

 private:
  Napi::Value Describe(const Napi::CallbackInfo& info);
  Napi::Value Detect(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<const ort::FaceDetector> detector_;
  LiveRegistration registration_;
};

}  // namespace maskface::addon
