// Exact top-k search, GalleryStore and ParallelFor against a brute-force double-precision
// reference. Prints each check; exits non-zero when any fails.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu_search.h"
#include "core/half.h"
#include "core/error.h"
#include "core/gallery_store.h"
#include "core/int8_codes.h"
#include "core/thread_pool.h"
#include "tests/test_check.h"

using namespace maskface;

namespace {

constexpr double kScoreTolerance = 1e-5;

using maskface::test::Check;
using maskface::test::g_checks;
using maskface::test::g_failures;

std::vector<float> RandomUnitRows(size_t n, size_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> rows(n * dim);
  for (size_t i = 0; i < n; ++i) {
    double norm = 0;
    for (size_t d = 0; d < dim; ++d) norm += std::pow(rows[i * dim + d] = normal(rng), 2);
    for (size_t d = 0; d < dim; ++d) rows[i * dim + d] = static_cast<float>(rows[i * dim + d] / std::sqrt(norm));
  }
  return rows;
}

double Dot(const float* a, const float* b, size_t dim) {
  double sum = 0;
  for (size_t d = 0; d < dim; ++d) sum += static_cast<double>(a[d]) * b[d];
  return sum;
}

struct Result {
  size_t k = 0;
  std::vector<int32_t> rows;
  std::vector<float> scores;
  std::vector<uint32_t> counts;
  Result(size_t n_queries, size_t k_) : k(k_), rows(n_queries * k_, 7), scores(n_queries * k_, 7.f), counts(n_queries, 99) {}
  TopKOutput out() { return {rows.data(), scores.data(), counts.data()}; }
};

// Checks one search result against the exact double-precision answer, tie-aware: scores match
// the reference within kScoreTolerance position by position, each returned row really has its
// score, rows are live and unique, equal scores come in row order. With exact_rows the data has
// no near-ties except exact duplicates, so the rows must be the reference rows exactly.
void CheckAgainstReference(const std::string& name, const float* matrix, size_t n_rows, size_t dim,
                           const uint8_t* live, const float* queries, size_t n_queries, size_t k,
                           float threshold, Result& got, bool exact_rows = false) {
  bool ok = true;
  std::string first_problem;
  auto fail = [&](const std::string& why) {
    if (ok) first_problem = why;
    ok = false;
  };
  for (size_t q = 0; q < n_queries; ++q) {
    std::vector<std::pair<double, int32_t>> reference;
    for (size_t r = 0; r < n_rows; ++r) {
      if (live && !live[r]) continue;
      const double score = Dot(matrix + r * dim, queries + q * dim, dim);
      if (score >= threshold) reference.push_back({score, static_cast<int32_t>(r)});
    }
    std::sort(reference.begin(), reference.end(), [](auto& a, auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    const size_t expected = std::min(k, reference.size());
    if (got.counts[q] != expected) {
      fail("query " + std::to_string(q) + ": count " + std::to_string(got.counts[q]) + " != " + std::to_string(expected));
      continue;
    }
    std::set<int32_t> seen;
    for (size_t i = 0; i < k; ++i) {
      const int32_t row = got.rows[q * k + i];
      const float score = got.scores[q * k + i];
      if (i >= expected) {
        if (row != -1 || score != -std::numeric_limits<float>::infinity()) fail("unused slot not -1/-inf");
        continue;
      }
      if (row < 0 || static_cast<size_t>(row) >= n_rows) { fail("row out of range"); continue; }
      if (live && !live[row]) fail("dead row returned");
      if (!seen.insert(row).second) fail("duplicate row");
      if (std::fabs(score - reference[i].first) > kScoreTolerance) fail("score differs from reference at rank " + std::to_string(i));
      if (std::fabs(score - Dot(matrix + row * dim, queries + q * dim, dim)) > kScoreTolerance) fail("row does not have its score");
      if (exact_rows && row != reference[i].second) fail("row differs from reference at rank " + std::to_string(i));
      if (i > 0) {
        const float previous = got.scores[q * k + i - 1];
        if (score > previous) fail("scores not descending");
        if (score == previous && row < got.rows[q * k + i - 1]) fail("tie not broken by lower row");
      }
    }
  }
  Check(ok, name + (ok ? "" : ": " + first_problem));
}

void ToF16ForTest(const std::vector<float>& in, std::vector<uint16_t>& out) {
  for (size_t i = 0; i < in.size(); ++i) out[i] = FloatToHalf(in[i]);
}

std::vector<SimdLevel> SupportedLevels() {
  std::vector<SimdLevel> levels;
  for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512})
    if (SimdLevelSupported(level)) levels.push_back(level);
  return levels;
}

template <typename Fn>
bool ThrowsCode(ErrorCode code, Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code() == code;
  }
  return false;
}

