// maskface exact top-k (GalleryStore::Search, the path the addon runs) on the shared benchmark
// data. One JSON line per case; see README.md.
#include <algorithm>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <vector>

#include "core/cpu_search.h"
#include "core/gallery_store.h"
#include "core/thread_pool.h"
#include "data.h"

namespace {

using maskface::SearchParams;
using maskface::SimdLevel;

struct Searcher {
  const maskface::GalleryStore& store;
  const std::vector<float>& flat_rows;  // for a forced SIMD level (ExactTopKAtLevel)
  bool forced;
  SimdLevel level;

  void Search(const SearchParams& params, maskface::TopKOutput out) const {
    if (forced)
      maskface::ExactTopKAtLevel(level, flat_rows.data(), store.rows(), store.dim(), nullptr, params, out);
    else
      store.Search(params, out);
  }
};

void RunCase(const char* which, const Searcher& searcher, const bench::Options& o, const float* queries,
             size_t n_queries, bool one_per_call, const bench::Reference& ref) {
  std::vector<int32_t> rows(n_queries * o.k);
  std::vector<float> scores(n_queries * o.k);
  std::vector<uint32_t> counts(n_queries);
  SearchParams params;
  params.k = o.k;
  params.n_threads = o.threads;
  auto search = [&](size_t first, size_t count) {
    params.queries = queries + first * o.dim;
    params.n_queries = count;
    searcher.Search(params, {rows.data() + first * o.k, scores.data() + first * o.k, counts.data() + first});
  };

  const double qps = bench::QueriesPerSecond(search, n_queries, one_per_call);
  std::vector<int64_t> rows64(rows.begin(), rows.end());
  const double recall = bench::RecallAtK(ref, rows64.data(), o.k, std::min(n_queries, ref.kth_score.size()));
  const maskface::SearchStats stats = searcher.store.search_stats();
  std::string extra = std::string(",\"simd\":\"") + maskface::SimdLevelName(searcher.level) + "\",\"storage\":\"" + o.storage + "\"";
  if (o.storage == "int8")
    extra += ",\"int8\":{\"queries\":" + std::to_string(stats.int8_queries) + ",\"widened\":" + std::to_string(stats.int8_widened) +
             ",\"exact_scans\":" + std::to_string(stats.int8_exact_scans) + ",\"candidates\":" + std::to_string(stats.int8_candidates) + "}";
  bench::PrintResult("maskface", which, o, n_queries, qps, recall, extra);
}

// Sums a span with 4 independent vector accumulators: nothing but loads, so it runs at the
// memory system's read rate. AVX-512 where the CPU has it (the single-query kernel uses it too).
#if defined(__x86_64__)
__attribute__((target("avx512f"))) float SumAvx512(const float* p, size_t n) {
  __m512 a = _mm512_setzero_ps(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a = _mm512_add_ps(a, _mm512_loadu_ps(p + i));
    b = _mm512_add_ps(b, _mm512_loadu_ps(p + i + 16));
    c = _mm512_add_ps(c, _mm512_loadu_ps(p + i + 32));
    d = _mm512_add_ps(d, _mm512_loadu_ps(p + i + 48));
  }
  float tail = 0;
  for (; i < n; ++i) tail += p[i];
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d))) + tail;
}
#endif

float SumPortable(const float* p, size_t n) {
  float a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
}

// The bandwidth bound of the single case: the fastest of 20 passes that only read every row
// once, split across the same threads as the search. A single query cannot beat it.
void RunReadBound(const std::vector<float>& rows, const bench::Options& o) {
#if defined(__x86_64__)
  const bool avx512 = __builtin_cpu_supports("avx512f");
#else
  const bool avx512 = false;
#endif
  const size_t parts = static_cast<size_t>(o.threads);
  std::vector<float> sinks(parts);
  auto pass = [&] {
    maskface::ParallelFor(parts, o.threads, [&](size_t t) {
      const size_t begin = rows.size() * t / parts;
      const size_t end = rows.size() * (t + 1) / parts;
#if defined(__x86_64__)
      sinks[t] += avx512 ? SumAvx512(rows.data() + begin, end - begin) : SumPortable(rows.data() + begin, end - begin);
#else
      sinks[t] += SumPortable(rows.data() + begin, end - begin);
#endif
    });
  };
  pass();
  constexpr int kPasses = 20;
  double best = 1e30;
  for (int i = 0; i < kPasses; ++i) {
    const double start = bench::Seconds();
    pass();
    best = std::min(best, bench::Seconds() - start);
  }
  const double gb_per_s = static_cast<double>(rows.size() * sizeof(float)) / best / 1e9;
  bench::PrintResult("read-bound", "single", o, kPasses, 1.0 / best, 1.0,
                     ",\"gb_per_s\":" + std::to_string(gb_per_s) + ",\"sink\":" + std::to_string(sinks[0] != 0));
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Options o = bench::ParseOptions(argc, argv);
  const std::vector<float> rows = bench::GalleryRows(o.n, o.dim);
  const size_t n_queries = std::max(o.batch_queries, o.single_queries);
  const std::vector<float> queries = bench::Queries(n_queries, o.dim);
  const bench::Reference ref = bench::ExactReference(rows.data(), o.n, o.dim, queries.data(),
                                                     std::min(o.recall_queries, n_queries), o.k, o.threads);

  maskface::VectorStorage storage = maskface::VectorStorage::kF32;
  if (o.storage == "f16") storage = maskface::VectorStorage::kF16;
  else if (o.storage == "int8") storage = maskface::VectorStorage::kI8;
  else if (o.storage != "f32") {
    std::fprintf(stderr, "--storage must be f32, f16 or int8\n");
    return 2;
  }
  if (storage != maskface::VectorStorage::kF32 && !o.simd.empty()) {
    std::fprintf(stderr, "--simd forces the f32 path; it does not combine with --storage %s\n", o.storage.c_str());
    return 2;
  }
  maskface::GalleryStore store(o.dim, 0, storage);
  store.Reserve(o.n);
  for (size_t r = 0; r < o.n; ++r) store.Put(r, &rows[r * o.dim]);

  Searcher searcher{store, rows, !o.simd.empty(), maskface::DetectSimdLevel()};
  if (o.simd == "scalar") searcher.level = SimdLevel::kScalar;
  else if (o.simd == "avx2") searcher.level = SimdLevel::kAvx2;
  else if (o.simd == "avx512") searcher.level = SimdLevel::kAvx512;

  if (o.which_case == "bound" || o.which_case == "all") RunReadBound(rows, o);
  if (o.which_case == "single" || o.which_case == "all")
    RunCase("single", searcher, o, queries.data(), o.single_queries, true, ref);
  if (o.which_case == "batch" || o.which_case == "all")
    RunCase("batch", searcher, o, queries.data(), o.batch_queries, false, ref);
  return 0;
}
