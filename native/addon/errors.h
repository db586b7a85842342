// The only place where native failures become JS errors. Every error thrown or rejected by the
// addon is an instance of the MaskFaceError class that lib/ injects at init, with a `code`.
#pragma once
#include <napi.h>

#include <exception>
#include <string>

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
  kInternal,
};

// Every code, for errorCodes() (lib/ checks its list against this one).
inline constexpr JsCode kAllJsCodes[] = {JsCode::kInvalidArgument, JsCode::kDimensionMismatch, JsCode::kModelLoad,
                                         JsCode::kInference,       JsCode::kOutOfMemory,       JsCode::kDisposed,
                                         JsCode::kProviderUnavailable, JsCode::kBindingLoad,  JsCode::kCuda,
                                         JsCode::kInternal};

JsCode FromCore(ErrorCode code);
const char* CodeString(JsCode code);

// new MaskFaceError(message, code) (falls back to a plain Error with .code before init()).
Napi::Error MakeError(Napi::Env env, JsCode code, const std::string& message);

// Translates the exception in flight (inside a catch block) into a code and message, keeping
// the original what() text.
void DescribeCurrentException(JsCode* code, std::string* message);

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
    DescribeCurrentException(&code, &message);
    throw MakeError(env, code, message);
  }
}

}  // namespace maskface::addon
