// The process-wide ONNX Runtime environment.
#pragma once
namespace Ort {
struct Env;
}

namespace maskface::ort {

// One Ort::Env per process, created on first use with telemetry disabled. It is intentionally
// never destroyed: sessions released from cleanup hooks or finalisers at exit must still find it.
// Throws Error(kRuntimeLoad) before LoadRuntime (ort/runtime.h) has succeeded.
Ort::Env& GetEnv();

}  // namespace maskface::ort
