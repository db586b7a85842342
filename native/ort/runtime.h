// Loading libonnxruntime at run time. The addon does not link ONNX Runtime: the TypeScript layer
// picks the library (the CPU build beside the addon, or a GPU-capable build when one is
// installed) and calls LoadRuntime once per process before anything else in native/ort runs.
#pragma once
#include <string>
#include <vector>

namespace maskface::ort {

struct RuntimeInfo {
  std::string path;     // the file that was loaded
  std::string version;  // its GetVersionString(), for example "1.29.0"
  std::vector<std::string> providers;  // execution providers compiled into it (ORT's names)
};

// dlopens `path`, checks that it offers the ONNX Runtime API version these headers need, and
// makes it the process's runtime. A second call with the same path returns the same info; with
// another path it throws Error(kRuntimeLoad): a process has one ONNX Runtime. Thread-safe.
RuntimeInfo LoadRuntime(const std::string& path);

// Throws Error(kRuntimeLoad) when LoadRuntime has not succeeded yet.
const RuntimeInfo& CurrentRuntime();

}  // namespace maskface::ort
