// Exact top-k on the CPU: a worker per row range, one bounded heap per query and worker, merged
// at the end. Few queries stream the rows once per kMaxScanQueries queries (bandwidth bound);
// batches go through a register-blocked GEMM-like kernel (compute bound).
#include "core/cpu_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "core/error.h"
#include "core/int8_codes.h"
#include "core/thread_pool.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace maskface {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
// From this many queries on, the GEMM kernel beats streaming the rows once per 4 queries.
constexpr size_t kMinQueriesForGemm = 8;
constexpr size_t kScanChunkRows = 256;   // scores of one scan call stay in L1
constexpr size_t kGemmChunkPanels = 4;   // row panels per kernel call, reused by every group
// Packed queries revisited for each row chunk: sized to stay in L2 (1.25 MiB per core here).
constexpr size_t kQueryBlockBytes = 512 * 1024;
// Below this many multiply-adds per worker, waking another thread costs more than it saves.
constexpr size_t kMinMultiplyAddsPerTask = size_t(1) << 20;
constexpr size_t kMinHitsPerMergeTask = size_t(1) << 16;

struct Hit {
  float score;
  int32_t row;
};

// The search order: higher score first, then lower row.
bool Better(const Hit& a, const Hit& b) {
  return a.score > b.score || (a.score == b.score && a.row < b.row);
}

// One bounded heap per query over one worker's rows, worst hit at the root. gate(q) is the score
// a row must exceed to enter: just below the threshold until the heap is full, then the root's
// score. "Exceed" is exact for a full heap because a worker visits its rows in increasing order,
// so an equal score comes with a higher row and loses the tie.
class TopKHeaps {
 public:
  TopKHeaps(size_t n_queries, size_t capacity, size_t n_gates, float threshold)
      : capacity_(capacity), hits_(n_queries * capacity), sizes_(n_queries, 0), gates_(n_gates, kInf) {
    std::fill(gates_.begin(), gates_.begin() + n_queries, std::nextafter(threshold, -kInf));
  }

  // Gates for every query, padded with +inf to the query groups of the GEMM kernel.
  const float* gates() const { return gates_.data(); }

  void Push(size_t query, float score, int32_t row) {
    if (!(score > gates_[query])) return;
    Hit* heap = &hits_[query * capacity_];
    size_t& size = sizes_[query];
    if (size < capacity_) {
      heap[size++] = {score, row};
      std::push_heap(heap, heap + size, Better);
      if (size < capacity_) return;
    } else {
      std::pop_heap(heap, heap + size, Better);
      heap[size - 1] = {score, row};
      std::push_heap(heap, heap + size, Better);
    }
    gates_[query] = heap[0].score;
  }

  const Hit* hits(size_t query) const { return hits_.data() + query * capacity_; }
  size_t size(size_t query) const { return sizes_[query]; }

 private:
  size_t capacity_;
  std::vector<Hit> hits_;
  std::vector<size_t> sizes_;
  std::vector<float> gates_;
};

// Calls fn(segment, first, last) for the local row ranges that cover positions [begin, end) of
// the segments laid end to end.
template <typename Fn>
void ForEachPiece(const RowSegment* segments, size_t n_segments, size_t begin, size_t end, Fn&& fn) {
  size_t position = 0;
  for (size_t s = 0; s < n_segments && position < end; ++s) {
    const RowSegment& segment = segments[s];
    const size_t first = std::max(begin, position) - position;
    const size_t last = std::min(end, position + segment.n_rows) - position;
    if (first < last && begin < position + segment.n_rows) fn(segment, first, last);
    position += segment.n_rows;
  }
}

struct SearchContext {
  const RowSegment* segments;
  size_t n_segments;
  size_t dim;
  const SearchParams* params;
  const SearchKernels* kernels;
  std::vector<float> packed_queries;  // GEMM path only: groups of group_width, dim-major
};

