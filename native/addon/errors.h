// The only place where native failures become JS errors. Every error thrown or rejected by the
// addon is an instance of the MaskFaceError class that lib/ injects at init, with a `code`.
#pragma once
#include <napi.h>

#include <exception>
#include <string>
#include <vector>

#include "core/error.h"

namespace maskface::addon {

enum class JsCode {
  kInvalidArgument,
  kDimensionMismatch,
  kModelLoad,
  kInference,
  kOutOfMemory,
  kDisposed,
  kProviderUnavailable,
  kBindingLoad,
  kCuda,
  kGalleryCorrupt,
  kGalleryVersion,
  kIo,
  kInternal,
};

// Every code, for errorCodes() (lib/ checks its list against this one).
inline constexpr JsCode kAllJsCodes[] = {JsCode::kInvalidArgument, JsCode::kDimensionMismatch, JsCode::kModelLoad,
                                         JsCode::kInference,       JsCode::kOutOfMemory,       JsCode::kDisposed,
                                         JsCode::kProviderUnavailable, JsCode::kBindingLoad,  JsCode::kCuda,
                                         JsCode::kGalleryCorrupt, JsCode::kGalleryVersion, JsCode::kIo,
                                         JsCode::kInternal};

JsCode FromCore(ErrorCode code);
const char* CodeString(JsCode code);

// new MaskFaceError(message, code, { details }) (falls back to a plain Error with .code and
// .details before init()).
Napi::Error MakeError(Napi::Env env, JsCode code, const std::string& message, const std::vector<ErrorDetail>& details = {});

// Translates the exception in flight (inside a catch block) into a code and message, keeping
// the original what() text, and the details of a maskface::Error when `details` is given.
void DescribeCurrentException(JsCode* code, std::string* message, std::vector<ErrorDetail>* details = nullptr);

// Runs body(); C++ exceptions never cross into JS: they are rethrown as MaskFaceError.
template <typename Body>
auto Guard(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    JsCode code;
    std::string message;
    std::vector<ErrorDetail> details;
    DescribeCurrentException(&code, &message, &details);
    throw MakeError(env, code, message, details);
  }
}

}  // namespace maskface::addon
