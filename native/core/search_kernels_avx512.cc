// AVX-512F kernels. Everything below the pragma is compiled for AVX-512 and only runs after
// DetectSimdLevel() saw the CPU (and OS) support it; it has internal linkage so no inline copy
// built for AVX-512 can be picked by the linker for another path.
#include "core/search_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,fma")
// GCC 12's AVX-512 intrinsics read _mm512_undefined_* values and warn about them (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace maskface {
namespace {

constexpr size_t kGroupWidth = 32;  // two zmm of queries
constexpr size_t kPanelRows = 12;   // 12 rows x 2 zmm = 24 accumulators of the 32 registers

__mmask16 TailMask(size_t dim) { return static_cast<__mmask16>((1u << (dim % 16)) - 1); }

float HorizontalSum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));  // add the 256-bit halves
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));  // add the 128-bit quarters
  __m128 sum = _mm512_castps512_ps128(v);
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

__m512 Load16(const float* p) { return _mm512_loadu_ps(p); }
__m512 Load16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
__m512 LoadTail(const float* p, size_t, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, p); }
// Masked 16-bit loads need AVX-512BW; a copy of the few tail values needs nothing.
__m512 LoadTail(const uint16_t* p, size_t n, __mmask16) {
  alignas(32) uint16_t tail[16] = {};
  for (size_t i = 0; i < n; ++i) tail[i] = p[i];
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(tail)));
}

// kRows rows against kQueries queries; one accumulator per (row, query).
template <int kRows, int kQueries, typename Row>
void ScanTile(const Row* rows, size_t dim, const float* queries, size_t query_count,
              float* scores) {
  __m512 acc[kRows][kQueries];
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < kQueries; ++j) acc[i][j] = _mm512_setzero_ps();
  const size_t body = dim - dim % 16;
  for (size_t d = 0; d < body; d += 16) {
    __m512 q[kQueries];
    for (int j = 0; j < kQueries; ++j) q[j] = _mm512_loadu_ps(queries + j * dim + d);
    for (int i = 0; i < kRows; ++i) {
      const __m512 r = Load16(rows + i * dim + d);
      for (int j = 0; j < kQueries; ++j) acc[i][j] = _mm512_fmadd_ps(r, q[j], acc[i][j]);
    }
  }
  if (body < dim) {
    const __mmask16 tail = TailMask(dim);
    __m512 q[kQueries];
    for (int j = 0; j < kQueries; ++j) q[j] = _mm512_maskz_loadu_ps(tail, queries + j * dim + body);
    for (int i = 0; i < kRows; ++i) {
      const __m512 r = LoadTail(rows + i * dim + body, dim - body, tail);
      for (int j = 0; j < kQueries; ++j) acc[i][j] = _mm512_fmadd_ps(r, q[j], acc[i][j]);
    }
  }
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < kQueries; ++j) scores[i * query_count + j] = HorizontalSum(acc[i][j]);
}

// Several rows at once keep independent FMA chains in flight; a leftover row takes the same
// per-row operation order, so a row's score does not depend on its position.
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

// One query over half-float rows: row after row, one sequential stream, four accumulators per
// row (measured here a little faster than interleaving rows as ScanTile does).
void ScanOneF16(const uint16_t* rows, size_t n_rows, size_t dim, const float* query, float* scores) {
  const size_t body = dim - dim % 64;
  for (size_t i = 0; i < n_rows; ++i) {
    const uint16_t* row = rows + i * dim;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
    size_t d = 0;
    for (; d < body; d += 64) {
      acc0 = _mm512_fmadd_ps(Load16(row + d), _mm512_loadu_ps(query + d), acc0);
      acc1 = _mm512_fmadd_ps(Load16(row + d + 16), _mm512_loadu_ps(query + d + 16), acc1);
      acc2 = _mm512_fmadd_ps(Load16(row + d + 32), _mm512_loadu_ps(query + d + 32), acc2);
      acc3 = _mm512_fmadd_ps(Load16(row + d + 48), _mm512_loadu_ps(query + d + 48), acc3);
    }
    for (; d + 16 <= dim; d += 16) acc0 = _mm512_fmadd_ps(Load16(row + d), _mm512_loadu_ps(query + d), acc0);
    if (d < dim) acc1 = _mm512_fmadd_ps(LoadTail(row + d, dim - d, 0), _mm512_maskz_loadu_ps(TailMask(dim), query + d), acc1);
    scores[i] = HorizontalSum(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
  }
}

template <typename Row>
void ScanAvx512(const Row* rows, size_t n_rows, size_t dim, const float* queries,
                size_t n_queries, float* scores) {
  if constexpr (sizeof(Row) == 2) {
    if (n_queries == 1) return ScanOneF16(rows, n_rows, dim, queries, scores);
  }
  switch (n_queries) {
    case 1: return ScanQueries<1>(rows, n_rows, dim, queries, scores);
    case 2: return ScanQueries<2>(rows, n_rows, dim, queries, scores);
    case 3: return ScanQueries<3>(rows, n_rows, dim, queries, scores);
    default: return ScanQueries<4>(rows, n_rows, dim, queries, scores);
  }
}

void ToF32Avx512(const uint16_t* in, size_t n, float* out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, Load16(in + i));
  if (i < n) _mm512_mask_storeu_ps(out + i, TailMask(n - i), LoadTail(in + i, n - i, 0));
}