void ScanRange(const SearchContext& ctx, size_t begin, size_t end, TopKHeaps& heaps) {
  const size_t dim = ctx.dim;
  const SearchParams& params = *ctx.params;
  std::vector<float> scores(kScanChunkRows * kMaxScanQueries);
  for (size_t q0 = 0; q0 < params.n_queries; q0 += kMaxScanQueries) {
    const size_t pass_queries = std::min(kMaxScanQueries, params.n_queries - q0);
    ForEachPiece(ctx.segments, ctx.n_segments, begin, end,
                 [&](const RowSegment& segment, size_t first, size_t last) {
      for (size_t chunk = first; chunk < last; chunk += kScanChunkRows) {
        const size_t n = std::min(kScanChunkRows, last - chunk);
        if (segment.data_f16 != nullptr) {
          ctx.kernels->scan_f16(segment.data_f16 + chunk * dim, n, dim, params.queries + q0 * dim,
                                pass_queries, scores.data());
        } else {
          ctx.kernels->scan(segment.data + chunk * dim, n, dim, params.queries + q0 * dim,
                            pass_queries, scores.data());
        }
        const float* gates = heaps.gates() + q0;
        for (size_t i = 0; i < n; ++i) {
          for (size_t j = 0; j < pass_queries; ++j) {
            const float score = scores[i * pass_queries + j];
            if (score > gates[j] && segment.IsLive(chunk + i))
              heaps.Push(q0 + j, score, static_cast<int32_t>(segment.first_row + chunk + i));
          }
        }
      }
    });
  }
}

// Pushes the scores a group kernel flagged (rows chunk..chunk+n of segment, queries first_query..
// first_query+width) into the heaps; dead rows are skipped.
void PushMasked(const RowSegment& segment, size_t chunk, size_t n, size_t first_query, size_t width,
                const float* scores, const uint32_t* masks, TopKHeaps& heaps) {
  for (size_t i = 0; i < n; ++i) {
    if (masks[i] == 0 || !segment.IsLive(chunk + i)) continue;
    const auto row = static_cast<int32_t>(segment.first_row + chunk + i);
    for (uint32_t mask = masks[i]; mask != 0; mask &= mask - 1) {
      const size_t lane = static_cast<size_t>(__builtin_ctz(mask));
      heaps.Push(first_query + lane, scores[i * width + lane], row);
    }
  }
}

void GemmRange(const SearchContext& ctx, size_t begin, size_t end, TopKHeaps& heaps) {
  const size_t dim = ctx.dim;
  const SearchKernels& kernels = *ctx.kernels;
  const size_t width = kernels.group_width;
  const size_t panel = kernels.panel_rows;
  const size_t chunk_rows = panel * kGemmChunkPanels;
  const size_t group_floats = dim * width;
  const size_t n_groups = ctx.packed_queries.size() / group_floats;
  const size_t groups_per_block = std::max<size_t>(1, kQueryBlockBytes / (group_floats * sizeof(float)));

  std::vector<float> scores(chunk_rows * width);
  std::vector<uint32_t> masks(chunk_rows);
  std::vector<float> tail_panel(panel * dim);  // last rows of a piece, zero padded to a panel
  std::vector<float> converted;                // f16 rows of one chunk, in single precision

  for (size_t g0 = 0; g0 < n_groups; g0 += groups_per_block) {
    const size_t g1 = std::min(n_groups, g0 + groups_per_block);
    ForEachPiece(ctx.segments, ctx.n_segments, begin, end,
                 [&](const RowSegment& segment, size_t first, size_t last) {
      for (size_t chunk = first; chunk < last; chunk += chunk_rows) {
        const size_t n = std::min(chunk_rows, last - chunk);
        const size_t full = n - n % panel;
        const float* rows;
        if (segment.data_f16 != nullptr) {
          // Compute bound: converting the chunk once for every block of query groups costs little.
          converted.resize(chunk_rows * dim);
          kernels.to_f32(segment.data_f16 + chunk * dim, n * dim, converted.data());
          rows = converted.data();
        } else {
          rows = segment.data + chunk * dim;
        }
        if (full < n) {
          std::fill(tail_panel.begin(), tail_panel.end(), 0.f);
          std::memcpy(tail_panel.data(), rows + full * dim, (n - full) * dim * sizeof(float));
        }
        for (size_t g = g0; g < g1; ++g) {
          const float* packed = ctx.packed_queries.data() + g * group_floats;
          const float* gates = heaps.gates() + g * width;
          if (full > 0) kernels.score_group(packed, rows, full, dim, gates, scores.data(), masks.data());
          if (full < n)
            kernels.score_group(packed, tail_panel.data(), panel, dim, gates,
                                scores.data() + full * width, masks.data() + full);
          PushMasked(segment, chunk, n, g * width, width, scores.data(), masks.data(), heaps);
        }
      }
    });
  }
}

// packed[g][d][j] = queries[g * width + j][d], zero for lanes past the last query.
std::vector<float> PackQueries(const float* queries, size_t n_queries, size_t dim, size_t width) {
  const size_t n_groups = (n_queries + width - 1) / width;
  std::vector<float> packed(n_groups * dim * width, 0.f);
  for (size_t q = 0; q < n_queries; ++q) {
    float* group = packed.data() + (q / width) * dim * width + q % width;
    for (size_t d = 0; d < dim; ++d) group[d * width] = queries[q * dim + d];
  }
  return packed;
}

