// maskface exact top-k (GalleryStore::Search, the path the addon runs) on the shared benchmark
// data. One JSON line per case; see README.md.
#include <algorithm>
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

  double qps;
  if (one_per_call) {
    for (size_t q = 0; q < std::min<size_t>(5, n_queries); ++q) search(q, 1);  // warm-up
    const double start = bench::Seconds();
    for (size_t q = 0; q < n_queries; ++q) search(q, 1);
    qps = static_cast<double>(n_queries) / (bench::Seconds() - start);
  } else {
    search(0, n_queries);  // warm-up
    std::vector<double> runs;
    for (int run = 0; run < 3; ++run) {
      const double start = bench::Seconds();
      search(0, n_queries);
      runs.push_back(static_cast<double>(n_queries) / (bench::Seconds() - start));
    }
    std::sort(runs.begin(), runs.end());
    qps = runs[1];  // median of 3
  }
  std::vector<int64_t> rows64(rows.begin(), rows.end());
  const double recall = bench::RecallAtK(ref, rows64.data(), o.k, std::min(n_queries, ref.kth_score.size()));
  const std::string simd = std::string(",\"simd\":\"") + maskface::SimdLevelName(searcher.level) + "\"";
  bench::PrintResult("maskface", which, o, n_queries, qps, recall, simd);
}

// The bandwidth bound of the single case: reading every row once with the same threads, with
// nothing else to do (integer adds, so the compiler vectorises without reassociating floats).
void RunReadBound(const std::vector<float>& rows, const bench::Options& o) {
  const size_t words = rows.size();
  const auto* data = reinterpret_cast<const uint32_t*>(rows.data());
  std::vector<uint32_t> sinks(static_cast<size_t>(o.threads));
  auto pass = [&] {
    maskface::ParallelFor(sinks.size(), o.threads, [&](size_t t) {
      uint32_t sum = 0;
      for (size_t i = words * t / sinks.size(); i < words * (t + 1) / sinks.size(); ++i) sum += data[i];
      sinks[t] += sum;
    });
  };
  pass();
  constexpr int kPasses = 20;
  const double start = bench::Seconds();
  for (int i = 0; i < kPasses; ++i) pass();
  const double seconds = bench::Seconds() - start;
  const double gb_per_s = kPasses * static_cast<double>(words * sizeof(float)) / seconds / 1e9;
  bench::PrintResult("read-bound", "single", o, kPasses, kPasses / seconds, 1.0,
                     ",\"gb_per_s\":" + std::to_string(gb_per_s) + ",\"sink\":" + std::to_string(sinks[0] & 1));
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Options o = bench::ParseOptions(argc, argv);
  const std::vector<float> rows = bench::GalleryRows(o.n, o.dim);
  const size_t n_queries = std::max(o.batch_queries, o.single_queries);
  const std::vector<float> queries = bench::Queries(n_queries, o.dim);
  const bench::Reference ref = bench::ExactReference(rows.data(), o.n, o.dim, queries.data(),
                                                     std::min(o.recall_queries, n_queries), o.k, o.threads);

  maskface::GalleryStore store(o.dim);
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
