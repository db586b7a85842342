// Small vector helpers shared by inference post-processing and the gallery.
#pragma once
#include <cstddef>

namespace maskface {

// True when every value is finite (no NaN, no +-Inf).
bool AllFinite(const float* v, size_t n);

// Scales v to unit L2 norm in place. Returns false (and leaves v unchanged) when the norm is zero
// or not finite.
bool L2Normalize(float* v, size_t dim);

// Flip test-time augmentation: rows holds 2n unit vectors, n faces then their n mirror images.
// Row i (i < n) becomes the unit-length sum of rows i and n + i, so both views weigh the same.
// Returns false when a sum is zero (a face and its mirror image pointing opposite ways).
bool MergeMirroredRows(float* rows, size_t n, size_t dim);

}  // namespace maskface