void WriteEmpty(TopKOutput out, size_t query, size_t k, size_t from) {
  for (size_t i = from; i < k; ++i) {
    out.rows[query * k + i] = -1;
    out.scores[query * k + i] = -kInf;
  }
}

void ValidateSearch(size_t total_rows, size_t dim, const SearchParams& params, TopKOutput out) {
  MF_CHECK_ARG(dim > 0, "search: dim must be > 0");
  MF_CHECK_ARG(params.k >= 1, "search: k must be >= 1");
  MF_CHECK_ARG(!std::isnan(params.threshold), "search: threshold must not be NaN");
  MF_CHECK_ARG(params.k <= std::numeric_limits<size_t>::max() / std::max<size_t>(1, params.n_queries),
               "search: n_queries * k overflows");
  MF_CHECK_ARG(total_rows <= static_cast<size_t>(std::numeric_limits<int32_t>::max()),
               "search: more rows than int32 row indices can address");
  if (params.n_queries == 0) return;
  MF_CHECK_ARG(params.queries != nullptr, "search: queries is null");
  MF_CHECK_ARG(out.rows != nullptr && out.scores != nullptr && out.counts != nullptr,
               "search: output buffer is null");
}

// Tasks for a pass of `work` multiply-adds: one per thread, unless that is too little work each.
size_t TaskCount(const SearchParams& params, size_t work) {
  const size_t max_threads = static_cast<size_t>(std::max(1, params.n_threads));
  return std::max<size_t>(1, std::min(max_threads, work / kMinMultiplyAddsPerTask));
}

// The f32 (or f16) search over the rows' vectors: one pass, exact.
// force_gemm: the GEMM path even for fewer queries (the f32 scores of a batch, bit for bit).
void RunExactSearch(const RowSegment* segments, size_t n_segments, size_t total_rows, size_t dim,
                    const SearchParams& params, TopKOutput out, SimdLevel level, bool force_gemm = false) {
  const size_t n_queries = params.n_queries;
  const size_t k = params.k;
  if (n_queries == 0) return;

  SearchContext ctx{segments, n_segments, dim, &params, &KernelsFor(level), {}};
  const bool use_gemm = force_gemm || n_queries >= kMinQueriesForGemm;
  size_t n_gates = n_queries;
  if (use_gemm) {
    ctx.packed_queries = PackQueries(params.queries, n_queries, dim, ctx.kernels->group_width);
    n_gates = ctx.packed_queries.size() / dim;
  }

  const size_t max_threads = static_cast<size_t>(std::max(1, params.n_threads));
  const size_t n_tasks = TaskCount(params, total_rows * dim * n_queries);
  const size_t capacity = std::min(k, total_rows);
  std::vector<TopKHeaps> heaps;
  heaps.reserve(n_tasks);
  for (size_t t = 0; t < n_tasks; ++t) heaps.emplace_back(n_queries, capacity, n_gates, params.threshold);

  if (capacity > 0) {
    ParallelFor(n_tasks, params.n_threads, [&](size_t task) {
      const size_t begin = total_rows * task / n_tasks;
      const size_t end = total_rows * (task + 1) / n_tasks;
      if (use_gemm) GemmRange(ctx, begin, end, heaps[task]);
      else ScanRange(ctx, begin, end, heaps[task]);
    });
  }

  // Merge the workers' heaps per query; queries are independent, so large merges (big batches,
  // big k) are split across threads.
  const size_t merged_hits = n_queries * capacity * n_tasks;
  const size_t merge_tasks = merged_hits >= kMinHitsPerMergeTask ? std::min(max_threads, n_queries) : 1;
  ParallelFor(merge_tasks, params.n_threads, [&](size_t task) {
    std::vector<Hit> merged;
    for (size_t q = n_queries * task / merge_tasks; q < n_queries * (task + 1) / merge_tasks; ++q) {
      merged.clear();
      for (const TopKHeaps& h : heaps) merged.insert(merged.end(), h.hits(q), h.hits(q) + h.size(q));
      const size_t count = std::min(k, merged.size());
      std::partial_sort(merged.begin(), merged.begin() + count, merged.end(), Better);
      for (size_t i = 0; i < count; ++i) {
        out.rows[q * k + i] = merged[i].row;
        out.scores[q * k + i] = merged[i].score;
      }
      WriteEmpty(out, q, k, count);
      out.counts[q] = static_cast<uint32_t>(count);
    }
  });
}


