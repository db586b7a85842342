// Errors raised by native/core and native/ort. Only native/addon turns them into JS errors.
#pragma once
#include <stdexcept>
#include <string>

namespace maskface {

enum class ErrorCode {
  kInvalidArgument,    // ERR_INVALID_ARGUMENT
  kDimensionMismatch,  // ERR_DIMENSION_MISMATCH
  kModelLoad,          // ERR_MODEL_LOAD
  kInference,          // ERR_INFERENCE
  kOutOfMemory,        // ERR_OUT_OF_MEMORY
  kProviderUnavailable,  // ERR_PROVIDER_UNAVAILABLE
  kRuntimeLoad,        // ERR_BINDING_LOAD (libonnxruntime could not be loaded)
  kCuda,               // ERR_CUDA (the CUDA runtime or a kernel failed)
  kInternal,           // ERR_INTERNAL
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace maskface

// Cheap re-checks of what the TypeScript layer already validated: a TS bug becomes an error, not UB.
#define MF_CHECK_ARG(cond, msg)                                                   \
  do {                                                                            \
    if (!(cond)) throw ::maskface::Error(::maskface::ErrorCode::kInvalidArgument, (msg)); \
  } while (0)
