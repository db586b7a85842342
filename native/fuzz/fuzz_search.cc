// libFuzzer target: gallery storage and exact top-k search (core/gallery_store.h,
// core/cpu_search.h). A small store (dim 1..64, blocks of 1..16 rows, so searches span several
// segments) takes an arbitrary sequence of appends, overwrites, kills, reads and searches, with
// arbitrary k, threshold, thread count and float values (NaN, infinities, extremes, denormals).
// A shadow copy checks what is cheap to check: rows() / live() / IsLive / Get / Kill's answer, and
// for each search: counts <= k, results live, distinct and best first (ties: lower row first),
// unused slots empty, scores >= threshold and close to the dot product recomputed in double, and
// no better live row left out. The same searches run through ExactTopKAtLevel at every SIMD level
// this CPU supports. maskface::Error is expected only where the arguments are invalid. A quarter
// of the stores hold half floats: the shadow then holds the values as rounded to halves. Another
// quarter hold int8 codes: they refuse vectors that are not finite, and every search must equal,
// to the bit, that of an f32 twin store given the same changes.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "core/cpu_search.h"
#include "core/gallery_store.h"
#include "core/half.h"
#include "fuzz/fuzz_input.h"

namespace {

using maskface::GalleryStore;
using maskface::SearchParams;
using maskface::SimdLevel;
using maskface::TopKOutput;
using maskface::fuzz::Reader;

constexpr size_t kMaxRows = 96;

struct Shadow {
  size_t dim;
  std::vector<std::vector<float>> rows;
  std::vector<uint8_t> live;
};

std::vector<float> ReadVector(Reader& in, size_t dim) {
  std::vector<float> v(dim);
  // Mostly moderate values (their dot products are checked), sometimes anything.
  const bool wild = in.Int(0, 3) == 0;
  for (float& x : v) x = wild ? in.Float() : static_cast<float>(static_cast<int8_t>(in.Byte())) / 64.0f;
  return v;
}

struct Reference {
  double score;  // the dot product in double
  double bound;  // how far a float kernel may be from it
  bool exact;    // inputs moderate: the float score is finite and within bound
};

Reference Dot(const float* q, const std::vector<float>& row) {
  double sum = 0, magnitude = 0;
  bool moderate = true;
  for (size_t d = 0; d < row.size(); ++d) {
    sum += static_cast<double>(q[d]) * row[d];
    magnitude += std::fabs(static_cast<double>(q[d]) * row[d]);
    moderate = moderate && std::fabs(q[d]) <= 1e6f && std::fabs(row[d]) <= 1e6f;
  }
  // Float accumulation in any order: at most dim * 2^-24 of the magnitude, plus denormal flushes.
  return Reference{sum, magnitude * 1e-5 + 1e-30, moderate};
}

// Checks one search's output against the shadow (the rows a search saw: all of them here).
void CheckResults(const Shadow& shadow, const SearchParams& params, const TopKOutput& out) {
  const size_t k = params.k;
  size_t live_rows = 0;
  for (uint8_t l : shadow.live) live_rows += l != 0;
  for (size_t q = 0; q < params.n_queries; ++q) {
    const float* query = params.queries + q * shadow.dim;
    const size_t count = out.counts[q];
    FUZZ_CHECK(count <= k && count <= live_rows);
    std::vector<uint8_t> returned(shadow.rows.size(), 0);
    for (size_t i = 0; i < k; ++i) {
      const int32_t row = out.rows[q * k + i];
      const float score = out.scores[q * k + i];
      if (i >= count) {
        FUZZ_CHECK(row == -1 && score == -std::numeric_limits<float>::infinity());
        continue;
      }
      FUZZ_CHECK(row >= 0 && static_cast<size_t>(row) < shadow.rows.size());
      FUZZ_CHECK(shadow.live[row] && !returned[row]);
      returned[row] = 1;
      FUZZ_CHECK(score >= params.threshold);  // never NaN
      if (i > 0) {
        const float previous = out.scores[q * k + i - 1];
        FUZZ_CHECK(previous > score || (previous == score && out.rows[q * k + i - 1] < row));
      }
      const Reference ref = Dot(query, shadow.rows[row]);
      if (ref.exact) FUZZ_CHECK(std::fabs(score - ref.score) <= ref.bound);
    }
    // No better live row was left out: with k results, none beats the last; with fewer, none
    // clears the threshold.
    const double cutoff = count == k ? static_cast<double>(out.scores[q * k + k - 1]) : static_cast<double>(params.threshold);
    for (size_t row = 0; row < shadow.rows.size(); ++row) {
      if (!shadow.live[row] || returned[row]) continue;
      const Reference ref = Dot(query, shadow.rows[row]);
      if (ref.exact && std::isfinite(cutoff)) FUZZ_CHECK(!(ref.score > cutoff + 2 * ref.bound));
    }
  }
}

void FuzzSearch(Reader& in, const GalleryStore& store, const GalleryStore* twin, const Shadow& shadow) {
  SearchParams params;
  params.n_queries = in.Int(0, 12);  // 8 or more take the GEMM kernel
  params.k = in.Int(0, 3) == 0 ? in.Int(0, 200) : in.Int(1, 8);
  switch (in.Int(0, 3)) {
    case 0: params.threshold = in.Float(); break;           // anything, NaN and infinities included
    case 1: params.threshold = in.Int(-64, 64) / 64.0f; break;
    default: break;                                         // the default, -1e30
  }
  params.n_threads = in.Int(1, 2);
  std::vector<float> queries;
  for (size_t q = 0; q < params.n_queries; ++q) {
    const std::vector<float> v = ReadVector(in, shadow.dim);
    queries.insert(queries.end(), v.begin(), v.end());
  }
  params.queries = params.n_queries != 0 ? queries.data() : nullptr;
  const bool valid = params.k >= 1 && !std::isnan(params.threshold);
  const size_t slots = std::max<size_t>(1, params.n_queries * params.k);

  // The store, then the same rows as one matrix at every supported SIMD level.
  std::vector<float> matrix;
  for (const std::vector<float>& row : shadow.rows) matrix.insert(matrix.end(), row.begin(), row.end());
  for (int pass = -1; pass <= static_cast<int>(SimdLevel::kAvx512); ++pass) {
    if (pass >= 0 && !maskface::SimdLevelSupported(static_cast<SimdLevel>(pass))) continue;
    std::vector<int32_t> rows(slots, 12345);
    std::vector<float> scores(slots, 12345.0f);
    std::vector<uint32_t> counts(std::max<size_t>(1, params.n_queries), 12345);
    TopKOutput out{rows.data(), scores.data(), counts.data()};
    try {
      if (pass < 0) {
        store.Search(params, out);
      } else {
        maskface::ExactTopKAtLevel(static_cast<SimdLevel>(pass), matrix.empty() ? nullptr : matrix.data(),
                                   shadow.rows.size(), shadow.dim, shadow.live.data(), params, out);
      }
    } catch (const maskface::Error&) {
      FUZZ_CHECK(!valid);
      continue;
    }
    FUZZ_CHECK(valid);
    CheckResults(shadow, params, out);
    if (pass < 0 && twin != nullptr) {
      std::vector<int32_t> twin_rows(slots, 12345);
      std::vector<float> twin_scores(slots, 12345.0f);
      std::vector<uint32_t> twin_counts(counts.size(), 12345);
      twin->Search(params, {twin_rows.data(), twin_scores.data(), twin_counts.data()});
      FUZZ_CHECK(twin_rows == rows && twin_counts == counts);
      FUZZ_CHECK(std::memcmp(twin_scores.data(), scores.data(), slots * sizeof(float)) == 0);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  Shadow shadow;
  shadow.dim = in.Int(1, 64);
  const int kind = in.Int(0, 3);
  const bool f16 = kind == 0, i8 = kind == 1;
  const size_t block_rows = in.Int(1, 16);
  GalleryStore store(shadow.dim, block_rows,
                     f16 ? maskface::VectorStorage::kF16 : i8 ? maskface::VectorStorage::kI8 : maskface::VectorStorage::kF32);
  std::unique_ptr<GalleryStore> twin = i8 ? std::make_unique<GalleryStore>(shadow.dim, block_rows) : nullptr;
  // An int8 store refuses a vector that is not finite (its codes need a finite scale).
  const auto put = [&](size_t row, const std::vector<float>& v) {
    const bool finite = std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
    if (i8 && !finite) {
      FUZZ_EXPECT_ERROR(store.Put(row, v.data()));
      return false;
    }
    store.Put(row, v.data());
    if (twin) twin->Put(row, v.data());
    return true;
  };
  // What the store keeps of a vector.
  const auto stored = [f16](std::vector<float> v) {
    if (f16) for (float& x : v) x = maskface::HalfToFloat(maskface::FloatToHalf(x));
    return v;
  };
  if (in.Bool()) store.Reserve(in.Int(0, 40));
  while (!in.empty()) {
    const size_t rows = shadow.rows.size();
    switch (in.Int(0, 7)) {
      case 0:
      case 1: {  // append
        if (rows >= kMaxRows) break;
        const std::vector<float> v = ReadVector(in, shadow.dim);
        if (!put(rows, v)) break;
        shadow.rows.push_back(stored(v));
        shadow.live.push_back(1);
        break;
      }
      case 2: {  // overwrite (revives a dead row)
        if (rows == 0) break;
        const size_t row = in.Int(0, static_cast<int>(rows) - 1);
        const std::vector<float> v = ReadVector(in, shadow.dim);
        if (!put(row, v)) break;
        shadow.rows[row] = stored(v);
        shadow.live[row] = 1;
        break;
      }
      case 3: {  // kill
        if (rows == 0) break;
        const size_t row = in.Int(0, static_cast<int>(rows) - 1);
        FUZZ_CHECK(store.Kill(row) == (shadow.live[row] != 0));
        if (twin) twin->Kill(row);
        shadow.live[row] = 0;
        break;
      }
      case 4: {  // out of range: rejected
        const size_t row = rows + in.Int(0, 3);
        const std::vector<float> v(shadow.dim, 1.0f);
        if (row > rows) FUZZ_EXPECT_ERROR(store.Put(row, v.data()));
        FUZZ_EXPECT_ERROR(store.Kill(row));
        std::vector<float> got(shadow.dim);
        FUZZ_EXPECT_ERROR(store.Get(row, got.data()));
        FUZZ_CHECK(!store.IsLive(row));
        break;
      }
      case 5: {  // read back
        if (rows == 0) break;
        const size_t row = in.Int(0, static_cast<int>(rows) - 1);
        std::vector<float> got(shadow.dim);
        store.Get(row, got.data());
        // Bit for bit, NaN payloads included (halves keep them quiet, as the shadow's rounding does).
        FUZZ_CHECK(std::memcmp(got.data(), shadow.rows[row].data(), shadow.dim * sizeof(float)) == 0);
        FUZZ_CHECK(store.IsLive(row) == (shadow.live[row] != 0));
        break;
      }
      default:
        FuzzSearch(in, store, twin.get(), shadow);
        break;
    }
    size_t live = 0;
    for (uint8_t l : shadow.live) live += l != 0;
    FUZZ_CHECK(store.rows() == shadow.rows.size() && store.live() == live);
    FUZZ_CHECK(store.capacity() >= store.rows());
  }
  return 0;
}