// ---- int8 stores: a first pass over the codes, then the candidates scored on their f32 rows ----
//
// The first pass keeps, per query, the `candidates` rows of highest approximate score s_q s
// <c_q, c>. Every row it did not keep scores at most `floor` approximately (the lowest kept
// score), so at most floor + bound exactly (core/int8_codes.h). Once the candidates are scored
// exactly, the answer is proven when floor + bound is below the k-th exact score (or below the
// threshold when fewer than k pass it): nothing skipped could enter, not even by a tie. A query
// whose answer is not proven gets a second pass with wider candidates, and failing that the f32
// search, so the results are always those of the f32 rows. Few queries stream the codes with
// 16-bit query codes (scan_i8); batches run a VNNI GEMM with 8-bit query codes (score_group_i8).
// Candidates are scored by the kernel the f32 search would use for the same call (the scan's, or
// the GEMM's), so scores equal an f32 store's to the bit.

constexpr size_t kFirstPassExtraCandidates = 64;
constexpr size_t kWidening = 16;
// float rounding of the approximate score (an int32 dot times two float scales) and of the exact
// f32 kernel (dim products summed): covered by (dim + kRoundingTerms) ulps of the largest score.
constexpr double kRoundingTerms = 16;
// Products below float's normal range, flushed to zero or rounded to denormals.
constexpr double kFlushSlack = 1e-30;

// The segment holding global row `row` (segments sorted by first_row), and the row's index in it.
const RowSegment& SegmentOf(const RowSegment* segments, size_t n_segments, size_t row, size_t* local) {
  const RowSegment* segment =
      std::upper_bound(segments, segments + n_segments, row, [](size_t r, const RowSegment& s) { return r < s.first_row; }) - 1;
  *local = row - segment->first_row;
  return *segment;
}

// The largest score a query of norm query_norm can have against the store's rows.
double LargestScore(double query_norm, Int8Bound bound) {
  return query_norm * (static_cast<double>(bound.code_norm) + bound.error_norm);
}

// Query codes for one first pass: 16-bit (scan) or 8-bit offset by 128, packed for the GEMM kernel.
struct EncodedQueries {
  std::vector<int16_t> scan_codes;    // n x stride
  std::vector<uint8_t> packed_codes;  // groups of group_width_i8, four dimensions a lane
  std::vector<float> scales;          // padded with zeros to whole groups
  std::vector<double> bounds;         // how far an approximate score may be from the f32 kernel's
  size_t n_gates = 0;
};

EncodedQueries EncodeQueries(const float* queries, const size_t* which, size_t n, size_t dim, size_t stride,
                             Int8Bound bound, const SearchKernels* gemm) {
  EncodedQueries encoded;
  encoded.bounds.resize(n);
  std::vector<uint8_t> codes;
  if (gemm != nullptr) {
    const size_t width = gemm->group_width_i8;
    encoded.n_gates = (n + width - 1) / width * width;
    encoded.packed_codes.assign(encoded.n_gates * stride, 128);
    codes.resize(stride);
  } else {
    encoded.n_gates = n;
    encoded.scan_codes.resize(n * stride);
  }
  encoded.scales.assign(encoded.n_gates, 0.f);
  for (size_t j = 0; j < n; ++j) {
    const float* query = queries + which[j] * dim;
    QueryCode code;
    if (gemm != nullptr) {
      code = EncodeUint8Query(query, dim, stride, codes.data());
      const size_t width = gemm->group_width_i8;
      uint8_t* group = encoded.packed_codes.data() + (j / width) * width * stride;
      for (size_t d = 0; d < stride; ++d) group[(d / 4) * width * 4 + (j % width) * 4 + d % 4] = codes[d];
    } else {
      code = EncodeInt16Query(query, dim, stride, encoded.scan_codes.data() + j * stride);
    }
    encoded.scales[j] = code.scale;
    const double largest_score = LargestScore(code.norm, bound);
    encoded.bounds[j] = static_cast<double>(code.norm) * bound.error_norm +
                        static_cast<double>(code.error_norm) * bound.code_norm +
                        (static_cast<double>(dim) + kRoundingTerms) * std::ldexp(largest_score, -23) + kFlushSlack;
  }
  return encoded;
}