void TestExactTopKAllPaths() {
  std::printf("ExactTopK vs reference, every SIMD path (detected: %s)\n", SimdLevelName(DetectSimdLevel()));
  struct Case { size_t n_rows, dim, n_queries, k; float threshold; bool with_dead; };
  const Case cases[] = {
      {1000, 100, 1, 1, -1e30f, false},   {1000, 129, 3, 10, -1e30f, true},
      {777, 512, 5, 10, -1e30f, false},   {999, 17, 8, 25, -1e30f, true},
      {500, 129, 37, 10, 0.05f, false},   {301, 100, 40, 301, -1e30f, true},
      {300, 33, 9, 400, -1e30f, false},   {250, 1, 12, 5, -1e30f, false},
      {2000, 64, 2, 2000, 0.1f, true},    {1200, 100, 70, 1, -1e30f, false},
  };
  for (SimdLevel level : SupportedLevels()) {
    for (const Case& c : cases) {
      const auto rows = RandomUnitRows(c.n_rows, c.dim, 11 + static_cast<uint32_t>(c.n_rows));
      const auto queries = RandomUnitRows(c.n_queries, c.dim, 7);
      std::vector<uint8_t> live(c.n_rows, 1);
      if (c.with_dead) for (size_t r = 0; r < c.n_rows; r += 3) live[r] = 0;
      for (int threads : {1, 2}) {
        SearchParams params;
        params.queries = queries.data();
        params.n_queries = c.n_queries;
        params.k = c.k;
        params.threshold = c.threshold;
        params.n_threads = threads;
        Result got(c.n_queries, c.k);
        ExactTopKAtLevel(level, rows.data(), c.n_rows, c.dim, c.with_dead ? live.data() : nullptr, params, got.out());
        char name[200];
        std::snprintf(name, sizeof(name), "%s n=%zu dim=%zu queries=%zu k=%zu threshold=%g dead=%d threads=%d",
                      SimdLevelName(level), c.n_rows, c.dim, c.n_queries, c.k, c.threshold, c.with_dead, threads);
        CheckAgainstReference(name, rows.data(), c.n_rows, c.dim, c.with_dead ? live.data() : nullptr,
                              queries.data(), c.n_queries, c.k, c.threshold, got);
      }
    }
  }
}

// threshold is inclusive: a row scoring exactly the threshold is kept.
void TestThresholdInclusive() {
  std::printf("threshold equal to a score keeps that row\n");
  const size_t n = 800, dim = 100, k = 10;
  const auto rows = RandomUnitRows(n, dim, 51);
  const auto queries = RandomUnitRows(12, dim, 52);
  for (SimdLevel level : SupportedLevels()) {
    for (size_t n_queries : {1, 12}) {
      SearchParams params;
      params.queries = queries.data();
      params.n_queries = n_queries;
      params.k = k;
      Result all(n_queries, k), kept(n_queries, k);
      ExactTopKAtLevel(level, rows.data(), n, dim, nullptr, params, all.out());
      params.threshold = all.scores[3];  // query 0's fourth best score, as this path computes it
      ExactTopKAtLevel(level, rows.data(), n, dim, nullptr, params, kept.out());
      Check(kept.counts[0] == 4 && kept.rows[3] == all.rows[3],
            std::string(SimdLevelName(level)) + " queries=" + std::to_string(n_queries) + ": 4 rows >= the 4th score");
    }
  }
}

void TestLargeK() {
  std::printf("k = 4096 over 5000 rows, single and batched\n");
  const size_t n = 5000, dim = 96, k = 4096;
  const auto rows = RandomUnitRows(n, dim, 5);
  const auto queries = RandomUnitRows(20, dim, 6);
  for (size_t n_queries : {1, 20}) {
    SearchParams params;
    params.queries = queries.data();
    params.n_queries = n_queries;
    params.k = k;
    params.n_threads = 2;
    Result got(n_queries, k);
    ExactTopK(rows.data(), n, dim, nullptr, params, got.out());
    CheckAgainstReference("k=4096 queries=" + std::to_string(n_queries), rows.data(), n, dim, nullptr,
                          queries.data(), n_queries, k, params.threshold, got);
  }
}

void TestEmpty() {
  std::printf("empty gallery\n");
  const auto queries = RandomUnitRows(9, 16, 1);
  for (size_t n_queries : {1, 9}) {
    SearchParams params;
    params.queries = queries.data();
    params.n_queries = n_queries;
    params.k = 3;
    Result got(n_queries, 3);
    ExactTopK(nullptr, 0, 16, nullptr, params, got.out());
    CheckAgainstReference("ExactTopK with 0 rows, queries=" + std::to_string(n_queries), nullptr, 0, 16,
                          nullptr, queries.data(), n_queries, 3, params.threshold, got);
    GalleryStore store(16);
    Result from_store(n_queries, 3);
    store.Search(params, from_store.out());
    CheckAgainstReference("empty GalleryStore, queries=" + std::to_string(n_queries), nullptr, 0, 16,
                          nullptr, queries.data(), n_queries, 3, params.threshold, from_store);
  }
}

