#include "addon/errors.h"

#include <new>

#include "addon/instance_data.h"

namespace maskface::addon {

JsCode FromCore(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return JsCode::kInvalidArgument;
    case ErrorCode::kDimensionMismatch: return JsCode::kDimensionMismatch;
    case ErrorCode::kModelLoad: return JsCode::kModelLoad;
    case ErrorCode::kInference: return JsCode::kInference;
    case ErrorCode::kOutOfMemory: return JsCode::kOutOfMemory;
    case ErrorCode::kProviderUnavailable: return JsCode::kProviderUnavailable;
    case ErrorCode::kRuntimeLoad: return JsCode::kBindingLoad;
    case ErrorCode::kCuda: return JsCode::kCuda;
    case ErrorCode::kGalleryCorrupt: return JsCode::kGalleryCorrupt;
    case ErrorCode::kGalleryVersion: return JsCode::kGalleryVersion;
    case ErrorCode::kIo: return JsCode::kIo;
    case ErrorCode::kInternal: return JsCode::kInternal;
  }
  return JsCode::kInternal;
}

const char* CodeString(JsCode code) {
  switch (code) {
    case JsCode::kInvalidArgument: return "ERR_INVALID_ARGUMENT";
    case JsCode::kDimensionMismatch: return "ERR_DIMENSION_MISMATCH";
    case JsCode::kModelLoad: return "ERR_MODEL_LOAD";
    case JsCode::kInference: return "ERR_INFERENCE";
    case JsCode::kOutOfMemory: return "ERR_OUT_OF_MEMORY";
    case JsCode::kDisposed: return "ERR_DISPOSED";
    case JsCode::kProviderUnavailable: return "ERR_PROVIDER_UNAVAILABLE";
    case JsCode::kBindingLoad: return "ERR_BINDING_LOAD";
    case JsCode::kCuda: return "ERR_CUDA";
    case JsCode::kGalleryCorrupt: return "ERR_GALLERY_CORRUPT";
    case JsCode::kGalleryVersion: return "ERR_GALLERY_VERSION";
    case JsCode::kIo: return "ERR_IO";
    case JsCode::kInternal: return "ERR_INTERNAL";
  }
  return "ERR_INTERNAL";
}

Napi::Error MakeError(Napi::Env env, JsCode code, const std::string& message, const std::vector<ErrorDetail>& details) {
  Napi::Value details_value = env.Undefined();
  if (!details.empty()) {
    Napi::Object object = Napi::Object::New(env);
    for (const ErrorDetail& detail : details) {
      object.Set(detail.key, detail.is_number ? Napi::Number::New(env, detail.number).As<Napi::Value>()
                                              : Napi::String::New(env, detail.text).As<Napi::Value>());
    }
    details_value = object;
  }
  auto* data = InstanceData::Get(env);
  if (data != nullptr && !data->error_class.IsEmpty()) {
    Napi::Object options = Napi::Object::New(env);
    if (!details.empty()) options.Set("details", details_value);
    Napi::Object error =
        data->error_class.New({Napi::String::New(env, message), Napi::String::New(env, CodeString(code)), options});
    return Napi::Error(env, error);
  }
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, CodeString(code)));
  if (!details.empty()) error.Set("details", details_value);
  return error;
}

void DescribeCurrentException(JsCode* code, std::string* message, std::vector<ErrorDetail>* details) {
  try {
    throw;
  } catch (const Error& e) {
    *code = FromCore(e.code());
    *message = e.what();
    if (details != nullptr) *details = e.details();
  } catch (const std::bad_alloc&) {
    *code = JsCode::kOutOfMemory;
    *message = "out of memory";
  } catch (const std::exception& e) {
    *code = JsCode::kInternal;
    *message = e.what();
  } catch (...) {
    *code = JsCode::kInternal;
    *message = "unknown native exception";
  }
}

}  // namespace maskface::addon
