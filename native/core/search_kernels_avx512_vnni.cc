// The int8 batch kernel with AVX-512 VNNI: vpdpbusd multiplies 64 unsigned query bytes by 64
// signed row bytes and adds them four by four into 16 int32 lanes, four times the products of an
// f32 FMA. Compiled for VNNI here only; Avx512Kernels() takes it when the CPU has VNNI.
#include "core/search_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstring>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace maskface {

// Register tile of 12 rows x 32 queries: per four dimensions, two loads of packed queries and one
// broadcast of four row bytes per row feed 24 vpdpbusd.
void ScoreGroupI8Vnni(const uint8_t* packed_group, const float* query_scales, const int8_t* rows,
                      const int32_t* code_sums, const float* row_scales, size_t n_rows, size_t stride,
                      const float* gates, float* scores, uint32_t* masks) {
  static_assert(kVnniGroupWidth == 32, "two zmm of int32 lanes");
  const __m512 gate_lo = _mm512_loadu_ps(gates);
  const __m512 gate_hi = _mm512_loadu_ps(gates + 16);
  const __m512 query_scale_lo = _mm512_loadu_ps(query_scales);
  const __m512 query_scale_hi = _mm512_loadu_ps(query_scales + 16);
  for (size_t base = 0; base < n_rows; base += kVnniPanelRows) {
    const int8_t* panel = rows + base * stride;
    __m512i acc_lo[kVnniPanelRows], acc_hi[kVnniPanelRows];
    for (size_t i = 0; i < kVnniPanelRows; ++i) acc_lo[i] = acc_hi[i] = _mm512_setzero_si512();
    const uint8_t* lanes = packed_group;
    for (size_t d = 0; d < stride; d += 4, lanes += 4 * kVnniGroupWidth) {
      const __m512i q_lo = _mm512_loadu_si512(lanes);
      const __m512i q_hi = _mm512_loadu_si512(lanes + 64);
      for (size_t i = 0; i < kVnniPanelRows; ++i) {
        int32_t four;
        std::memcpy(&four, panel + i * stride + d, sizeof four);
        const __m512i r = _mm512_set1_epi32(four);
        acc_lo[i] = _mm512_dpbusd_epi32(acc_lo[i], q_lo, r);
        acc_hi[i] = _mm512_dpbusd_epi32(acc_hi[i], q_hi, r);
      }
    }
    for (size_t i = 0; i < kVnniPanelRows; ++i) {
      // Two's complement wraps in the lanes; the true dot product fits int32 (int8_codes.h).
      const __m512i offset = _mm512_set1_epi32(128 * code_sums[base + i]);
      const __m512 row_scale = _mm512_set1_ps(row_scales[base + i]);
      const __m512 lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc_lo[i], offset)), _mm512_mul_ps(row_scale, query_scale_lo));
      const __m512 hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc_hi[i], offset)), _mm512_mul_ps(row_scale, query_scale_hi));
      float* out = scores + (base + i) * kVnniGroupWidth;
      _mm512_storeu_ps(out, lo);
      _mm512_storeu_ps(out + 16, hi);
      const uint32_t mask_lo = _mm512_cmp_ps_mask(lo, gate_lo, _CMP_GT_OQ);
      const uint32_t mask_hi = _mm512_cmp_ps_mask(hi, gate_hi, _CMP_GT_OQ);
      masks[base + i] = mask_lo | (mask_hi << 16);
    }
  }
}

}  // namespace maskface

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else  // not x86-64: never selected

namespace maskface {
void ScoreGroupI8Vnni(const uint8_t*, const float*, const int8_t*, const int32_t*, const float*, size_t, size_t,
                      const float*, float*, uint32_t*) {}
}  // namespace maskface

#endif
