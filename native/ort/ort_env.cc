#include "ort/ort_env.h"

#include <onnxruntime_cxx_api.h>

#include "ort/runtime.h"

namespace maskface::ort {

Ort::Env& GetEnv() {
  CurrentRuntime();
  static Ort::Env* env = [] {
    auto* created = new Ort::Env(ORT_LOGGING_LEVEL_ERROR, "maskface");
    created->DisableTelemetryEvents();
    return created;
  }();
  return *env;
}

}  // namespace maskface::ort