// 40 well separated vectors, each stored 25 times in shuffled rows: every score is an exact tie
// with 24 others, so the lower-row rule alone decides which rows make the cut.
void TestTies() {
  std::printf("duplicated vectors: exact ties broken by lower row\n");
  const size_t distinct = 40, copies = 25, dim = 129, n = distinct * copies;
  const auto base = RandomUnitRows(distinct, dim, 3);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i % distinct;
  std::shuffle(order.begin(), order.end(), std::mt19937(4));
  std::vector<float> rows(n * dim);
  for (size_t i = 0; i < n; ++i) std::memcpy(&rows[i * dim], &base[order[i] * dim], dim * sizeof(float));
  const auto queries = RandomUnitRows(16, dim, 9);
  for (SimdLevel level : SupportedLevels()) {
    for (size_t n_queries : {1, 3, 16}) {
      for (size_t k : {1, 30, 60}) {
        SearchParams params;
        params.queries = queries.data();
        params.n_queries = n_queries;
        params.k = k;
        params.n_threads = 2;
        Result got(n_queries, k);
        ExactTopKAtLevel(level, rows.data(), n, dim, nullptr, params, got.out());
        CheckAgainstReference(std::string(SimdLevelName(level)) + " ties queries=" + std::to_string(n_queries) +
                                  " k=" + std::to_string(k),
                              rows.data(), n, dim, nullptr, queries.data(), n_queries, k, params.threshold, got,
                              /*exact_rows=*/true);
      }
    }
  }
}

// The scan (one query) and GEMM (batch) kernels sum in different orders: the same rows, scores
// within tolerance, rows differing only where the true scores tie.
void TestBatchMatchesSingle() {
  std::printf("batched queries match one-at-a-time queries\n");
  const size_t n = 3000, dim = 100, n_queries = 50, k = 10;
  const auto rows = RandomUnitRows(n, dim, 21);
  const auto queries = RandomUnitRows(n_queries, dim, 22);
  for (SimdLevel level : SupportedLevels()) {
    SearchParams params;
    params.queries = queries.data();
    params.n_queries = n_queries;
    params.k = k;
    params.n_threads = 2;
    Result batch(n_queries, k);
    ExactTopKAtLevel(level, rows.data(), n, dim, nullptr, params, batch.out());
    bool same = true;
    for (size_t q = 0; q < n_queries; ++q) {
      SearchParams one = params;
      one.queries = queries.data() + q * dim;
      one.n_queries = 1;
      Result single(1, k);
      ExactTopKAtLevel(level, rows.data(), n, dim, nullptr, one, single.out());
      same &= single.counts[0] == batch.counts[q];
      for (size_t i = 0; i < k; ++i) {
        const int32_t a = single.rows[i], b = batch.rows[q * k + i];
        same &= std::fabs(single.scores[i] - batch.scores[q * k + i]) <= kScoreTolerance;
        same &= a == b || std::fabs(Dot(&rows[a * dim], one.queries, dim) - Dot(&rows[b * dim], one.queries, dim)) <= kScoreTolerance;
      }
    }
    Check(same, std::string(SimdLevelName(level)) + ": batch of 50 == 50 single searches");
  }
}

void TestGalleryStore() {
  std::printf("GalleryStore: blocks, Put/Kill/IsLive/Get, search across blocks\n");
  const size_t dim = 129, n = 1000;
  GalleryStore store(dim, /*rows_per_block=*/37);
  const auto rows = RandomUnitRows(n, dim, 31);
  store.Reserve(100);
  Check(store.bytes() == 0, "Reserve(100) reserves pages but writes no rows");
  for (size_t r = 0; r < n; ++r) store.Put(r, &rows[r * dim]);
  Check(store.bytes() == n * (dim * sizeof(float) + 1), "bytes() counts the rows written");
  Check(store.rows() == n && store.live() == n, "rows() and live() after 1000 appends");
  std::vector<uint8_t> live(n, 1);
  bool killed = true;
  for (size_t r = 0; r < n; r += 4) {
    killed &= store.Kill(r);
    live[r] = 0;
  }
  Check(killed, "Kill on a live row returns true");
  Check(!store.Kill(0), "Kill on a dead row returns false");
  Check(store.live() == n - 250 && !store.IsLive(4) && store.IsLive(5) && !store.IsLive(n), "IsLive / live() after kills");
  std::vector<float> copy(dim);
  store.Get(777, copy.data());
  Check(std::memcmp(copy.data(), &rows[777 * dim], dim * sizeof(float)) == 0, "Get returns the stored vector");
  // Overwriting a dead row revives it.
  std::vector<float> contiguous = rows;
  store.Put(8, &rows[9 * dim]);
  std::memcpy(&contiguous[8 * dim], &rows[9 * dim], dim * sizeof(float));
  live[8] = 1;
  Check(store.IsLive(8) && store.live() == n - 249, "Put over a dead row revives it");

  const auto queries = RandomUnitRows(40, dim, 32);
  for (size_t n_queries : {1, 2, 40}) {
    for (size_t k : {1, 10, 1000, 1200}) {
      for (int threads : {1, 2}) {
        SearchParams params;
        params.queries = queries.data();
        params.n_queries = n_queries;
        params.k = k;
        params.n_threads = threads;
        Result got(n_queries, k), flat(n_queries, k);
        store.Search(params, got.out());
        const std::string name = "store search queries=" + std::to_string(n_queries) + " k=" + std::to_string(k) +
                                 " threads=" + std::to_string(threads);
        CheckAgainstReference(name, contiguous.data(), n, dim, live.data(), queries.data(), n_queries, k,
                              params.threshold, got);
        ExactTopK(contiguous.data(), n, dim, live.data(), params, flat.out());
        Check(got.rows == flat.rows && got.scores == flat.scores && got.counts == flat.counts,
              name + ": identical to ExactTopK on one contiguous matrix");
      }
    }
  }
}

