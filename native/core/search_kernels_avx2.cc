// AVX2 + FMA kernels (16 ymm registers). Same structure as search_kernels_avx512.cc, whose
// comments apply; everything under the pragma has internal linkage for the same reason.
#include "core/search_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace maskface {
namespace {

constexpr size_t kGroupWidth = 16;  // two ymm of queries
constexpr size_t kPanelRows = 6;    // 6 rows x 2 ymm = 12 accumulators of the 16 registers

__m256i TailMask(size_t dim) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(dim % 8)), lane);
}

float HorizontalSum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

__m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
__m256 Load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
__m256 LoadTail(const float* p, size_t n, __m256i mask) {
  (void)n;
  return _mm256_maskload_ps(p, mask);
}
__m256 LoadTail(const uint16_t* p, size_t n, __m256i) {
  alignas(16) uint16_t tail[8] = {};
  for (size_t i = 0; i < n; ++i) tail[i] = p[i];
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(tail)));
}

template <int kRows, int kQueries, typename Row>
void ScanTile(const Row* rows, size_t dim, const float* queries, size_t query_count,
              float* scores) {
  __m256 acc[kRows][kQueries];
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < kQueries; ++j) acc[i][j] = _mm256_setzero_ps();
  const size_t body = dim - dim % 8;
  for (size_t d = 0; d < body; d += 8) {
    __m256 q[kQueries];
    for (int j = 0; j < kQueries; ++j) q[j] = _mm256_loadu_ps(queries + j * dim + d);
    for (int i = 0; i < kRows; ++i) {
      const __m256 r = Load8(rows + i * dim + d);
      for (int j = 0; j < kQueries; ++j) acc[i][j] = _mm256_fmadd_ps(r, q[j], acc[i][j]);
    }
  }
  if (body < dim) {
    const __m256i tail = TailMask(dim);
    __m256 q[kQueries];
    for (int j = 0; j < kQueries; ++j) q[j] = _mm256_maskload_ps(queries + j * dim + body, tail);
    for (int i = 0; i < kRows; ++i) {
      const __m256 r = LoadTail(rows + i * dim + body, dim - body, tail);
      for (int j = 0; j < kQueries; ++j) acc[i][j] = _mm256_fmadd_ps(r, q[j], acc[i][j]);
    }
  }
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < kQueries; ++j) scores[i * query_count + j] = HorizontalSum(acc[i][j]);
}

template <int kQueries, typename Row>
void ScanQueries(const Row* rows, size_t n_rows, size_t dim, const float* queries,
                 float* scores) {
  constexpr int kRows = kQueries <= 2 ? 4 : 2;
  size_t i = 0;
  for (; i + kRows <= n_rows; i += kRows)
    ScanTile<kRows, kQueries>(rows + i * dim, dim, queries, kQueries, scores + i * kQueries);
  for (; i < n_rows; ++i)
    ScanTile<1, kQueries>(rows + i * dim, dim, queries, kQueries, scores + i * kQueries);
}

template <typename Row>
void ScanAvx2(const Row* rows, size_t n_rows, size_t dim, const float* queries,
              size_t n_queries, float* scores) {
  switch (n_queries) {
    case 1: return ScanQueries<1>(rows, n_rows, dim, queries, scores);
    case 2: return ScanQueries<2>(rows, n_rows, dim, queries, scores);
    case 3: return ScanQueries<3>(rows, n_rows, dim, queries, scores);
    default: return ScanQueries<4>(rows, n_rows, dim, queries, scores);
  }
}

void ToF32Avx2(const uint16_t* in, size_t n, float* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, Load8(in + i));
  if (i < n) {
    alignas(32) float tail[8];
    _mm256_store_ps(tail, LoadTail(in + i, n - i, __m256i{}));
    for (size_t j = 0; i + j < n; ++j) out[i + j] = tail[j];
  }
}