void ScanCodes(const RowSegment* segments, size_t n_segments, size_t begin, size_t end, const SearchKernels& kernels,
               const EncodedQueries& encoded, size_t n, TopKHeaps& heaps) {
  const size_t stride = segments[0].code_stride;
  std::vector<int32_t> dots(kScanChunkRows * kMaxScanQueries);
  for (size_t q0 = 0; q0 < n; q0 += kMaxScanQueries) {
    const size_t pass = std::min(kMaxScanQueries, n - q0);
    ForEachPiece(segments, n_segments, begin, end, [&](const RowSegment& segment, size_t first, size_t last) {
      for (size_t chunk = first; chunk < last; chunk += kScanChunkRows) {
        const size_t rows = std::min(kScanChunkRows, last - chunk);
        kernels.scan_i8(segment.codes + chunk * stride, rows, stride, encoded.scan_codes.data() + q0 * stride, pass, dots.data());
        const float* gates = heaps.gates() + q0;
        for (size_t i = 0; i < rows; ++i) {
          const float row_scale = segment.code_scales[chunk + i];
          for (size_t j = 0; j < pass; ++j) {
            const float score = static_cast<float>(dots[i * pass + j]) * (row_scale * encoded.scales[q0 + j]);
            if (score > gates[j] && segment.IsLive(chunk + i))
              heaps.Push(q0 + j, score, static_cast<int32_t>(segment.first_row + chunk + i));
          }
        }
      }
    });
  }
}

void GemmCodes(const RowSegment* segments, size_t n_segments, size_t begin, size_t end, const SearchKernels& kernels,
               const EncodedQueries& encoded, TopKHeaps& heaps) {
  const size_t stride = segments[0].code_stride;
  const size_t width = kernels.group_width_i8;
  const size_t panel = kernels.panel_rows_i8;
  const size_t chunk_rows = panel * kGemmChunkPanels;
  const size_t group_bytes = stride * width;
  const size_t n_groups = encoded.n_gates / width;
  const size_t groups_per_block = std::max<size_t>(1, kQueryBlockBytes / group_bytes);
  std::vector<float> scores(chunk_rows * width);
  std::vector<uint32_t> masks(chunk_rows);
  std::vector<int32_t> sums(chunk_rows);
  std::vector<float> tail_scales(panel);
  std::vector<int8_t> tail_panel(panel * stride);  // last rows of a piece, zero padded to a panel
  for (size_t g0 = 0; g0 < n_groups; g0 += groups_per_block) {
    const size_t g1 = std::min(n_groups, g0 + groups_per_block);
    ForEachPiece(segments, n_segments, begin, end, [&](const RowSegment& segment, size_t first, size_t last) {
      for (size_t chunk = first; chunk < last; chunk += chunk_rows) {
        const size_t n = std::min(chunk_rows, last - chunk);
        const size_t full = n - n % panel;
        const int8_t* rows = segment.codes + chunk * stride;
        for (size_t i = 0; i < n; ++i) {
          int32_t sum = 0;
          for (size_t d = 0; d < stride; ++d) sum += rows[i * stride + d];
          sums[i] = sum;
        }
        if (full < n) {
          std::fill(tail_panel.begin(), tail_panel.end(), int8_t{0});
          std::memcpy(tail_panel.data(), rows + full * stride, (n - full) * stride);
          std::fill(tail_scales.begin(), tail_scales.end(), 0.f);
          std::copy(segment.code_scales + chunk + full, segment.code_scales + chunk + n, tail_scales.begin());
          std::fill(sums.begin() + n, sums.begin() + full + panel, 0);
        }
        for (size_t g = g0; g < g1; ++g) {
          const uint8_t* packed = encoded.packed_codes.data() + g * group_bytes;
          const float* query_scales = encoded.scales.data() + g * width;
          const float* gates = heaps.gates() + g * width;
          if (full > 0)
            kernels.score_group_i8(packed, query_scales, rows, sums.data(), segment.code_scales + chunk, full, stride, gates,
                                   scores.data(), masks.data());
          if (full < n)
            kernels.score_group_i8(packed, query_scales, tail_panel.data(), sums.data() + full, tail_scales.data(), panel, stride,
                                   gates, scores.data() + full * width, masks.data() + full);
          PushMasked(segment, chunk, n, g * width, width, scores.data(), masks.data(), heaps);
        }
      }
    });
  }
}