// Half-float galleries: every level's conversions agree bit for bit with the portable ones, and
// searches over f16 rows (scan and GEMM paths, tails of every length) are exact over the rows as
// stored (the halves widened back to floats).
void TestF16() {
  std::printf("f16 rows: conversions, searches, GalleryStore\n");
  std::vector<uint16_t> all_halves(65536);
  for (size_t h = 0; h < all_halves.size(); ++h) all_halves[h] = static_cast<uint16_t>(h);
  const auto values = RandomUnitRows(1, 4099, 51);
  for (SimdLevel level : SupportedLevels()) {
    const SearchKernels& kernels = KernelsFor(level);
    const std::string name = SimdLevelName(level);
    std::vector<float> widened(all_halves.size());
    kernels.to_f32(all_halves.data(), all_halves.size(), widened.data());
    bool widen_ok = true;
    for (size_t h = 0; h < all_halves.size(); ++h) {
      const float want = HalfToFloat(all_halves[h]);
      widen_ok &= std::memcmp(&want, &widened[h], sizeof want) == 0;
    }
    Check(widen_ok, name + ": to_f32 of all 65,536 halves matches HalfToFloat");
    bool narrow_ok = true;
    for (size_t n : {size_t(1), size_t(7), size_t(15), size_t(16), size_t(17), size_t(4099)}) {
      std::vector<uint16_t> halves(n, 0xFFFF);
      kernels.to_f16(values.data(), n, halves.data());
      for (size_t i = 0; i < n; ++i) narrow_ok &= halves[i] == FloatToHalf(values[i]);
      std::vector<float> back(n + 1, 42.f);
      kernels.to_f32(halves.data(), n, back.data());
      narrow_ok &= back[n] == 42.f;  // nothing written past n
    }
    Check(narrow_ok, name + ": to_f16 matches FloatToHalf at every tail length");

    for (size_t dim : {size_t(7), size_t(129), size_t(512)}) {
      const size_t n = 700;
      const auto rows = RandomUnitRows(n, dim, static_cast<uint32_t>(60 + dim));
      std::vector<uint16_t> halves(n * dim);
      ToF16ForTest(rows, halves);
      std::vector<float> stored(n * dim);
      for (size_t i = 0; i < stored.size(); ++i) stored[i] = HalfToFloat(halves[i]);
      std::vector<uint8_t> live(n, 1);
      for (size_t r = 3; r < n; r += 5) live[r] = 0;
      const auto queries = RandomUnitRows(40, dim, static_cast<uint32_t>(61 + dim));
      for (size_t n_queries : {size_t(1), size_t(3), size_t(40)}) {
        for (int threads : {1, 2}) {
          RowSegment segments[2];
          segments[0].data_f16 = halves.data();
          segments[0].n_rows = 300;
          segments[0].live = live.data();
          segments[1].data_f16 = halves.data() + 300 * dim;
          segments[1].n_rows = n - 300;
          segments[1].first_row = 300;
          segments[1].live = live.data() + 300;
          SearchParams params;
          params.queries = queries.data();
          params.n_queries = n_queries;
          params.k = 10;
          params.n_threads = threads;
          Result got(n_queries, params.k);
          SearchSegments(segments, 2, dim, params, got.out(), level);
          CheckAgainstReference(name + " f16 dim=" + std::to_string(dim) + " queries=" + std::to_string(n_queries) +
                                    " threads=" + std::to_string(threads),
                                stored.data(), n, dim, live.data(), queries.data(), n_queries, params.k, params.threshold, got);
        }
      }
    }
  }

  const size_t dim = 129, n = 500;
  GalleryStore store(dim, /*rows_per_block=*/64, VectorStorage::kF16);
  const auto rows = RandomUnitRows(n, dim, 71);
  for (size_t r = 0; r < n; ++r) store.Put(r, &rows[r * dim]);
  Check(store.bytes() == n * (dim * sizeof(uint16_t) + 1), "f16 store: bytes() counts two bytes a value");
  std::vector<float> copy(dim), stored(n * dim);
  for (size_t r = 0; r < n; ++r) store.Get(r, &stored[r * dim]);
  bool rounded = true;
  for (size_t i = 0; i < stored.size(); ++i) rounded &= stored[i] == HalfToFloat(FloatToHalf(rows[i]));
  Check(rounded, "f16 store: Get returns the values rounded to half floats");
  const auto queries = RandomUnitRows(12, dim, 72);
  SearchParams params;
  params.queries = queries.data();
  params.n_queries = 12;
  params.k = 20;
  params.n_threads = 2;
  Result got(12, 20);
  store.Search(params, got.out());
  CheckAgainstReference("f16 store search", stored.data(), n, dim, nullptr, queries.data(), 12, 20, params.threshold, got);
}

