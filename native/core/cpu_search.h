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

// Exact top-k over the concatenation of segments (global row order). One top-k state per query
// and worker spans all segments. Validates params; `level` must be supported.
void SearchSegments(const RowSegment* segments, size_t n_segments, size_t dim,
                    const SearchParams& params, TopKOutput out, SimdLevel level);

// ExactTopK with a forced SIMD level (tests and benchmarks compare the paths).
void ExactTopKAtLevel(SimdLevel level, const float* matrix, size_t n_rows, size_t dim,
                      const uint8_t* live, const SearchParams& params, TopKOutput out);

}  // namespace maskface