// First pass for n queries: per query, the hits of highest approximate score (up to `candidates`
// of them, best first) and whether rows were left out for lack of room.
void FirstPass(const RowSegment* segments, size_t n_segments, size_t total_rows, const SearchParams& params,
               const SearchKernels& kernels, bool gemm, const EncodedQueries& encoded, size_t n, size_t candidates,
               std::vector<std::vector<Hit>>& hits, std::vector<uint8_t>& full) {
  const size_t stride = segments[0].code_stride;
  // A row whose approximate score is below threshold - bound cannot reach the threshold.
  const double lowest = static_cast<double>(params.threshold) - *std::max_element(encoded.bounds.begin(), encoded.bounds.end());
  float gate = static_cast<float>(lowest);
  if (static_cast<double>(gate) > lowest) gate = std::nextafter(gate, -kInf);
  // VNNI does four times the products of an f32 FMA per instruction; the scan a quarter of its bytes.
  const size_t n_tasks = TaskCount(params, total_rows * stride * n / 4);
  std::vector<TopKHeaps> heaps;
  heaps.reserve(n_tasks);
  for (size_t t = 0; t < n_tasks; ++t) heaps.emplace_back(n, candidates, encoded.n_gates, gate);
  ParallelFor(n_tasks, params.n_threads, [&](size_t task) {
    const size_t begin = total_rows * task / n_tasks;
    const size_t end = total_rows * (task + 1) / n_tasks;
    if (gemm) GemmCodes(segments, n_segments, begin, end, kernels, encoded, heaps[task]);
    else ScanCodes(segments, n_segments, begin, end, kernels, encoded, n, heaps[task]);
  });
  const size_t merge_tasks = n >= kMinQueriesForGemm ? std::min<size_t>(n, static_cast<size_t>(std::max(1, params.n_threads))) : 1;
  ParallelFor(merge_tasks, params.n_threads, [&](size_t task) {
    for (size_t j = n * task / merge_tasks; j < n * (task + 1) / merge_tasks; ++j) {
      std::vector<Hit>& merged = hits[j];
      merged.clear();
      for (const TopKHeaps& h : heaps) merged.insert(merged.end(), h.hits(j), h.hits(j) + h.size(j));
      // A task that filled its heap left out rows no better than its worst kept one; the merged
      // list then holds at least `candidates` rows at least that good. Room for every row means
      // nothing was left out.
      full[j] = candidates < total_rows && merged.size() >= candidates;
      const size_t kept = std::min(candidates, merged.size());
      std::partial_sort(merged.begin(), merged.begin() + kept, merged.end(), Better);
      merged.resize(kept);
    }
  });
}

// Scores candidates on their f32 rows with the kernel the f32 search uses for the same call: the
// scan's for few queries, the GEMM kernel's (query in lane 0 of a group) for batches.
class ExactScorer {
 public:
  ExactScorer(const RowSegment* segments, size_t n_segments, size_t dim, const SearchKernels& kernels, bool gemm)
      : segments_(segments), n_segments_(n_segments), dim_(dim), kernels_(kernels), gemm_(gemm) {
    if (gemm_) {
      group_.resize(dim * kernels.group_width);
      panel_.resize(kernels.panel_rows * dim);
      gates_.assign(kernels.group_width, kInf);
      scores_.resize(kernels.panel_rows * kernels.group_width);
      masks_.resize(kernels.panel_rows);
    }
  }

  // Exact scores of `rows` for `query`, into out.
  void Score(const float* query, const std::vector<Hit>& rows, std::vector<float>& out) {
    out.resize(rows.size());
    if (!gemm_) {
      for (size_t i = 0; i < rows.size(); ++i) kernels_.scan(Row(rows[i].row), 1, dim_, query, 1, &out[i]);
      return;
    }
    const size_t width = kernels_.group_width, panel = kernels_.panel_rows;
    for (size_t d = 0; d < dim_; ++d) group_[d * width] = query[d];
    for (size_t first = 0; first < rows.size(); first += panel) {
      const size_t n = std::min(panel, rows.size() - first);
      for (size_t i = 0; i < n; ++i) std::memcpy(&panel_[i * dim_], Row(rows[first + i].row), dim_ * sizeof(float));
      kernels_.score_group(group_.data(), panel_.data(), panel, dim_, gates_.data(), scores_.data(), masks_.data());
      for (size_t i = 0; i < n; ++i) out[first + i] = scores_[i * width];
    }
  }

 private:
  const float* Row(int32_t row) const {
    size_t local;
    const RowSegment& segment = SegmentOf(segments_, n_segments_, static_cast<size_t>(row), &local);
    return segment.data + local * dim_;
  }

  const RowSegment* segments_;
  size_t n_segments_;
  size_t dim_;
  const SearchKernels& kernels_;
  bool gemm_;
  std::vector<float> group_, panel_, gates_, scores_;
  std::vector<uint32_t> masks_;
};

