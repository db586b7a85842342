// Portable kernels: the reference for the SIMD ones and the path for CPUs without AVX2.
#include "core/search_kernels.h"

#include "core/half.h"

namespace maskface {
namespace {

constexpr size_t kScalarGroupWidth = 8;
constexpr size_t kScalarPanelRows = 4;

inline float Value(float v) { return v; }
inline float Value(uint16_t h) { return HalfToFloat(h); }

template <typename Row>
void ScanScalar(const Row* rows, size_t n_rows, size_t dim, const float* queries,
                size_t n_queries, float* scores) {
  for (size_t i = 0; i < n_rows; ++i) {
    const Row* row = rows + i * dim;
    for (size_t j = 0; j < n_queries; ++j) {
      const float* query = queries + j * dim;
      float sum = 0.f;
      for (size_t d = 0; d < dim; ++d) sum += Value(row[d]) * query[d];
      scores[i * n_queries + j] = sum;
    }
  }
}

void ToF32Scalar(const uint16_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

void ToF16Scalar(const float* in, size_t n, uint16_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = FloatToHalf(in[i]);
}

void ScoreGroupScalar(const float* packed_group, const float* rows, size_t n_rows, size_t dim,
                      const float* gates, float* scores, uint32_t* masks) {
  for (size_t base = 0; base < n_rows; base += kScalarPanelRows) {
    float acc[kScalarPanelRows][kScalarGroupWidth] = {};
    for (size_t d = 0; d < dim; ++d) {
      const float* lanes = packed_group + d * kScalarGroupWidth;
      for (size_t i = 0; i < kScalarPanelRows; ++i) {
        const float value = rows[(base + i) * dim + d];
        for (size_t j = 0; j < kScalarGroupWidth; ++j) acc[i][j] += lanes[j] * value;
      }
    }
    for (size_t i = 0; i < kScalarPanelRows; ++i) {
      uint32_t mask = 0;
      for (size_t j = 0; j < kScalarGroupWidth; ++j) {
        scores[(base + i) * kScalarGroupWidth + j] = acc[i][j];
        if (acc[i][j] > gates[j]) mask |= 1u << j;
      }
      masks[base + i] = mask;
    }
  }
}

void ScanI8Scalar(const int8_t* rows, size_t n_rows, size_t stride, const int16_t* queries,
                  size_t n_queries, int32_t* dots) {
  for (size_t i = 0; i < n_rows; ++i) {
    const int8_t* row = rows + i * stride;
    for (size_t j = 0; j < n_queries; ++j) {
      const int16_t* query = queries + j * stride;
      int32_t sum = 0;
      for (size_t d = 0; d < stride; ++d) sum += static_cast<int32_t>(row[d]) * query[d];
      dots[i * n_queries + j] = sum;
    }
  }
}

}  // namespace

const SearchKernels& ScalarKernels() {
  static const SearchKernels kernels{ScanScalar<float>, ScoreGroupScalar, kScalarGroupWidth,
                                     kScalarPanelRows, ScanScalar<uint16_t>, ToF32Scalar, ToF16Scalar, ScanI8Scalar};
  return kernels;
}

}  // namespace maskface