// Int8 galleries: the kernels at every level agree exactly with the portable one; the codes'
// bounds hold; and a search returns exactly what the same rows in f32 return (rows, scores to the
// bit, counts), whether the first pass proves the answer, widens, or falls back to the f32 scan.
void TestInt8() {
  std::printf("int8 rows: kernels, codes, two-pass searches\n");
  std::mt19937 rng(81);
  std::uniform_int_distribution<int> code8(-127, 127);
  for (size_t stride : {size_t(64), size_t(128), size_t(576)}) {
    const int32_t max_query = MaxInt16QueryCode(stride);
    std::uniform_int_distribution<int> code16(-max_query, max_query);
    const size_t n_rows = 37;
    std::vector<int8_t> rows(n_rows * stride + 64);
    int8_t* aligned = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(rows.data()) + 63) / 64 * 64);
    for (size_t i = 0; i < n_rows * stride; ++i) aligned[i] = static_cast<int8_t>(i < stride ? 127 : code8(rng));
    std::vector<int16_t> queries(4 * stride);
    for (size_t i = 0; i < queries.size(); ++i) queries[i] = static_cast<int16_t>(i < stride ? max_query : code16(rng));
    for (size_t n_queries = 1; n_queries <= kMaxScanQueries; ++n_queries) {
      std::vector<int32_t> want(n_rows * n_queries);
      ScalarKernels().scan_i8(aligned, n_rows, stride, queries.data(), n_queries, want.data());
      int64_t extreme = 0;
      for (size_t d = 0; d < stride; ++d) extreme += 127 * int64_t(max_query);
      const bool reference_ok = want[0] == extreme;
      for (SimdLevel level : SupportedLevels()) {
        std::vector<int32_t> got(n_rows * n_queries, 7);
        KernelsFor(level).scan_i8(aligned, n_rows, stride, queries.data(), n_queries, got.data());
        Check(reference_ok && got == want, std::string(SimdLevelName(level)) + ": scan_i8 stride=" + std::to_string(stride) +
                                               " queries=" + std::to_string(n_queries) + " equals the portable sums (largest codes included)");
      }
    }
  }

  // The batch kernels against the portable one (another group width, so repacked), extreme codes
  // in the first row and lane.
  for (SimdLevel level : SupportedLevels()) {
    const SearchKernels& kernels = KernelsFor(level);
    if (kernels.score_group_i8 == nullptr || level == SimdLevel::kScalar) continue;
    const size_t stride = 576, width = kernels.group_width_i8, panel = kernels.panel_rows_i8, n_rows = 2 * panel;
    const size_t ref_width = ScalarKernels().group_width_i8;
    std::uniform_int_distribution<int> byte(0, 255);
    std::vector<uint8_t> query_codes(width * stride);
    for (size_t i = 0; i < query_codes.size(); ++i) query_codes[i] = static_cast<uint8_t>(i < stride ? 255 : byte(rng));
    std::vector<int8_t> rows(n_rows * stride);
    std::vector<int32_t> sums(n_rows, 0);
    std::vector<float> row_scales(n_rows), query_scales(width), gates(width, 0.f);
    for (size_t i = 0; i < rows.size(); ++i) sums[i / stride] += rows[i] = static_cast<int8_t>(i < stride ? 127 : code8(rng));
    for (size_t i = 0; i < n_rows; ++i) row_scales[i] = 0.001f * static_cast<float>(i + 1);
    for (size_t j = 0; j < width; ++j) query_scales[j] = 0.002f * static_cast<float>(j + 1);
    auto pack = [&](size_t w, size_t first) {
      std::vector<uint8_t> packed(w * stride, 128);
      for (size_t j = 0; j < w && first + j < width; ++j)
        for (size_t d = 0; d < stride; ++d) packed[(d / 4) * w * 4 + j * 4 + d % 4] = query_codes[(first + j) * stride + d];
      return packed;
    };
    std::vector<float> got(n_rows * width), want(n_rows * ref_width);
    std::vector<uint32_t> got_masks(n_rows), want_masks(n_rows);
    const auto packed = pack(width, 0);
    kernels.score_group_i8(packed.data(), query_scales.data(), rows.data(), sums.data(), row_scales.data(), n_rows, stride,
                           gates.data(), got.data(), got_masks.data());
    bool same = true;
    for (size_t first = 0; first < width; first += ref_width) {
      const auto ref_packed = pack(ref_width, first);
      ScalarKernels().score_group_i8(ref_packed.data(), query_scales.data() + first, rows.data(), sums.data(), row_scales.data(),
                                     n_rows, stride, gates.data(), want.data(), want_masks.data());
      for (size_t i = 0; i < n_rows; ++i)
        for (size_t j = 0; j < ref_width; ++j) {
          same &= std::memcmp(&got[i * width + first + j], &want[i * ref_width + j], sizeof(float)) == 0;
          same &= ((got_masks[i] >> (first + j)) & 1u) == ((want_masks[i] >> j) & 1u);
        }
    }
    Check(same, std::string(SimdLevelName(level)) + ": score_group_i8 equals the portable kernel, scores to the bit and masks");
  }

  {
    const auto v = RandomUnitRows(1, 129, 82);
    std::vector<int8_t> codes(192, 99);
    const Int8RowCode code = EncodeInt8Row(v.data(), 129, 192, codes.data());
    double error = 0, norm = 0;
    bool in_range = true;
    for (size_t d = 0; d < 192; ++d) {
      const double approx = double(codes[d]) * code.scale;
      in_range &= codes[d] != -128 && (d < 129 || codes[d] == 0);
      if (d < 129) error += (v[d] - approx) * (v[d] - approx);
      norm += approx * approx;
    }
    Check(in_range, "EncodeInt8Row: codes within +-127, padding zero");
    Check(code.error_norm >= std::sqrt(error) && code.error_norm < std::sqrt(error) * 1.001 + 1e-9, "EncodeInt8Row: error norm is a tight upper bound");
    Check(code.code_norm >= std::sqrt(norm), "EncodeInt8Row: code norm is an upper bound");
    std::vector<float> zero(129, 0.f);
    Check(EncodeInt8Row(zero.data(), 129, 192, codes.data()).scale == 0 && codes[5] == 0, "EncodeInt8Row: a zero vector has scale 0");
    std::vector<float> bad = v;
    bad[3] = std::numeric_limits<float>::quiet_NaN();
    Check(ThrowsCode(ErrorCode::kInvalidArgument, [&] { EncodeInt8Row(bad.data(), 129, 192, codes.data()); }), "EncodeInt8Row: NaN refused");
  }

  // Rows: random unit vectors, a cluster of near-duplicates, and exact duplicates, so that some
  // queries are proven at once, some need the wider pass, and some the f32 scan.
  for (size_t dim : {size_t(7), size_t(129), size_t(512)}) {
    const size_t n = 3000;
    auto rows = RandomUnitRows(n, dim, static_cast<uint32_t>(90 + dim));
    const auto noise = RandomUnitRows(n, dim, static_cast<uint32_t>(91 + dim));
    for (size_t r = 1000; r < 1600; ++r) {  // near-duplicates of row 1000
      double norm = 0;
      for (size_t d = 0; d < dim; ++d) norm += std::pow(rows[r * dim + d] = rows[1000 * dim + d] + 0.02f * noise[r * dim + d], 2);
      for (size_t d = 0; d < dim; ++d) rows[r * dim + d] = static_cast<float>(rows[r * dim + d] / std::sqrt(norm));
    }
    for (size_t r = 1700; r < 2950; ++r) std::memcpy(&rows[r * dim], &rows[1700 * dim], dim * sizeof(float));
    GalleryStore f32(dim, /*rows_per_block=*/700, VectorStorage::kF32);
    GalleryStore i8(dim, /*rows_per_block=*/700, VectorStorage::kI8);
    for (size_t r = 0; r < n; ++r) (f32.Put(r, &rows[r * dim]), i8.Put(r, &rows[r * dim]));
    for (size_t r = 5; r < n; r += 7) (f32.Kill(r), i8.Kill(r));
    Check(i8.bytes() == n * (dim * 4 + Int8CodeStride(dim) + 4 + 1), "i8 store (dim " + std::to_string(dim) + "): bytes() counts f32 copy, codes, scale and flag");
    std::vector<float> back(dim);
    i8.Get(17, back.data());
    Check(std::memcmp(back.data(), &rows[17 * dim], dim * sizeof(float)) == 0, "i8 store: Get returns the f32 vector as given");

    auto queries = RandomUnitRows(12, dim, static_cast<uint32_t>(92 + dim));
    std::memcpy(&queries[1 * dim], &rows[1000 * dim], dim * sizeof(float));  // into the near-duplicates
    std::memcpy(&queries[2 * dim], &rows[1700 * dim], dim * sizeof(float));  // onto 1,250 exact duplicates
    std::memcpy(&queries[3 * dim], &rows[42 * dim], dim * sizeof(float));    // one row, itself
    SearchStats totals;
    bool same = true;
    std::string first_difference;
    for (size_t n_queries : {size_t(1), size_t(3), size_t(4), size_t(7), size_t(12)}) {
      for (size_t k : {size_t(1), size_t(10), size_t(100)}) {
        for (float threshold : {-1e30f, 0.05f, 0.9f}) {
          for (int threads : {1, 2}) {
            for (size_t first : {size_t(0), size_t(1)}) {
              const size_t count = std::min(n_queries, 12 - first);
              SearchParams params;
              params.queries = queries.data() + first * dim;
              params.n_queries = count;
              params.k = k;
              params.threshold = threshold;
              params.n_threads = threads;
              params.stats = &totals;
              Result want(count, k), got(count, k);
              f32.Search(params, want.out());
              i8.Search(params, got.out());
              const bool equal = want.rows == got.rows && want.counts == got.counts &&
                                 std::memcmp(want.scores.data(), got.scores.data(), want.scores.size() * sizeof(float)) == 0;
              if (!equal && same)
                first_difference = " (first: queries " + std::to_string(count) + " from " + std::to_string(first) + ", k " +
                                   std::to_string(k) + ", threshold " + std::to_string(threshold) + ")";
              same &= equal;
            }
          }
        }
      }
    }
    Check(same, "i8 store dim=" + std::to_string(dim) + ": every search equals the f32 store's, to the bit" + first_difference);
    Check(totals.int8_queries > 0 && totals.int8_widened > 0 && totals.int8_exact_scans > 0,
          "i8 store dim=" + std::to_string(dim) + ": the cases reach all three outcomes (" + std::to_string(totals.int8_queries) +
              " queries, " + std::to_string(totals.int8_widened) + " widened, " + std::to_string(totals.int8_exact_scans) + " scanned in f32)");
    // The common case: queries of random directions are answered from the first pass.
    SearchStats plain;
    SearchParams params;
    params.queries = queries.data() + 4 * dim;
    params.n_queries = 4;
    params.k = 10;
    params.stats = &plain;
    Result got(4, 10);
    i8.Search(params, got.out());
    if (dim >= 129)
      Check(plain.int8_widened == 0 && plain.int8_exact_scans == 0 && plain.int8_candidates < 4 * 100,
            "i8 store dim=" + std::to_string(dim) + ": random queries are proven by the first pass (" + std::to_string(plain.int8_candidates) + " candidates)");
    // Queries whose scores near float's range go to the f32 search (the first pass computes in float).
    std::vector<float> huge(queries.begin() + 4 * dim, queries.begin() + 5 * dim);
    for (float& x : huge) x *= 1e33f;
    SearchStats huge_stats;
    params.queries = huge.data();
    params.n_queries = 1;
    params.stats = &huge_stats;
    Result huge_want(1, 10), huge_got(1, 10);
    f32.Search(params, huge_want.out());
    i8.Search(params, huge_got.out());
    Check(huge_stats.int8_exact_scans == 1 && huge_want.rows == huge_got.rows &&
              std::memcmp(huge_want.scores.data(), huge_got.scores.data(), 10 * sizeof(float)) == 0,
          "i8 store dim=" + std::to_string(dim) + ": a query of values near 1e33 is searched in f32, with the f32 answer");
    // A gallery smaller than the candidates: every row is scored exactly, no second pass.
    GalleryStore tiny(dim, 0, VectorStorage::kI8);
    for (size_t r = 0; r < 3; ++r) tiny.Put(r, &rows[r * dim]);
    SearchStats tiny_stats;
    params.queries = queries.data();
    params.stats = &tiny_stats;
    Result tiny_got(1, 10);
    tiny.Search(params, tiny_got.out());
    Check(tiny_got.counts[0] == 3 && tiny_stats.int8_widened == 0 && tiny_stats.int8_exact_scans == 0,
          "i8 store dim=" + std::to_string(dim) + ": 3 rows are answered by the first pass");
    const SearchStats store_totals = i8.search_stats();
    Check(store_totals.int8_queries >= totals.int8_queries, "i8 store: search_stats() accumulates");
  }

  // Every SIMD level, through SearchSegments with codes built by hand.
  const size_t dim = 200, n = 1500, stride = Int8CodeStride(dim);
  const auto rows = RandomUnitRows(n, dim, 95);
  std::vector<int8_t> storage(n * stride + 64);
  int8_t* codes = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(storage.data()) + 63) / 64 * 64);
  std::vector<float> scales(n);
  Int8Bound bound;
  for (size_t r = 0; r < n; ++r) {
    const Int8RowCode code = EncodeInt8Row(&rows[r * dim], dim, stride, codes + r * stride);
    scales[r] = code.scale;
    bound.error_norm = std::max(bound.error_norm, code.error_norm);
    bound.code_norm = std::max(bound.code_norm, code.code_norm);
  }
  const auto queries = RandomUnitRows(40, dim, 96);
  for (SimdLevel level : SupportedLevels()) {
    for (size_t n_queries : {size_t(5), size_t(40)}) {
      RowSegment coded[2], plain[2];
      for (int s = 0; s < 2; ++s) {
        const size_t first = s == 0 ? 0 : 800;
        plain[s].data = &rows[first * dim];
        plain[s].first_row = first;
        plain[s].n_rows = s == 0 ? 800 : n - 800;
        coded[s] = plain[s];
        coded[s].codes = codes + first * stride;
        coded[s].code_scales = &scales[first];
        coded[s].code_stride = stride;
      }
      SearchParams params;
      params.queries = queries.data();
      params.n_queries = n_queries;
      params.k = 25;
      params.n_threads = 2;
      Result want(n_queries, 25), got(n_queries, 25);
      SearchSegments(plain, 2, dim, params, want.out(), level);
      SearchSegments(coded, 2, dim, params, got.out(), level, bound);
      Check(want.rows == got.rows && std::memcmp(want.scores.data(), got.scores.data(), want.scores.size() * sizeof(float)) == 0,
            std::string(SimdLevelName(level)) + ": int8 segments answer " + std::to_string(n_queries) + " queries as their f32 rows do");
    }
  }
}