void ToF16Avx512(const float* in, size_t n, uint16_t* out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), h);
  }
  if (i < n) {
    alignas(32) uint16_t halves[16];
    const __m512 tail = _mm512_maskz_loadu_ps(TailMask(n - i), in + i);
    _mm256_store_si256(reinterpret_cast<__m256i*>(halves), _mm512_cvtps_ph(tail, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (size_t j = 0; i + j < n; ++j) out[i + j] = halves[j];
  }
}

// Int8 rows widened to 16 bits in registers, one multiply-add of pairs per 32 codes
// (vpmaddwd). The pass streams a quarter of the bytes of an f32 scan and is bound by memory,
// not by these instructions, so VNNI's fused form would not change its speed.
template <int kQueries>
void ScanI8Rows(const int8_t* rows, size_t n_rows, size_t stride, const int16_t* queries, int32_t* dots) {
  for (size_t i = 0; i < n_rows; ++i) {
    const int8_t* row = rows + i * stride;
    __m512i acc0[kQueries], acc1[kQueries];
    for (int j = 0; j < kQueries; ++j) acc0[j] = acc1[j] = _mm512_setzero_si512();
    for (size_t d = 0; d < stride; d += 64) {
      const __m512i r0 = _mm512_cvtepi8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(row + d)));
      const __m512i r1 = _mm512_cvtepi8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(row + d + 32)));
      for (int j = 0; j < kQueries; ++j) {
        const int16_t* query = queries + j * stride + d;
        acc0[j] = _mm512_add_epi32(acc0[j], _mm512_madd_epi16(r0, _mm512_loadu_si512(query)));
        acc1[j] = _mm512_add_epi32(acc1[j], _mm512_madd_epi16(r1, _mm512_loadu_si512(query + 32)));
      }
    }
    for (int j = 0; j < kQueries; ++j) dots[i * kQueries + j] = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0[j], acc1[j]));
  }
}

void ScanI8Avx512(const int8_t* rows, size_t n_rows, size_t stride, const int16_t* queries,
                  size_t n_queries, int32_t* dots) {
  switch (n_queries) {
    case 1: return ScanI8Rows<1>(rows, n_rows, stride, queries, dots);
    case 2: return ScanI8Rows<2>(rows, n_rows, stride, queries, dots);
    case 3: return ScanI8Rows<3>(rows, n_rows, stride, queries, dots);
    default: return ScanI8Rows<4>(rows, n_rows, stride, queries, dots);
  }
}

// Register tile of kPanelRows rows x 32 queries: per dimension, two loads of packed queries and
// one broadcast per row feed 24 FMAs.
void ScoreGroupAvx512(const float* packed_group, const float* rows, size_t n_rows, size_t dim,
                      const float* gates, float* scores, uint32_t* masks) {
  const __m512 gate_lo = _mm512_loadu_ps(gates);
  const __m512 gate_hi = _mm512_loadu_ps(gates + 16);
  for (size_t base = 0; base < n_rows; base += kPanelRows) {
    const float* panel = rows + base * dim;
    __m512 acc_lo[kPanelRows], acc_hi[kPanelRows];
    for (size_t i = 0; i < kPanelRows; ++i) acc_lo[i] = acc_hi[i] = _mm512_setzero_ps();
    const float* lanes = packed_group;
    for (size_t d = 0; d < dim; ++d, lanes += kGroupWidth) {
      const __m512 q_lo = _mm512_loadu_ps(lanes);
      const __m512 q_hi = _mm512_loadu_ps(lanes + 16);
      for (size_t i = 0; i < kPanelRows; ++i) {
        const __m512 r = _mm512_set1_ps(panel[i * dim + d]);
        acc_lo[i] = _mm512_fmadd_ps(q_lo, r, acc_lo[i]);
        acc_hi[i] = _mm512_fmadd_ps(q_hi, r, acc_hi[i]);
      }
    }
    for (size_t i = 0; i < kPanelRows; ++i) {
      float* out = scores + (base + i) * kGroupWidth;
      _mm512_storeu_ps(out, acc_lo[i]);
      _mm512_storeu_ps(out + 16, acc_hi[i]);
      const uint32_t lo = _mm512_cmp_ps_mask(acc_lo[i], gate_lo, _CMP_GT_OQ);
      const uint32_t hi = _mm512_cmp_ps_mask(acc_hi[i], gate_hi, _CMP_GT_OQ);
      masks[base + i] = lo | (hi << 16);
    }
  }
}

}  // namespace
}  // namespace maskface

#pragma GCC diagnostic pop
#pragma GCC pop_options

namespace maskface {

const SearchKernels& Avx512Kernels() {
  static const SearchKernels kernels = [] {
    SearchKernels table{ScanAvx512<float>, ScoreGroupAvx512, kGroupWidth, kPanelRows,
                        ScanAvx512<uint16_t>, ToF32Avx512, ToF16Avx512, ScanI8Avx512, nullptr, 0, 0};
    if (__builtin_cpu_supports("avx512vnni")) {
      table.score_group_i8 = ScoreGroupI8Vnni;
      table.group_width_i8 = kVnniGroupWidth;
      table.panel_rows_i8 = kVnniPanelRows;
    }
    return table;
  }();
  return kernels;
}

}  // namespace maskface

#else  // not x86-64: DetectSimdLevel() never selects this table

namespace maskface {
const SearchKernels& Avx512Kernels() { return ScalarKernels(); }
}  // namespace maskface

#endif
