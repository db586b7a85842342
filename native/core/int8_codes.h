// Int8 codes of an int8 gallery's rows, and 16-bit codes of the queries scanned against them.
//
// A row v is kept as codes c (int8, |c| <= 127) and one scale s = max|v| / 127, so s * c
// approximates v. The first pass of a search scores every row as s_q * s * <c_q, c> in integer
// arithmetic; the candidates are then scored exactly on the row's f32 copy. What the first pass
// can get wrong is bounded from norms alone (Cauchy-Schwarz), so the search can prove that no row
// it skipped belongs in the exact top k (native/core/cpu_search.cc):
//   |<q, v> - s_q s <c_q, c>| <= ||q|| * ||v - s c|| + ||q - s_q c_q|| * ||s c||.
#pragma once
#include <cstddef>
#include <cstdint>

namespace maskface {

// Codes of a row are padded with zeros to a multiple of 64 bytes (a cache line, one zmm load).
inline size_t Int8CodeStride(size_t dim) { return (dim + 63) / 64 * 64; }

struct Int8RowCode {
  float scale = 0;       // v ~ scale * codes
  float error_norm = 0;  // ||v - scale * codes||, rounded up
  float code_norm = 0;   // ||scale * codes||, rounded up
};

// Writes the codes of v (dim floats, finite) into codes[0, stride), zero padded.
Int8RowCode EncodeInt8Row(const float* v, size_t dim, size_t stride, int8_t* codes);

struct QueryCode {
  float scale = 0;       // q ~ scale * codes
  float norm = 0;        // ||q||, rounded up
  float error_norm = 0;  // ||q - scale * codes||, rounded up
};

// Largest query code for rows of `stride` int8 codes: the dot product of a query with any row
// then fits int32 in every partial sum, whatever order a kernel adds its products in.
int32_t MaxInt16QueryCode(size_t stride);

// Writes the 16-bit codes of q (dim floats) into codes[0, stride), zero padded.
QueryCode EncodeInt16Query(const float* q, size_t dim, size_t stride, int16_t* codes);

// Batches use 8-bit query codes (|c| <= 127) stored offset by 128 as uint8 (VNNI multiplies
// unsigned by signed bytes; the offset comes back out as 128 * the row's code sum). Writes them
// into codes[0, stride), padded with 128 (zero).
QueryCode EncodeUint8Query(const float* q, size_t dim, size_t stride, uint8_t* codes);

}  // namespace maskface
