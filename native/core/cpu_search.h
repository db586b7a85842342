// Internal search entry points shared by ExactTopK, GalleryStore::Search, tests and benchmarks.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/gallery_store.h"
#include "core/search_kernels.h"

namespace maskface {

// A contiguous run of rows; row i of data has the global index first_row + i.
struct RowSegment {
  const float* data = nullptr;         // n_rows x dim, row-major
  const uint16_t* data_f16 = nullptr;  // or the same in IEEE half floats (set one of the two)
  // An int8 store's codes of the same rows (code_stride bytes each) and their scales; data then
  // holds the exact f32 rows its candidates are scored on.
  const int8_t* codes = nullptr;
  const float* code_scales = nullptr;
  size_t code_stride = 0;
  size_t n_rows = 0;
  size_t first_row = 0;
  const uint8_t* live = nullptr;                    // nonzero = live; unchanged during a search
  const std::atomic<uint8_t>* live_flags = nullptr;  // or flags that may change meanwhile
  // Only rows that pass the score gate are checked, so this is off the hot path.
  bool IsLive(size_t i) const {
    if (live) return live[i] != 0;
    if (live_flags) return live_flags[i].load(std::memory_order_relaxed) != 0;
    return true;
  }
};

// Best SIMD level this CPU and OS support (detected once).
SimdLevel DetectSimdLevel();
const char* SimdLevelName(SimdLevel level);

// The kernels of a SIMD level (it must be supported), and those of the best level here.
const SearchKernels& KernelsFor(SimdLevel level);
inline const SearchKernels& ActiveKernels() { return KernelsFor(DetectSimdLevel()); }
// Whether `level` can run here.
bool SimdLevelSupported(SimdLevel level);

// What an int8 store's codes may get wrong (core/int8_codes.h): the largest ||v - scale * codes||
// and ||scale * codes|| over its rows.
struct Int8Bound {
  float error_norm = 0;
  float code_norm = 0;
};

// Exact top-k over the concatenation of segments (global row order). One top-k state per query
// and worker spans all segments. Validates params; `level` must be supported. Segments with codes
// are searched in two passes when there are few queries (the results are those of their f32
// rows); `bound` must then cover every row.
void SearchSegments(const RowSegment* segments, size_t n_segments, size_t dim,
                    const SearchParams& params, TopKOutput out, SimdLevel level, Int8Bound bound = {});

// ExactTopK with a forced SIMD level (tests and benchmarks compare the paths).
void ExactTopKAtLevel(SimdLevel level, const float* matrix, size_t n_rows, size_t dim,
                      const uint8_t* live, const SearchParams& params, TopKOutput out);

}  // namespace maskface
