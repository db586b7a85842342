// Benchmark data shared by search_bench.cc and faiss_bench.cc, so both see identical vectors:
// clustered like face embeddings (kClusters identities, each row = its centre + noise, L2
// normalised), queries drawn from the same distribution, plus the exact answer for recall.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bench {

constexpr size_t kClusters = 1000;
constexpr float kNoise = 0.8f;  // noise norm relative to the unit centre: cosine to centre ~0.78
constexpr uint64_t kSeed = 20240611;

// splitmix64 + Box-Muller: the same numbers on every compiler and standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }
  float Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double radius = std::sqrt(-2.0 * std::log(Uniform()));
    const double angle = 6.283185307179586 * Uniform();
    spare_ = static_cast<float>(radius * std::sin(angle));
    has_spare_ = true;
    return static_cast<float>(radius * std::cos(angle));
  }

 private:
  uint64_t state_;
  bool has_spare_ = false;
  float spare_ = 0;
};

inline void Normalize(float* v, size_t dim) {
  double norm = 0;
  for (size_t d = 0; d < dim; ++d) norm += static_cast<double>(v[d]) * v[d];
  const float scale = static_cast<float>(1.0 / std::sqrt(norm));
  for (size_t d = 0; d < dim; ++d) v[d] *= scale;
}

inline std::vector<float> Centres(size_t dim) {
  Rng rng(kSeed);
  std::vector<float> centres(kClusters * dim);
  for (float& x : centres) x = rng.Normal();
  for (size_t c = 0; c < kClusters; ++c) Normalize(&centres[c * dim], dim);
  return centres;
}

// n unit vectors around the shared centres; `stream` separates gallery rows from queries.
inline std::vector<float> ClusteredVectors(size_t n, size_t dim, uint64_t stream) {
  const std::vector<float> centres = Centres(dim);
  Rng rng(kSeed ^ (stream * 0xD1B54A32D192ED03ull));
  std::vector<float> out(n * dim);
  const float noise = kNoise / std::sqrt(static_cast<float>(dim));
  for (size_t i = 0; i < n; ++i) {
    const float* centre = &centres[(rng.Next() % kClusters) * dim];
    float* v = &out[i * dim];
    for (size_t d = 0; d < dim; ++d) v[d] = centre[d] + noise * rng.Normal();
    Normalize(v, dim);
  }
  return out;
}

inline std::vector<float> GalleryRows(size_t n, size_t dim) { return ClusteredVectors(n, dim, 1); }
inline std::vector<float> Queries(size_t n, size_t dim) { return ClusteredVectors(n, dim, 2); }

// Exact scores in double of the first n_queries queries against every row, k best per query.
struct Reference {
  size_t k = 0;
  std::vector<double> kth_score;        // per query: the k-th best exact score
  std::vector<std::vector<double>> row_score;  // per query: exact score of every row
};

inline Reference ExactReference(const float* rows, size_t n, size_t dim, const float* queries,
                                size_t n_queries, size_t k, int n_threads) {
  Reference ref;
  ref.k = k;
  ref.kth_score.resize(n_queries);
  ref.row_score.assign(n_queries, std::vector<double>(n));
  std::vector<std::thread> threads;
  for (int t = 0; t < n_threads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t q = static_cast<size_t>(t); q < n_queries; q += static_cast<size_t>(n_threads)) {
        std::vector<double>& scores = ref.row_score[q];
        for (size_t r = 0; r < n; ++r) {
          double sum = 0;
          for (size_t d = 0; d < dim; ++d) sum += static_cast<double>(rows[r * dim + d]) * queries[q * dim + d];
          scores[r] = sum;
        }
        std::vector<double> sorted = scores;
        std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<double>());
        ref.kth_score[q] = sorted[k - 1];
      }
    });
  }
  for (auto& t : threads) t.join();
  return ref;
}

// Tie-aware recall@k: a returned row counts when its exact score reaches the k-th best exact
// score (within float rounding), so exact search scores 1.0 whichever tied rows it picked.
inline double RecallAtK(const Reference& ref, const int64_t* rows, size_t row_stride, size_t n_queries) {
  size_t hits = 0;
  for (size_t q = 0; q < n_queries; ++q)
    for (size_t i = 0; i < ref.k; ++i) {
      const int64_t row = rows[q * row_stride + i];
      if (row >= 0 && ref.row_score[q][static_cast<size_t>(row)] >= ref.kth_score[q] - 1e-5) ++hits;
    }
  return static_cast<double>(hits) / static_cast<double>(n_queries * ref.k);
}

struct Options {
  std::string which_case = "all";  // bound (search_bench only) | single | batch | all
  size_t n = 100000, dim = 512, k = 10, batch_queries = 1000, single_queries = 200;
  size_t recall_queries = 100;  // the exact reference is double precision and slow
  int threads = 2;
  std::string simd;  // search_bench only: scalar | avx2 | avx512 (default: detected)
  std::string storage = "f32";  // search_bench only: f32 | f16 | int8
};

inline Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--case") o.which_case = value;
    else if (key == "--n") o.n = std::stoul(value);
    else if (key == "--dim") o.dim = std::stoul(value);
    else if (key == "--k") o.k = std::stoul(value);
    else if (key == "--queries") o.batch_queries = std::stoul(value);
    else if (key == "--single-queries") o.single_queries = std::stoul(value);
    else if (key == "--threads") o.threads = std::stoi(value);
    else if (key == "--simd") o.simd = value;
    else if (key == "--storage") o.storage = value;
    else {
      std::fprintf(stderr, "unknown option %s\n", key.c_str());
      std::exit(2);
    }
  }
  return o;
}

inline double Seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline void PrintResult(const char* impl, const char* which_case, const Options& o, size_t queries,
                        double qps, double recall, const std::string& extra = "") {
  std::printf("{\"impl\":\"%s\",\"case\":\"%s\",\"n\":%zu,\"dim\":%zu,\"k\":%zu,\"threads\":%d,"
              "\"queries\":%zu,\"qps\":%.1f,\"recall_at_k\":%.4f%s}\n",
              impl, which_case, o.n, o.dim, o.k, o.threads, queries, qps, recall, extra.c_str());
  std::fflush(stdout);
}

// Queries per second of search(first, count): one query per call after 5 warm-up calls, or the
// median of 3 calls with all queries after one warm-up call. Both programs time through this, so
// maskface and faiss are measured the same way.
template <typename Search>
double QueriesPerSecond(Search&& search, size_t n_queries, bool one_per_call) {
  if (one_per_call) {
    for (size_t q = 0; q < std::min<size_t>(5, n_queries); ++q) search(q, 1);
    const double start = Seconds();
    for (size_t q = 0; q < n_queries; ++q) search(q, 1);
    return static_cast<double>(n_queries) / (Seconds() - start);
  }
  search(0, n_queries);
  double runs[3];
  for (double& run : runs) {
    const double start = Seconds();
    search(0, n_queries);
    run = static_cast<double>(n_queries) / (Seconds() - start);
  }
  std::sort(runs, runs + 3);
  return runs[1];
}

}  // namespace bench
