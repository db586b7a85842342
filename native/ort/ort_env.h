// The process-wide ONNX Runtime environment.
#pragma once
#include <string>

namespace Ort {
struct Env;
}

namespace maskface::ort {

// One Ort::Env per process, created on first use with telemetry disabled. It is intentionally
// never destroyed: sessions released from cleanup hooks or finalisers at exit must still find it.
Ort::Env& GetEnv();

// The ONNX Runtime version string of the library actually loaded (for example "1.29.0").
std::string RuntimeVersion();

}  // namespace maskface::ort
