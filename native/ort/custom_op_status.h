// What maskface's ONNX Runtime custom ops (AttentionMask, QLinearPRelu) share: kernel callbacks
// return statuses, so no C++ exception crosses into ONNX Runtime, and errors name the op and node.
#pragma once
#include <onnxruntime_cxx_api.h>

#include <string>

namespace maskface::ort {

inline OrtStatus* InvalidArgumentStatus(const std::string& message) {
  return Ort::Status(message.c_str(), ORT_INVALID_ARGUMENT).release();
}

// "<domain>::<op> node '<name>'" (without the node part when the node has no name).
inline std::string CustomOpNodeLabel(const Ort::ConstKernelInfo& info, const char* domain, const char* op) {
  const std::string name = info.GetNodeName();
  return std::string(domain) + "::" + op + (name.empty() ? "" : " node '" + name + "'");
}

}  // namespace maskface::ort
