// Gallery storage and exact cosine top-k search on the CPU.
//
// Rows are fixed-size float vectors stored in blocks that never move, so a search can run on a
// worker thread while the owner appends rows or marks rows dead from another thread:
//   - Search reads rows [0, rows()) as of its start; rows appended later are not seen.
//   - Put(row == rows()) appends; Kill(row) is an atomic flag; both may run during a Search.
//   - Put(row < rows()) overwrites a row and must not run while a Search may read it: the owner
//     (lib/api/gallery.ts) only reuses rows of removed entries when no search is in flight.
//   - Put and Kill themselves are called from one thread at a time.
// Vectors are stored as given (f32), rounded to IEEE half floats (f16: half the memory and the
// memory traffic of a scan, scores within about 1e-3), or as given plus int8 codes (i8: a first
// pass over the codes streams a quarter of the bytes, then the candidates are scored on the f32
// copy; the results are exactly those of an f32 store, see cpu_search.cc). Callers normalise the
// vectors, so the dot product is the cosine.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace maskface {

// Results of a k-nearest search for n_queries queries, laid out query-major: rows[q * k + i],
// scores[q * k + i] for i < counts[q], best first; unused slots hold row -1 and score -inf.
struct TopKOutput {
  int32_t* rows;
  float* scores;
  uint32_t* counts;
};

// Work of the int8 first pass, for tests and benchmarks: queries answered from the first pass's
// candidates, those that needed a wider second pass, and those scanned in f32 after it.
struct SearchStats {
  uint64_t int8_queries = 0;
  uint64_t int8_widened = 0;
  uint64_t int8_exact_scans = 0;
  uint64_t int8_candidates = 0;  // rows scored on their f32 copy

  SearchStats& operator+=(const SearchStats& other) {
    int8_queries += other.int8_queries;
    int8_widened += other.int8_widened;
    int8_exact_scans += other.int8_exact_scans;
    int8_candidates += other.int8_candidates;
    return *this;
  }
};

struct SearchParams {
  const float* queries = nullptr;  // n_queries x dim, row-major
  size_t n_queries = 0;
  size_t k = 10;                   // >= 1
  float threshold = -1e30f;        // keep only scores >= threshold
  int n_threads = 1;
  SearchStats* stats = nullptr;    // optional: what an int8 search did (added to)
};

// Exact top-k of queries against a contiguous row-major matrix (n_rows x dim). live (nullable)
// marks rows to consider (nonzero = live). Ties are broken by the lower row index, so results are
// deterministic. This is the kernel GalleryStore::Search runs block by block.
void ExactTopK(const float* matrix, size_t n_rows, size_t dim, const uint8_t* live,
               const SearchParams& params, TopKOutput out);

enum class VectorStorage { kF32, kF16, kI8 };

class GalleryStore {
 public:
  // rows_per_block: rows per storage block; 0 picks about 16 MiB per block (tests use tiny ones).
  explicit GalleryStore(size_t dim, size_t rows_per_block = 0, VectorStorage storage = VectorStorage::kF32);
  ~GalleryStore();
  GalleryStore(const GalleryStore&) = delete;
  GalleryStore& operator=(const GalleryStore&) = delete;

  size_t dim() const { return dim_; }
  VectorStorage storage() const { return storage_; }
  // Bytes of one stored vector (an i8 store's f32 copy).
  size_t vector_bytes() const { return dim_ * (storage_ == VectorStorage::kF16 ? sizeof(uint16_t) : sizeof(float)); }
  // Bytes of an i8 store's codes of one row (0 for other stores).
  size_t code_stride() const { return code_stride_; }
  // Bytes of one row: its vector, and an i8 store's codes and scale.
  size_t row_bytes() const { return vector_bytes() + (code_stride_ != 0 ? code_stride_ + sizeof(float) : 0); }
  // High-water mark: every row ever written (live or dead).
  size_t rows() const { return rows_.load(std::memory_order_acquire); }
  size_t live() const { return live_.load(std::memory_order_relaxed); }
  // Bytes of the rows written so far (for memory reporting; reserved, untouched pages excluded).
  size_t bytes() const;
  // Rows that fit without another allocation, and the bytes reserved for them (vectors and flags).
  size_t capacity() const;
  size_t reserved_bytes() const { return capacity() * (row_bytes() + sizeof(uint8_t)); }

  // Reserves space so that rows up to `rows` need no allocation.
  void Reserve(size_t rows);
  // Writes vector `vec` (dim floats; rounded to half floats in an f16 store) at `row` and marks
  // it live. row <= rows().
  void Put(size_t row, const float* vec);
  // Marks a row dead. Returns false when it was not live. row < rows().
  bool Kill(size_t row);
  // False for rows never written (row >= rows()).
  bool IsLive(size_t row) const;
  // Copies row `row` into out (dim floats, as stored). row < rows().
  void Get(size_t row, float* out) const;

  // Exact cosine top-k over live rows. params.queries has params.n_queries x dim floats.
  void Search(const SearchParams& params, TopKOutput out) const;
  // Totals of SearchStats over every search of an i8 store.
  SearchStats search_stats() const;

 private:
  struct Block;
  std::vector<Block*> SnapshotBlocks(size_t* n_rows) const;
  Block* BlockFor(size_t row) const;
  void AddBlocksUpTo(size_t rows);

  const size_t dim_;
  const VectorStorage storage_;
  const size_t code_stride_;
  const size_t rows_per_block_;
  mutable std::mutex blocks_mutex_;  // guards the block table only, never held during a scan
  std::vector<std::unique_ptr<Block>> blocks_;
  std::atomic<size_t> rows_{0};
  std::atomic<size_t> live_{0};
  // Largest ||v - codes * scale|| and ||codes * scale|| of any row ever written to an i8 store:
  // the first pass's error bound. Raised before a row is published, never lowered.
  std::atomic<float> code_error_max_{0};
  std::atomic<float> code_norm_max_{0};
  mutable std::mutex stats_mutex_;  // guards search_totals_, taken once per search
  mutable SearchStats search_totals_;
};

}  // namespace maskface