void TestErrors() {
  std::printf("argument errors\n");
  GalleryStore store(8);
  const std::vector<float> vec(8, 0.f);
  store.Put(0, vec.data());
  Check(ThrowsCode(ErrorCode::kInvalidArgument, [&] { store.Put(2, vec.data()); }), "Put(row > rows()) throws ERR_INVALID_ARGUMENT");
  Check(ThrowsCode(ErrorCode::kInvalidArgument, [&] { store.Put(1, nullptr); }), "Put(null) throws");
  Check(ThrowsCode(ErrorCode::kInvalidArgument, [&] { store.Kill(1); }), "Kill(row >= rows()) throws");
  std::vector<float> out(8);
  Check(ThrowsCode(ErrorCode::kInvalidArgument, [&] { store.Get(1, out.data()); }), "Get(row >= rows()) throws");
  Check(ThrowsCode(ErrorCode::kInvalidArgument, [] { GalleryStore bad(0); }), "dim 0 throws");
  Result result(1, 1);
  SearchParams params;
  params.queries = vec.data();
  params.n_queries = 1;
  params.k = 0;
  Check(ThrowsCode(ErrorCode::kInvalidArgument, [&] { store.Search(params, result.out()); }), "k == 0 throws");
  params.k = 1;
  params.queries = nullptr;
  Check(ThrowsCode(ErrorCode::kInvalidArgument, [&] { store.Search(params, result.out()); }), "null queries throws");
  params.queries = vec.data();
  Check(ThrowsCode(ErrorCode::kInvalidArgument, [&] { store.Search(params, {nullptr, result.scores.data(), result.counts.data()}); }),
        "null output throws");
  params.threshold = std::nanf("");
  Check(ThrowsCode(ErrorCode::kInvalidArgument, [&] { store.Search(params, result.out()); }), "NaN threshold throws");
}

