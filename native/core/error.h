// Errors raised by native/core and native/ort. Only native/addon turns them into JS errors.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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
  kGalleryCorrupt,     // ERR_GALLERY_CORRUPT (a gallery file is damaged: section, offset)
  kGalleryVersion,     // ERR_GALLERY_VERSION (a gallery file of another format version)
  kIo,                 // ERR_IO (the file system refused: errno text)
  kInternal,           // ERR_INTERNAL
};

// A fact about a failure that a caller can act on (JS: error.details[key]): text or a number.
struct ErrorDetail {
  std::string key;
  std::string text;
  double number = 0;
  bool is_number = false;

  static ErrorDetail Text(std::string key, std::string text) { return {std::move(key), std::move(text), 0, false}; }
  static ErrorDetail Number(std::string key, double number) { return {std::move(key), {}, number, true}; }
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message, std::vector<ErrorDetail> details = {})
      : std::runtime_error(message), code_(code), details_(std::move(details)) {}
  ErrorCode code() const noexcept { return code_; }
  const std::vector<ErrorDetail>& details() const noexcept { return details_; }

 private:
  ErrorCode code_;
  std::vector<ErrorDetail> details_;
};

}  // namespace maskface

// Cheap re-checks of what the TypeScript layer already validated: a TS bug becomes an error, not UB.
#define MF_CHECK_ARG(cond, msg)                                                   \
  do {                                                                            \
    if (!(cond)) throw ::maskface::Error(::maskface::ErrorCode::kInvalidArgument, (msg)); \
  } while (0)
