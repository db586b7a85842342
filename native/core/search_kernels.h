// Per-ISA score kernels behind the CPU search (cpu_search.cc). Each ISA lives in its own
// translation unit compiled under `#pragma GCC target`, so the shipped binary needs no -march and
// picks a table at run time. Kernels only compute scores; selection stays in portable code.
#pragma once
#include <cstddef>
#include <cstdint>

namespace maskface {

// kAvx512 is AVX-512F with BW (16-bit integer lanes for the int8 scan).
enum class SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// Queries handled together by one pass of SearchKernels::scan.
constexpr size_t kMaxScanQueries = 4;

struct SearchKernels {
  // Bandwidth-bound pass for a few queries: scores[i * n_queries + j] = <rows[i], queries[j]>
  // for i < n_rows, j < n_queries <= kMaxScanQueries. Any dim.
  void (*scan)(const float* rows, size_t n_rows, size_t dim, const float* queries,
               size_t n_queries, float* scores);

  // Compute-bound tile for batches: queries packed dim-major in groups of group_width
  // (packed[d * group_width + j] = query j, element d; unused lanes zero). For each row i
  // (n_rows a multiple of panel_rows, rows row-major with stride dim):
  // scores[i * group_width + j] and masks[i] bit j set when that score > gates[j].
  void (*score_group)(const float* packed_group, const float* rows, size_t n_rows, size_t dim,
                      const float* gates, float* scores, uint32_t* masks);
  size_t group_width;  // <= 32 (one mask bit per query)
  size_t panel_rows;   // rows per register tile

  // scan over rows stored as IEEE half floats (f16 galleries), converted in registers.
  void (*scan_f16)(const uint16_t* rows, size_t n_rows, size_t dim, const float* queries,
                   size_t n_queries, float* scores);
  // Conversions of n values between half and single precision (round to nearest even).
  void (*to_f32)(const uint16_t* in, size_t n, float* out);
  void (*to_f16)(const float* in, size_t n, uint16_t* out);

  // First pass of int8 galleries: integer dot products of int8 rows (stride codes each, stride a
  // multiple of 64, 64-byte aligned) with 16-bit query codes (stride each), exact in int32 for
  // codes within MaxInt16QueryCode (core/int8_codes.h): dots[i * n_queries + j], n_queries <=
  // kMaxScanQueries.
  void (*scan_i8)(const int8_t* rows, size_t n_rows, size_t stride, const int16_t* queries,
                  size_t n_queries, int32_t* dots);

  // First pass of int8 galleries for batches; null where the CPU has no VNNI (batches then search
  // the f32 rows directly). Queries packed in groups of group_width_i8 as uint8 codes (code + 128,
  // core/int8_codes.h), four dimensions a lane: packed[(d / 4) * width * 4 + j * 4 + d % 4]. For
  // each row i (n_rows a multiple of panel_rows_i8; stride codes each; code_sums[i] the sum of
  // its codes): scores[i * width + j] = float(<codes_q, codes_i>) * (row_scales[i] *
  // query_scales[j]), and masks[i] bit j set when that score > gates[j].
  void (*score_group_i8)(const uint8_t* packed_group, const float* query_scales, const int8_t* rows,
                         const int32_t* code_sums, const float* row_scales, size_t n_rows, size_t stride,
                         const float* gates, float* scores, uint32_t* masks);
  size_t group_width_i8;
  size_t panel_rows_i8;
};

// The int8 group kernel with AVX-512 VNNI (search_kernels_avx512_vnni.cc); the AVX-512 table
// carries it when the CPU has VNNI.
void ScoreGroupI8Vnni(const uint8_t* packed_group, const float* query_scales, const int8_t* rows,
                      const int32_t* code_sums, const float* row_scales, size_t n_rows, size_t stride,
                      const float* gates, float* scores, uint32_t* masks);
constexpr size_t kVnniGroupWidth = 32;
constexpr size_t kVnniPanelRows = 12;

const SearchKernels& ScalarKernels();
const SearchKernels& Avx2Kernels();
const SearchKernels& Avx512Kernels();

}  // namespace maskface
