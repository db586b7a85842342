#include "core/vector_math.h"

#include <cmath>

namespace maskface {

bool AllFinite(const float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) return false;
  }
  return true;
}

bool L2Normalize(float* v, size_t dim) {
  // A double holds the square of any finite float, and sums of them for any realistic dim, so the
  // sum of squares neither overflows (huge values) nor underflows (tiny ones). Four partial sums
  // break the add dependency chain; a NaN or Inf input makes the sum non-finite.
  double partial[4] = {0.0, 0.0, 0.0, 0.0};
  size_t i = 0;
  for (; i + 4 <= dim; i += 4) {
    for (int k = 0; k < 4; ++k) partial[k] += static_cast<double>(v[i + k]) * v[i + k];
  }
  for (; i < dim; ++i) partial[0] += static_cast<double>(v[i]) * v[i];
  const double sum_of_squares = (partial[0] + partial[1]) + (partial[2] + partial[3]);
  if (!(sum_of_squares > 0.0) || !std::isfinite(sum_of_squares)) return false;

  const double inverse_norm = 1.0 / std::sqrt(sum_of_squares);
  for (i = 0; i < dim; ++i) v[i] = static_cast<float>(v[i] * inverse_norm);
  return true;
}

bool MergeMirroredRows(float* rows, size_t n, size_t dim) {
  for (size_t i = 0; i < n; ++i) {
    float* row = rows + i * dim;
    const float* mirror = rows + (n + i) * dim;
    for (size_t k = 0; k < dim; ++k) row[k] += mirror[k];
    if (!L2Normalize(row, dim)) return false;
  }
  return true;
}

}  // namespace maskface
