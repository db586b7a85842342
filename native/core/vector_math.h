// Small vector helpers shared by inference post-processing and the gallery.
#pragma once
#include <cstddef>

namespace maskface {

// True when every value is finite (no NaN, no +-Inf).
bool AllFinite(const float* v, size_t n);

// Scales v to unit L2 norm in place. Returns false (and leaves v unchanged) when the norm is zero
// or not finite.
bool L2Normalize(float* v, size_t dim);

}  // namespace maskface
