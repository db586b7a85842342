// faiss IndexFlatIP (Debian libfaiss 1.7.3 + OpenBLAS) on the same data as search_bench.cc.
// Single: one query per search() call (faiss scans with its own SIMD loop); batch: all queries
// in one search() call (faiss's BLAS sgemm path). One JSON line per case.
#include <faiss/IndexFlat.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "data.h"

extern "C" void openblas_set_num_threads(int n);
extern "C" char* openblas_get_corename(void);

namespace {

void RunCase(const char* which, faiss::IndexFlatIP& index, const bench::Options& o, const float* queries,
             size_t n_queries, bool one_per_call, const bench::Reference& ref) {
  std::vector<faiss::Index::idx_t> labels(n_queries * o.k);
  std::vector<float> distances(n_queries * o.k);
  auto search = [&](size_t first, size_t count) {
    index.search(static_cast<faiss::Index::idx_t>(count), queries + first * o.dim, static_cast<faiss::Index::idx_t>(o.k),
                 distances.data() + first * o.k, labels.data() + first * o.k);
  };
  const double qps = bench::QueriesPerSecond(search, n_queries, one_per_call);
  std::vector<int64_t> rows(labels.begin(), labels.end());
  const double recall = bench::RecallAtK(ref, rows.data(), o.k, std::min(n_queries, ref.kth_score.size()));
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  const std::string extra = std::string(",\"openblas_core\":\"") + openblas_get_corename() +
                            "\",\"OPENBLAS_CORETYPE\":\"" + (coretype ? coretype : "") + "\"";
  bench::PrintResult("faiss-IndexFlatIP", which, o, n_queries, qps, recall, extra);
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Options o = bench::ParseOptions(argc, argv);
  omp_set_num_threads(o.threads);
  openblas_set_num_threads(o.threads);

  const std::vector<float> rows = bench::GalleryRows(o.n, o.dim);
  const size_t n_queries = std::max(o.batch_queries, o.single_queries);
  const std::vector<float> queries = bench::Queries(n_queries, o.dim);
  const bench::Reference ref = bench::ExactReference(rows.data(), o.n, o.dim, queries.data(),
                                                     std::min(o.recall_queries, n_queries), o.k, o.threads);

  faiss::IndexFlatIP index(static_cast<faiss::Index::idx_t>(o.dim));
  index.add(static_cast<faiss::Index::idx_t>(o.n), rows.data());

  if (o.which_case == "single" || o.which_case == "all")
    RunCase("single", index, o, queries.data(), o.single_queries, true, ref);
  if (o.which_case == "batch" || o.which_case == "all")
    RunCase("batch", index, o, queries.data(), o.batch_queries, false, ref);
  return 0;
}
