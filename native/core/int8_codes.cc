#include "core/int8_codes.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace maskface {
namespace {

// Norms are summed in double and rounded up, so the bounds built from them stay bounds.
float RoundUp(double value) {
  const float f = static_cast<float>(value * (1 + 1e-12));
  return static_cast<double>(f) >= value ? f : std::nextafter(f, std::numeric_limits<float>::infinity());
}

// The largest |v[d]|; infinity when a value is not finite (NaN included).
double MaxAbs(const float* v, size_t dim) {
  double max_abs = 0;
  for (size_t d = 0; d < dim; ++d) {
    if (!std::isfinite(v[d])) return std::numeric_limits<double>::infinity();
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(v[d])));
  }
  return max_abs;
}

// Codes round(v / scale) clamped to +-max_code; returns (||v - scale * codes||^2, ||scale * codes||^2).
// Codes are stored plus `offset` (128 for the uint8 query codes, else 0).
template <typename Code>
void Encode(const float* v, size_t dim, size_t stride, double max_code, double scale, int offset, Code* codes,
            double* error_sq, double* code_sq) {
  *error_sq = 0;
  *code_sq = 0;
  for (size_t d = 0; d < dim; ++d) {
    const double code = scale > 0 ? std::clamp(std::nearbyint(v[d] / scale), -max_code, max_code) : 0.0;
    codes[d] = static_cast<Code>(static_cast<int>(code) + offset);
    const double approx = code * scale;
    *error_sq += (v[d] - approx) * (v[d] - approx);
    *code_sq += approx * approx;
  }
  std::fill(codes + dim, codes + stride, static_cast<Code>(offset));
}

template <typename Code>
QueryCode EncodeQuery(const float* q, size_t dim, size_t stride, int32_t max_code, int offset, Code* codes) {
  MF_CHECK_ARG(stride >= dim, "query codes: stride < dim");
  const double max_abs = MaxAbs(q, dim);
  MF_CHECK_ARG(std::isfinite(max_abs), "query codes: the query has a value that is not finite");
  const float scale = static_cast<float>(max_abs / max_code);
  double error_sq, code_sq;
  Encode(q, dim, stride, static_cast<double>(max_code), static_cast<double>(scale), offset, codes, &error_sq, &code_sq);
  double norm_sq = 0;
  for (size_t d = 0; d < dim; ++d) norm_sq += static_cast<double>(q[d]) * q[d];
  return {scale, RoundUp(std::sqrt(norm_sq)), RoundUp(std::sqrt(error_sq))};
}

}  // namespace

Int8RowCode EncodeInt8Row(const float* v, size_t dim, size_t stride, int8_t* codes) {
  MF_CHECK_ARG(stride >= dim, "EncodeInt8Row: stride < dim");
  const double max_abs = MaxAbs(v, dim);
  MF_CHECK_ARG(std::isfinite(max_abs), "EncodeInt8Row: the vector has a value that is not finite");
  // The scale is rounded to float first: the search multiplies by the float.
  const float scale = static_cast<float>(max_abs / 127);
  double error_sq, code_sq;
  Encode(v, dim, stride, 127.0, static_cast<double>(scale), 0, codes, &error_sq, &code_sq);
  return {scale, RoundUp(std::sqrt(error_sq)), RoundUp(std::sqrt(code_sq))};
}

int32_t MaxInt16QueryCode(size_t stride) {
  const int64_t fits = std::numeric_limits<int32_t>::max() / (127 * static_cast<int64_t>(std::max<size_t>(stride, 1)));
  return static_cast<int32_t>(std::clamp<int64_t>(fits, 1, 16383));
}

QueryCode EncodeInt16Query(const float* q, size_t dim, size_t stride, int16_t* codes) {
  return EncodeQuery(q, dim, stride, MaxInt16QueryCode(stride), 0, codes);
}

QueryCode EncodeUint8Query(const float* q, size_t dim, size_t stride, uint8_t* codes) {
  return EncodeQuery(q, dim, stride, 127, 128, codes);
}

}  // namespace maskface