void ToF16Avx2(const float* in, size_t n, uint16_t* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  if (i < n) {
    alignas(32) float tail[8] = {};
    for (size_t j = 0; i + j < n; ++j) tail[j] = in[i + j];
    alignas(16) uint16_t halves[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(halves), _mm256_cvtps_ph(_mm256_load_ps(tail), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (size_t j = 0; i + j < n; ++j) out[i + j] = halves[j];
  }
}

void ScoreGroupAvx2(const float* packed_group, const float* rows, size_t n_rows, size_t dim,
                    const float* gates, float* scores, uint32_t* masks) {
  const __m256 gate_lo = _mm256_loadu_ps(gates);
  const __m256 gate_hi = _mm256_loadu_ps(gates + 8);
  for (size_t base = 0; base < n_rows; base += kPanelRows) {
    const float* panel = rows + base * dim;
    __m256 acc_lo[kPanelRows], acc_hi[kPanelRows];
    for (size_t i = 0; i < kPanelRows; ++i) acc_lo[i] = acc_hi[i] = _mm256_setzero_ps();
    const float* lanes = packed_group;
    for (size_t d = 0; d < dim; ++d, lanes += kGroupWidth) {
      const __m256 q_lo = _mm256_loadu_ps(lanes);
      const __m256 q_hi = _mm256_loadu_ps(lanes + 8);
      for (size_t i = 0; i < kPanelRows; ++i) {
        const __m256 r = _mm256_broadcast_ss(panel + i * dim + d);
        acc_lo[i] = _mm256_fmadd_ps(q_lo, r, acc_lo[i]);
        acc_hi[i] = _mm256_fmadd_ps(q_hi, r, acc_hi[i]);
      }
    }
    for (size_t i = 0; i < kPanelRows; ++i) {
      float* out = scores + (base + i) * kGroupWidth;
      _mm256_storeu_ps(out, acc_lo[i]);
      _mm256_storeu_ps(out + 8, acc_hi[i]);
      const uint32_t lo = _mm256_movemask_ps(_mm256_cmp_ps(acc_lo[i], gate_lo, _CMP_GT_OQ));
      const uint32_t hi = _mm256_movemask_ps(_mm256_cmp_ps(acc_hi[i], gate_hi, _CMP_GT_OQ));
      masks[base + i] = lo | (hi << 8);
    }
  }
}

// Int8 rows widened to 16 bits, one multiply-add of pairs per 16 codes (see the AVX-512 file).
template <int kQueries>
void ScanI8Rows(const int8_t* rows, size_t n_rows, size_t stride, const int16_t* queries, int32_t* dots) {
  for (size_t i = 0; i < n_rows; ++i) {
    const int8_t* row = rows + i * stride;
    __m256i acc0[kQueries], acc1[kQueries];
    for (int j = 0; j < kQueries; ++j) acc0[j] = acc1[j] = _mm256_setzero_si256();
    for (size_t d = 0; d < stride; d += 32) {
      const __m256i r0 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(row + d)));
      const __m256i r1 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(row + d + 16)));
      for (int j = 0; j < kQueries; ++j) {
        const int16_t* query = queries + j * stride + d;
        acc0[j] = _mm256_add_epi32(acc0[j], _mm256_madd_epi16(r0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(query))));
        acc1[j] = _mm256_add_epi32(acc1[j], _mm256_madd_epi16(r1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(query + 16))));
      }
    }
    for (int j = 0; j < kQueries; ++j) {
      const __m256i sum = _mm256_add_epi32(acc0[j], acc1[j]);
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
      dots[i * kQueries + j] = _mm_cvtsi128_si32(s);
    }
  }
}

void ScanI8Avx2(const int8_t* rows, size_t n_rows, size_t stride, const int16_t* queries,
                size_t n_queries, int32_t* dots) {
  switch (n_queries) {
    case 1: return ScanI8Rows<1>(rows, n_rows, stride, queries, dots);
    case 2: return ScanI8Rows<2>(rows, n_rows, stride, queries, dots);
    case 3: return ScanI8Rows<3>(rows, n_rows, stride, queries, dots);
    default: return ScanI8Rows<4>(rows, n_rows, stride, queries, dots);
  }
}

}  // namespace
}  // namespace maskface

#pragma GCC pop_options

namespace maskface {

const SearchKernels& Avx2Kernels() {
  static const SearchKernels kernels{ScanAvx2<float>, ScoreGroupAvx2, kGroupWidth, kPanelRows,
                                     ScanAvx2<uint16_t>, ToF32Avx2, ToF16Avx2, ScanI8Avx2,
                                     nullptr, 0, 0};
  return kernels;
}

}  // namespace maskface

#else  // not x86-64: DetectSimdLevel() never selects this table

namespace maskface {
const SearchKernels& Avx2Kernels() { return ScalarKernels(); }
}  // namespace maskface

#endif
