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

constexpr size_t kScalarGroupWidthI8 = 8;

// The reference of the VNNI kernel, and the int8 batch path at this level.
void ScoreGroupI8Scalar(const uint8_t* packed_group, const float* query_scales, const int8_t* rows,
                        const int32_t* code_sums, const float* row_scales, size_t n_rows, size_t stride,
                        const float* gates, float* scores, uint32_t* masks) {
  for (size_t i = 0; i < n_rows; ++i) {
    uint32_t mask = 0;
    for (size_t j = 0; j < kScalarGroupWidthI8; ++j) {
      int64_t dot = 0;
      for (size_t d = 0; d < stride; ++d)
        dot += int64_t(packed_group[(d / 4) * kScalarGroupWidthI8 * 4 + j * 4 + d % 4]) * rows[i * stride + d];
      dot -= 128 * int64_t(code_sums[i]);
      const float score = static_cast<float>(static_cast<int32_t>(dot)) * (row_scales[i] * query_scales[j]);
      scores[i * kScalarGroupWidthI8 + j] = score;
      if (score > gates[j]) mask |= 1u << j;
    }
    masks[i] = mask;
  }
}

}  // namespace

const SearchKernels& ScalarKernels() {
  static const SearchKernels kernels{ScanScalar<float>, ScoreGroupScalar, kScalarGroupWidth,
                                     kScalarPanelRows, ScanScalar<uint16_t>, ToF32Scalar, ToF16Scalar, ScanI8Scalar,
                                     ScoreGroupI8Scalar, kScalarGroupWidthI8, kScalarPanelRows};
  return kernels;
}

}  // namespace maskface
