// Module entry: registers the native classes and functions. Everything JS sees from here is
// internal to lib/ (declared in lib/runtime/native.ts); the public API lives in lib/.
#include <napi.h>

#include "addon/detector_wrap.h"
#include "addon/errors.h"
#include "addon/gallery_wrap.h"
#include "addon/journal_wrap.h"
#include "addon/image_functions.h"
#include "addon/instance_data.h"
#include "addon/runtime_functions.h"
#include "addon/session_wrap.h"
#include "core/cpu_search.h"
#include "core/thread_pool.h"
#include "ort/runtime.h"

namespace maskface::addon {
namespace {

// init({ MaskFaceError }): the error class every native failure is an instance of. Returns
// whether this call set it (false: an earlier call did, and its class stays).
Napi::Value InitErrors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().Get("MaskFaceError").IsFunction()) {
    throw Napi::TypeError::New(env, "init expects { MaskFaceError }");
  }
  // The first class stays: errors thrown by native code must be instances of the class that the
  // first loader of this addon handed out, whatever loads it later in this environment.
  InstanceData* data = InstanceData::Get(env);
  if (!data->error_class.IsEmpty()) return Napi::Boolean::New(env, false);
  data->error_class = Napi::Persistent(info[0].As<Napi::Object>().Get("MaskFaceError").As<Napi::Function>());
  return Napi::Boolean::New(env, true);
}

// errorCodes(): every code a native failure can carry.
Napi::Value ErrorCodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array codes = Napi::Array::New(env);
  uint32_t i = 0;
  for (JsCode code : kAllJsCodes) codes.Set(i++, CodeString(code));
  return codes;
}

Napi::Value Versions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    Napi::Object versions = Napi::Object::New(env);
    versions.Set("onnxruntime", ort::CurrentRuntime().version);
    versions.Set("napi", NAPI_VERSION);
    versions.Set("hardwareThreads", HardwareThreads());
    versions.Set("searchSimd", SimdLevelName(DetectSimdLevel()));
    return versions;
  });
}

// Frees every live session and gallery when the environment (the main thread, or a worker
// thread) shuts down, even if their JS wrappers were never collected.
void ReleaseAll(LiveHandles* live) {
  for (Releasable* handle : live->handles) handle->Release();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new InstanceData();
  env.SetInstanceData<InstanceData>(data);
  env.AddCleanupHook(ReleaseAll, data->live.get());

  Napi::Function session = SessionWrap::DefineClass(env);
  data->session_class = Napi::Persistent(session);
  Napi::Function detector = DetectorWrap::DefineClass(env);
  data->detector_class = Napi::Persistent(detector);
  Napi::Function gallery = GalleryWrap::DefineClass(env);
  Napi::Function journal = JournalWrap::DefineClass(env);
  data->journal_class = Napi::Persistent(journal);

  exports.Set("init", Napi::Function::New(env, InitErrors, "init"));
  exports.Set("versions", Napi::Function::New(env, Versions, "versions"));
  exports.Set("errorCodes", Napi::Function::New(env, ErrorCodes, "errorCodes"));
  exports.Set("loadRuntime", Napi::Function::New(env, LoadRuntime, "loadRuntime"));
  exports.Set("probeGpu", Napi::Function::New(env, ProbeGpu, "probeGpu"));
  exports.Set("mallocStats", Napi::Function::New(env, MallocStats, "mallocStats"));
  exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim, "mallocTrim"));
  exports.Set("loadSession", Napi::Function::New(env, SessionWrap::Load, "loadSession"));
  exports.Set("Session", session);
  exports.Set("loadDetector", Napi::Function::New(env, DetectorWrap::Load, "loadDetector"));
  exports.Set("Detector", detector);
  exports.Set("GalleryStore", gallery);
  exports.Set("describeGalleryFile", Napi::Function::New(env, DescribeGalleryFile, "describeGalleryFile"));
  exports.Set("openGalleryJournal", Napi::Function::New(env, JournalWrap::Open, "openGalleryJournal"));
  exports.Set("alignmentMatrix", Napi::Function::New(env, AlignmentMatrix, "alignmentMatrix"));
  exports.Set("warpImage", Napi::Function::New(env, WarpImage, "warpImage"));
  exports.Set("warpTensor", Napi::Function::New(env, WarpTensor, "warpTensor"));
  return exports;
}

}  // namespace
}  // namespace maskface::addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return maskface::addon::Init(env, exports); }

NODE_API_MODULE(maskface, InitModule)
