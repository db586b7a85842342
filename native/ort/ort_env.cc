#include "ort/ort_env.h"

#include <onnxruntime_cxx_api.h>

namespace maskface::ort {

Ort::Env& GetEnv() {
  static Ort::Env* env = [] {
    auto* created = new Ort::Env(ORT_LOGGING_LEVEL_ERROR, "maskface");
    created->DisableTelemetryEvents();
    return created;
  }();
  return *env;
}

std::string RuntimeVersion() { return Ort::GetVersionString(); }

}  // namespace maskface::ort
