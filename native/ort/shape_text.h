// Tensor shapes in error messages: [N,3,112,112], with N for a symbolic dimension.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace maskface::ort {

inline std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ",";
    text += shape[i] < 0 ? "N" : std::to_string(shape[i]);
  }
  return text + "]";
}

}  // namespace maskface::ort