// Scores one query's candidates exactly and writes its answer when it is proven.
bool Rerank(const SearchParams& params, ExactScorer& scorer, const float* query, const std::vector<Hit>& candidates,
            bool full, double bound, size_t query_index, TopKOutput out) {
  if (!(bound < kInf)) return false;  // never claim a proof from a bound that is not a number
  const double floor = full ? static_cast<double>(candidates.back().score) : -std::numeric_limits<double>::infinity();
  std::vector<float> scores;
  scorer.Score(query, candidates, scores);
  std::vector<Hit> exact;
  exact.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i)
    if (scores[i] >= params.threshold) exact.push_back({scores[i], candidates[i].row});
  const size_t k = params.k;
  const size_t count = std::min(k, exact.size());
  std::partial_sort(exact.begin(), exact.begin() + count, exact.end(), Better);
  const double last = count == k ? static_cast<double>(exact[k - 1].score) : static_cast<double>(params.threshold);
  if (full && !(floor + bound < last)) return false;
  for (size_t i = 0; i < count; ++i) {
    out.rows[query_index * k + i] = exact[i].row;
    out.scores[query_index * k + i] = exact[i].score;
  }
  WriteEmpty(out, query_index, k, count);
  out.counts[query_index] = static_cast<uint32_t>(count);
  return true;
}

// Whether the first pass can answer a query: finite values, and scores far from the edge of
// float's range (approximate scores are computed in float; the bound is not, but it must be finite).
bool CodesCanAnswer(const float* query, size_t dim, Int8Bound bound) {
  double norm_sq = 0;
  for (size_t d = 0; d < dim; ++d) {
    if (!std::isfinite(query[d])) return false;
    norm_sq += static_cast<double>(query[d]) * query[d];
  }
  // The query's own norm is kept as a float too.
  const double norm = std::sqrt(norm_sq);
  return norm < 1e30 && LargestScore(norm, bound) < 1e30;
}

void RunInt8Search(const RowSegment* segments, size_t n_segments, size_t total_rows, size_t dim,
                   const SearchParams& params, TopKOutput out, SimdLevel level, Int8Bound bound) {
  const SearchKernels& kernels = KernelsFor(level);
  const size_t stride = segments[0].code_stride;
  // The f32 search runs batches through its GEMM kernel; so do the scores here.
  const bool gemm = params.n_queries >= kMinQueriesForGemm;
  std::vector<size_t> pending, unanswerable;
  for (size_t j = 0; j < params.n_queries; ++j)
    (CodesCanAnswer(params.queries + j * dim, dim, bound) ? pending : unanswerable).push_back(j);
  size_t candidates = std::min(total_rows, std::max(2 * params.k, params.k + kFirstPassExtraCandidates));
  SearchStats stats;
  stats.int8_queries = params.n_queries;
  for (int attempt = 0; attempt < 2 && !pending.empty(); ++attempt) {
    if (attempt > 0) stats.int8_widened += pending.size();
    const size_t n = pending.size();
    const EncodedQueries encoded = EncodeQueries(params.queries, pending.data(), n, dim, stride, bound, gemm ? &kernels : nullptr);
    std::vector<std::vector<Hit>> hits(n);
    std::vector<uint8_t> full(n);  // not vector<bool>: threads write neighbouring entries
    FirstPass(segments, n_segments, total_rows, params, kernels, gemm, encoded, n, candidates, hits, full);
    std::vector<uint8_t> proven(n, 0);
    const size_t rerank_tasks = gemm ? std::min<size_t>(n, static_cast<size_t>(std::max(1, params.n_threads))) : 1;
    ParallelFor(rerank_tasks, params.n_threads, [&](size_t task) {
      ExactScorer scorer(segments, n_segments, dim, kernels, gemm);
      for (size_t j = n * task / rerank_tasks; j < n * (task + 1) / rerank_tasks; ++j)
        proven[j] = Rerank(params, scorer, params.queries + pending[j] * dim, hits[j], full[j], encoded.bounds[j], pending[j], out);
    });
    std::vector<size_t> unproven;
    for (size_t j = 0; j < n; ++j) {
      stats.int8_candidates += hits[j].size();
      if (!proven[j]) unproven.push_back(pending[j]);
    }
    pending.swap(unproven);
    candidates = std::min(total_rows, candidates * kWidening);
  }
  pending.insert(pending.end(), unanswerable.begin(), unanswerable.end());
  if (!pending.empty()) {
    // Rare: many rows within the bound of the k-th score (near duplicates), or queries the codes
    // cannot answer. Search them in f32.
    stats.int8_exact_scans = pending.size();
    const size_t n = pending.size();
    const size_t k = params.k;
    std::vector<float> queries(n * dim), scores(n * k);
    std::vector<int32_t> rows(n * k);
    std::vector<uint32_t> counts(n);
    for (size_t j = 0; j < n; ++j) std::memcpy(&queries[j * dim], params.queries + pending[j] * dim, dim * sizeof(float));
    SearchParams exact = params;
    exact.queries = queries.data();
    exact.n_queries = n;
    RunExactSearch(segments, n_segments, total_rows, dim, exact, {rows.data(), scores.data(), counts.data()}, level, gemm);
    for (size_t j = 0; j < n; ++j) {
      std::memcpy(out.rows + pending[j] * k, &rows[j * k], k * sizeof(int32_t));
      std::memcpy(out.scores + pending[j] * k, &scores[j * k], k * sizeof(float));
      out.counts[pending[j]] = counts[j];
    }
  }
  if (params.stats != nullptr) *params.stats += stats;
}