// A writer appends (and kills) rows while the main thread searches: no crash, results only name
// rows that existed, each with the score of its stored vector.
void TestConcurrentAppend() {
  std::printf("append and kill during searches\n");
  const size_t dim = 64, initial = 500, total = 20000, k = 20;
  const auto rows = RandomUnitRows(total, dim, 41);
  GalleryStore store(dim, /*rows_per_block=*/256);
  for (size_t r = 0; r < initial; ++r) store.Put(r, &rows[r * dim]);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (size_t r = initial; r < total; ++r) {
      store.Put(r, &rows[r * dim]);
      if (r % 7 == 0) store.Kill(r - 3);
    }
    done = true;
  });
  const auto queries = RandomUnitRows(16, dim, 42);
  size_t searches = 0;
  bool ok = true;
  while (!done || searches < 20) {
    SearchParams params;
    params.queries = queries.data();
    params.n_queries = searches % 2 ? 16 : 1;
    params.k = k;
    params.n_threads = 2;
    Result got(params.n_queries, k);
    const size_t before = store.rows();
    store.Search(params, got.out());
    const size_t after = store.rows();
    for (size_t q = 0; q < params.n_queries; ++q) {
      ok &= got.counts[q] == std::min(k, before);
      for (size_t i = 0; i < got.counts[q]; ++i) {
        const int32_t row = got.rows[q * k + i];
        ok &= row >= 0 && static_cast<size_t>(row) < after;
        if (row >= 0 && static_cast<size_t>(row) < total)
          ok &= std::fabs(got.scores[q * k + i] - Dot(&rows[row * dim], &queries[q * dim], dim)) <= kScoreTolerance;
      }
    }
    ++searches;
  }
  writer.join();
  Check(ok, "concurrent appends: " + std::to_string(searches) + " searches saw only published rows with their scores");
}