void RunSearch(const RowSegment* segments, size_t n_segments, size_t dim, const SearchParams& params,
               TopKOutput out, SimdLevel level, Int8Bound bound) {
  const bool coded = n_segments > 0 && segments[0].codes != nullptr;
  size_t total_rows = 0;
  for (size_t s = 0; s < n_segments; ++s) {
    MF_CHECK_ARG(segments[s].data != nullptr || segments[s].data_f16 != nullptr || segments[s].n_rows == 0,
                 "search: rows are null");
    MF_CHECK_ARG((segments[s].codes != nullptr) == coded && segments[s].code_stride == segments[0].code_stride,
                 "search: segments mix int8 codes of another stride, or none, with codes");
    MF_CHECK_ARG(!coded || (segments[s].data != nullptr && segments[s].code_scales != nullptr &&
                            segments[s].code_stride >= dim && segments[s].code_stride % 64 == 0),
                 "search: int8 codes need their f32 rows, scales and a stride that is a multiple of 64");
    MF_CHECK_ARG(s == 0 || segments[s].first_row >= segments[s - 1].first_row + segments[s - 1].n_rows,
                 "search: segments out of order");
    total_rows += segments[s].n_rows;
  }
  ValidateSearch(total_rows, dim, params, out);
  MF_CHECK_ARG(SimdLevelSupported(level), "search: SIMD level not supported by this CPU");
  if (params.n_queries == 0) return;
  // Batches are bound by arithmetic: without VNNI the f32 rows' GEMM path answers them directly.
  const bool batch = params.n_queries >= kMinQueriesForGemm;
  if (coded && total_rows > 0 && (!batch || KernelsFor(level).score_group_i8 != nullptr)) {
    RunInt8Search(segments, n_segments, total_rows, dim, params, out, level, bound);
  } else {
    RunExactSearch(segments, n_segments, total_rows, dim, params, out, level);
  }
}

}  // namespace

const SearchKernels& KernelsFor(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return Avx512Kernels();
    case SimdLevel::kAvx2: return Avx2Kernels();
    default: return ScalarKernels();
  }
}

SimdLevel DetectSimdLevel() {
  static const SimdLevel level = [] {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return SimdLevel::kAvx512;
    // F16C (half conversions of f16 galleries) comes with every AVX2 CPU; checked all the same
    // (cpuid leaf 1, ECX bit 29: clang's __builtin_cpu_supports does not know "f16c").
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) return SimdLevel::kAvx2;
#endif
    return SimdLevel::kScalar;
  }();
  return level;
}

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kAvx2: return "avx2";
    default: return "scalar";
  }
}

bool SimdLevelSupported(SimdLevel level) {
  // avx512f and avx512bw imply avx2 and fma on every CPU that has them.
  return static_cast<int>(level) <= static_cast<int>(DetectSimdLevel());
}

void SearchSegments(const RowSegment* segments, size_t n_segments, size_t dim,
                    const SearchParams& params, TopKOutput out, SimdLevel level, Int8Bound bound) {
  try {
    RunSearch(segments, n_segments, dim, params, out, level, bound);
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kOutOfMemory, "search: out of memory");
  }
}

void ExactTopKAtLevel(SimdLevel level, const float* matrix, size_t n_rows, size_t dim,
                      const uint8_t* live, const SearchParams& params, TopKOutput out) {
  RowSegment segment;
  segment.data = matrix;
  segment.n_rows = n_rows;
  segment.live = live;
  SearchSegments(&segment, 1, dim, params, out, level);
}

void ExactTopK(const float* matrix, size_t n_rows, size_t dim, const uint8_t* live,
               const SearchParams& params, TopKOutput out) {
  ExactTopKAtLevel(DetectSimdLevel(), matrix, n_rows, dim, live, params, out);
}

}  // namespace maskface