void TestParallelFor() {
  std::printf("ParallelFor\n");
  std::vector<std::atomic<int>> hits(1000);
  ParallelFor(hits.size(), 4, [&](size_t i) { hits[i]++; });
  Check(std::all_of(hits.begin(), hits.end(), [](auto& h) { return h == 1; }), "every task runs exactly once");

  const auto caller = std::this_thread::get_id();
  bool inline_only = true;
  ParallelFor(10, 1, [&](size_t) { inline_only &= std::this_thread::get_id() == caller; });
  Check(inline_only, "n_threads = 1 runs on the calling thread");

  bool rethrown = false;
  try {
    ParallelFor(100, 2, [](size_t i) { if (i == 37) throw std::runtime_error("task 37"); });
  } catch (const std::runtime_error& e) {
    rethrown = std::string(e.what()) == "task 37";
  }
  Check(rethrown, "an exception in a task reaches the caller");

  // Several callers at once, each also nesting a ParallelFor inside its tasks.
  std::atomic<size_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int round = 0; round < 200; ++round)
        ParallelFor(8, 2, [&](size_t) { ParallelFor(4, 2, [&](size_t) { total++; }); });
    });
  for (auto& t : callers) t.join();
  Check(total == 4u * 200 * 8 * 4, "concurrent and nested callers finish without deadlock");
  Check(HardwareThreads() >= 1, "HardwareThreads() >= 1");
}

}  // namespace

int main() {
  TestParallelFor();
  TestExactTopKAllPaths();
  TestThresholdInclusive();
  TestLargeK();
  TestEmpty();
  TestTies();
  TestBatchMatchesSingle();
  TestGalleryStore();
  TestF16();
  TestInt8();
  TestErrors();
  TestConcurrentAppend();
  std::printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
