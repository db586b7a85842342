// Exact cosine top-k over an fp16 gallery on the GPU.
//
// Two ways to get scores, one way to select:
//  - scan (a few queries): each block streams a contiguous range of rows once per query, 8 lanes
//    per row with 16-byte loads, fp32 accumulation against the query held in shared memory. This
//    path is bandwidth bound and the one that single-query latency depends on.
//  - batched (many queries): 64-query x 128-row score tiles on tensor cores (WMMA, fp16 inputs,
//    fp32 accumulation) written to a chunk-sized score buffer, then selected per query. fp32
//    queries are split into hi + lo halves (two MMAs), so scores keep fp32 query precision.
//    This is the correctness-first version: no cp.async pipelining, no fused selection in the
//    MMA epilogue, one pass over the gallery per 64 queries.
//  - selection: every block keeps a best-first list in shared memory plus a candidate buffer;
//    a candidate must beat the current k-th best (the gate) to enter, and a full buffer is merged
//    into the list by a bitonic sort. Blocks write sorted partial lists, which are merged by the
//    same code (a tree of merges when they are many).
//
// Ties: a hit is one 64-bit key, the score's order-preserving bits above the complement of the
// row, so "larger key" means "higher score, then lower row" and every comparison is exact and
// total: equal scores resolve to the lower row wherever the two hits meet. -0 is folded into +0.
//
// Selection is instantiated for three list capacities (k <= 32, <= 128, <= 1024) only.
#include <cuda_fp16.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "cuda/cuda_check.h"
#include "cuda/launchers.h"

namespace maskface::cuda {
namespace {

using HitKey = unsigned long long;

constexpr int kThreads = 256;

// ---- hit keys -------------------------------------------------------------------------------

__device__ __forceinline__ HitKey EncodeHit(float score, int64_t row) {
  if (score == 0.0f) score = 0.0f;  // -0 ties with +0
  uint32_t bits = __float_as_uint(score);
  bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return (static_cast<HitKey>(bits) << 32) | static_cast<uint32_t>(~static_cast<uint32_t>(row));
}

__device__ __forceinline__ float DecodeScore(HitKey key) {
  uint32_t bits = static_cast<uint32_t>(key >> 32);
  bits = (bits & 0x80000000u) ? (bits & 0x7fffffffu) : ~bits;
  return __uint_as_float(bits);
}

__device__ __forceinline__ int32_t DecodeRow(HitKey key) {
  return static_cast<int32_t>(~static_cast<uint32_t>(key));
}
// Every real hit's key is > 0 (even score -inf has high word 0x007fffff): 0 marks an empty slot.
constexpr HitKey kEmptyKey = 0;

// ---- block-wide selection -----------------------------------------------------------------

// kListCap: the best-first list (>= k); kSortSize: list + candidate buffer, a power of two.
template <int kListCapValue, int kSortSizeValue>
struct Bucket {
  static constexpr int kListCap = kListCapValue;
  static constexpr int kSortSize = kSortSizeValue;
  static constexpr int kBufferCap = kSortSize - kListCap;
  static_assert((kSortSize & (kSortSize - 1)) == 0, "bitonic sort needs a power of two");
  static_assert(kBufferCap >= kThreads, "a round (one candidate per thread) must fit the buffer");
};
using BucketK32 = Bucket<32, 512>;
using BucketK128 = Bucket<128, 512>;
using BucketK1024 = Bucket<1024, 2048>;

// Sorts keys[0, n) in descending order; all kThreads threads call it, after a barrier.
template <int n>
__device__ void BitonicSortDescending(HitKey* keys) {
  for (int size = 2; size <= n; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = threadIdx.x; i < n / 2; i += kThreads) {
        const int lo = 2 * i - (i & (stride - 1));
        const int hi = lo + stride;
        const bool descending = (lo & size) == 0;  // the last stage (size == n) is all descending
        const HitKey a = keys[lo];
        const HitKey b = keys[hi];
        if ((a < b) == descending) {
          keys[lo] = b;
          keys[hi] = a;
        }
      }
      __syncthreads();
    }
  }
}

// The selection state of one block, in shared memory:
//   keys[0, kListCap)          best hits so far, best first (0 = empty)
//   keys[kListCap, kSortSize)  candidates of the rounds since the last merge
//   gate                       keys[k - 1] after the last merge: a candidate must exceed it
// Work comes in rounds: each thread pushes at most one candidate per round, then all threads
// call EndRound, which merges when another round might overflow the buffer.
template <class B>
struct BlockSelect {
  HitKey* keys;
  int* count;
  HitKey* gate;

  __device__ void Init() {
    for (int i = threadIdx.x; i < B::kSortSize; i += kThreads) keys[i] = kEmptyKey;
    if (threadIdx.x == 0) {
      *count = 0;
      *gate = kEmptyKey;
    }
    __syncthreads();
  }

  // Returns the buffer slot taken (the caller has checked key > *gate).
  __device__ int Push(HitKey key) {
    const int slot = atomicAdd(count, 1);
    keys[B::kListCap + slot] = key;
    return slot;
  }

  __device__ void Merge(int k) {
    BitonicSortDescending<B::kSortSize>(keys);
    if (threadIdx.x == 0) {
      *gate = keys[k - 1];
      *count = 0;
    }
    for (int i = B::kListCap + threadIdx.x; i < B::kSortSize; i += kThreads) keys[i] = kEmptyKey;
    __syncthreads();
  }

  // slot: the largest slot this thread took this round, or -1. The slots of a round are
  // 0 .. count-1, so "some thread's slot >= limit" is "count > limit"; taking the OR over the
  // threads' own slots (not a read of *count, which late threads could still be changing)
  // gives every thread the same answer at the same barrier.
  __device__ void EndRound(int slot, int per_round, int k) {
    if (__syncthreads_or(slot >= B::kBufferCap - per_round)) Merge(k);
  }

  __device__ void Finish(int k) {
    __syncthreads();
    if (*count > 0) Merge(k);  // no pushes after the barrier: every thread reads the same count
  }
};

// ---- scan path: streaming scores for a few queries ---------------------------------------

constexpr int kLanesPerRow = 8;     // 8 lanes x 16 bytes = 128 contiguous bytes per row and load
constexpr int kRowsPerGroup = 4;    // rows in flight per lane group
constexpr int kScanRowsPerRound = kThreads / kLanesPerRow * kRowsPerGroup;  // 128
constexpr int kScanBlocksPerSm = 4;

struct ScanArgs {
  const uint4* rows;  // row r, chunk c (8 halfs) at rows[r * stride_chunks + c]
  const uint8_t* live;
  int64_t n_rows;
  int stride_chunks;
  int dim;
  const void* queries;  // this pass's first query
  int query_f16;
  int64_t query_stride;
  int k;
  float threshold;
  int64_t rows_per_block;
  HitKey* partials;  // [query][gridDim.x][k]
};

__device__ __forceinline__ float HalfBits(uint32_t bits) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
}

// acc + <8 halfs, 8 floats>
__device__ __forceinline__ float Dot8(const uint4& v, const float4& lo, const float4& hi, float acc) {
  acc = fmaf(HalfBits(v.x), lo.x, acc);
  acc = fmaf(HalfBits(v.x >> 16), lo.y, acc);
  acc = fmaf(HalfBits(v.y), lo.z, acc);
  acc = fmaf(HalfBits(v.y >> 16), lo.w, acc);
  acc = fmaf(HalfBits(v.z), hi.x, acc);
  acc = fmaf(HalfBits(v.z >> 16), hi.y, acc);
  acc = fmaf(HalfBits(v.w), hi.z, acc);
  acc = fmaf(HalfBits(v.w >> 16), hi.w, acc);
  return acc;
}

__device__ __forceinline__ float LoadQueryValue(const void* queries, int f16, int64_t at) {
  return f16 ? __half2float(static_cast<const __half*>(queries)[at]) : static_cast<const float*>(queries)[at];
}

// grid: (blocks over the rows, queries). Dynamic shared memory: the selection keys, then the
// query as floats, zero-padded to the row stride.
template <class B>
__global__ void __launch_bounds__(kThreads) cosine_scan_kernel(const ScanArgs a) {
  extern __shared__ __align__(16) unsigned char shared[];
  HitKey* keys = reinterpret_cast<HitKey*>(shared);
  float* query = reinterpret_cast<float*>(shared + B::kSortSize * sizeof(HitKey));
  __shared__ int count;
  __shared__ HitKey gate;

  const int64_t q = blockIdx.y;
  const int stride = a.stride_chunks * 8;
  for (int d = threadIdx.x; d < stride; d += kThreads)
    query[d] = d < a.dim ? LoadQueryValue(a.queries, a.query_f16, q * a.query_stride + d) : 0.0f;
  BlockSelect<B> select{keys, &count, &gate};
  select.Init();  // its barrier publishes the query too

  const float4* query4 = reinterpret_cast<const float4*>(query);
  const int lane = threadIdx.x % kLanesPerRow;
  const int group = threadIdx.x / kLanesPerRow;
  const int64_t begin = blockIdx.x * a.rows_per_block;
  const int64_t end = min(a.n_rows, begin + a.rows_per_block);
  for (int64_t base = begin; base < end; base += kScanRowsPerRound) {
    const int64_t first = base + group * kRowsPerGroup;
    const uint4* chunks = a.rows + first * a.stride_chunks;
    float acc[kRowsPerGroup] = {};
    // Lanes take chunks lane, lane + 8, ...: each load instruction of a group reads 128
    // contiguous bytes of one row. Rows past the end are not read.
#pragma unroll 2
    for (int c = lane; c < a.stride_chunks; c += kLanesPerRow) {
      const float4 q_lo = query4[2 * c];
      const float4 q_hi = query4[2 * c + 1];
      uint4 v[kRowsPerGroup];
#pragma unroll
      for (int u = 0; u < kRowsPerGroup; ++u)
        v[u] = first + u < end ? __ldg(chunks + u * a.stride_chunks + c) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int u = 0; u < kRowsPerGroup; ++u) acc[u] = Dot8(v[u], q_lo, q_hi, acc[u]);
    }
    // Sum over the group's 8 lanes (xor offsets < 8 stay inside the group); all 32 lanes of the
    // warp are here, whatever their chunk counts were.
#pragma unroll
    for (int u = 0; u < kRowsPerGroup; ++u) {
#pragma unroll
      for (int offset = kLanesPerRow / 2; offset > 0; offset >>= 1)
        acc[u] += __shfl_xor_sync(0xffffffffu, acc[u], offset);
    }
    // Lane u of the group offers row first + u (a select, not a dynamic register index).
    float score = acc[0];
#pragma unroll
    for (int u = 1; u < kRowsPerGroup; ++u) score = lane == u ? acc[u] : score;
    const int64_t row = first + lane;
    int slot = -1;
    if (lane < kRowsPerGroup && row < end && score >= a.threshold) {  // NaN fails here
      const HitKey key = EncodeHit(score, row);
      // The live flag is read only for rows that would enter, as on the CPU.
      if (key > gate && (a.live == nullptr || a.live[row] != 0)) slot = select.Push(key);
    }
    select.EndRound(slot, kScanRowsPerRound, a.k);
  }
  select.Finish(a.k);
  HitKey* out = a.partials + (q * gridDim.x + blockIdx.x) * a.k;
  for (int i = threadIdx.x; i < a.k; i += kThreads) out[i] = keys[i];
}

// ---- selection over scores or key lists ----------------------------------------------------

struct SelectArgs {
  // Input, either dense scores (one row per item: item i is row first_row + i) ...
  const float* scores;  // [query][scores_stride]
  int64_t scores_stride;
  int64_t first_row;
  const uint8_t* live;
  float threshold;
  // ... or sorted key lists laid end to end.
  const HitKey* keys;   // [query][keys_stride]
  int64_t keys_stride;
  int64_t n_items;
  int64_t items_per_block;
  int k;
  // Output, either key lists: out_keys + query * out_keys_stride + (out_slot + blockIdx.x) * k ...
  HitKey* out_keys;
  int64_t out_keys_stride;
  int64_t out_slot;
  // ... or the final result of query out_first_query + blockIdx.y (then gridDim.x == 1).
  float* out_scores;
  int32_t* out_rows;
  uint32_t* out_counts;
  int64_t out_first_query;
};

__device__ __forceinline__ HitKey ItemKey(const SelectArgs& a, int64_t q, int64_t i, HitKey gate, float raw_score,
                                          HitKey raw_key) {
  if (a.scores == nullptr) return raw_key;
  if (!(raw_score >= a.threshold)) return kEmptyKey;  // NaN fails here
  const int64_t row = a.first_row + i;
  const HitKey key = EncodeHit(raw_score, row);
  if (key > gate && a.live != nullptr && a.live[row] == 0) return kEmptyKey;
  return key;
}

// grid: (blocks over the items, queries). Each round, every thread takes one item; the next
// round's item is loaded before this round's barrier, so the load latency overlaps it.
template <class B>
__global__ void __launch_bounds__(kThreads) topk_select_kernel(const SelectArgs a) {
  __shared__ HitKey keys[B::kSortSize];
  __shared__ int count;
  __shared__ HitKey gate;
  BlockSelect<B> select{keys, &count, &gate};
  select.Init();

  const int64_t q = blockIdx.y;
  const int64_t begin = blockIdx.x * a.items_per_block;
  const int64_t end = min(a.n_items, begin + a.items_per_block);
  auto load = [&](int64_t i, float* score, HitKey* key) {
    if (i >= end) return;
    if (a.scores != nullptr) *score = a.scores[q * a.scores_stride + i];
    else *key = a.keys[q * a.keys_stride + i];
  };
  float next_score = 0.0f;
  HitKey next_key = kEmptyKey;
  load(begin + threadIdx.x, &next_score, &next_key);
  for (int64_t base = begin; base < end; base += kThreads) {
    const int64_t i = base + threadIdx.x;
    const float score = next_score;
    const HitKey raw_key = next_key;
    next_key = kEmptyKey;
    load(i + kThreads, &next_score, &next_key);
    int slot = -1;
    if (i < end) {
      const HitKey key = ItemKey(a, q, i, gate, score, raw_key);
      if (key > gate) slot = select.Push(key);
    }
    select.EndRound(slot, kThreads, a.k);
  }
  select.Finish(a.k);

  if (a.out_keys != nullptr) {
    HitKey* out = a.out_keys + q * a.out_keys_stride + (a.out_slot + blockIdx.x) * a.k;
    for (int i = threadIdx.x; i < a.k; i += kThreads) out[i] = keys[i];
    return;
  }
  const int64_t query = a.out_first_query + q;
  for (int i = threadIdx.x; i < a.k; i += kThreads) {
    const HitKey key = keys[i];
    a.out_rows[query * a.k + i] = key == kEmptyKey ? -1 : DecodeRow(key);
    a.out_scores[query * a.k + i] = key == kEmptyKey ? -INFINITY : DecodeScore(key);
    // Keys are sorted with the empty ones last: the count is where they start.
    if (key != kEmptyKey && (i + 1 == a.k || keys[i + 1] == kEmptyKey)) a.out_counts[query] = i + 1;
  }
  if (threadIdx.x == 0 && keys[0] == kEmptyKey) a.out_counts[query] = 0;
}

// ---- batched path: tensor-core score tiles ----------------------------------------------------

constexpr int kTileQueries = 64;
constexpr int kTileRows = 128;
constexpr int kTileDepth = 64;               // halfs per stage
constexpr int kTileLd = kTileDepth + 8;      // padded row, in halfs (16 bytes of padding)
constexpr int kMaxPassQueries = 1024;        // queries per pass of the batched path
constexpr size_t kScoreBudgetBytes = size_t(256) << 20;  // the score buffer of one chunk
constexpr int kMaxSlicesPerChunk = 8;

struct TileArgs {
  const __half* query_hi;  // [q_pad][depth], zero-padded
  const __half* query_lo;  // the fp32 remainder, or null for fp16 queries
  int64_t depth;           // multiple of kTileDepth
  const uint4* rows;
  int stride_chunks;
  int64_t first_row;       // this chunk's first row
  int64_t n_rows;          // rows in this chunk
  float* scores;           // [q_pad][scores_stride]
  int64_t scores_stride;   // multiple of kTileRows
};

// One block: 64 queries x 128 rows; 8 warps, each 32 x 32 (2 x 2 fragments of 16 x 16).
// Scores = Q G^T: G's rows staged as [row][depth] are the col-major K x N operand.
__global__ void __launch_bounds__(kThreads) cosine_tile_kernel(const TileArgs a) {
  using namespace nvcuda;
  __shared__ __align__(128) __half tile_hi[kTileQueries * kTileLd];
  __shared__ __align__(128) __half tile_lo[kTileQueries * kTileLd];
  __shared__ __align__(128) __half tile_rows[kTileRows * kTileLd];

  const int warp = threadIdx.x / 32;
  const int warp_query = (warp / 4) * 32;
  const int warp_row = (warp % 4) * 32;
  const int64_t query0 = static_cast<int64_t>(blockIdx.y) * kTileQueries;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kTileRows;
  const bool split = a.query_lo != nullptr;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  constexpr int kChunksPerRow = kTileDepth / 8;
  for (int64_t d0 = 0; d0 < a.depth; d0 += kTileDepth) {
    for (int i = threadIdx.x; i < kTileQueries * kChunksPerRow; i += kThreads) {
      const int r = i / kChunksPerRow;
      const int c = i % kChunksPerRow;
      const int64_t at = (query0 + r) * a.depth + d0 + c * 8;
      *reinterpret_cast<uint4*>(&tile_hi[r * kTileLd + c * 8]) = *reinterpret_cast<const uint4*>(a.query_hi + at);
      if (split)
        *reinterpret_cast<uint4*>(&tile_lo[r * kTileLd + c * 8]) = *reinterpret_cast<const uint4*>(a.query_lo + at);
    }
    for (int i = threadIdx.x; i < kTileRows * kChunksPerRow; i += kThreads) {
      const int r = i / kChunksPerRow;
      const int c = i % kChunksPerRow;
      const int64_t row = row0 + r;
      const int64_t chunk = d0 / 8 + c;
      // Zeros past the chunk's rows and past the row stride (depth is rounded up to 64).
      uint4 v = make_uint4(0, 0, 0, 0);
      if (row < a.n_rows && chunk < a.stride_chunks) v = __ldg(a.rows + (a.first_row + row) * a.stride_chunks + chunk);
      *reinterpret_cast<uint4*>(&tile_rows[r * kTileLd + c * 8]) = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileDepth; kk += 16) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b[2];
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> q[2];
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &tile_rows[(warp_row + j * 16) * kTileLd + kk], kTileLd);
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(q[i], &tile_hi[(warp_query + i * 16) * kTileLd + kk], kTileLd);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], q[i], b[j], acc[i][j]);
      if (split) {
#pragma unroll
        for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(q[i], &tile_lo[(warp_query + i * 16) * kTileLd + kk], kTileLd);
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
          for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], q[i], b[j], acc[i][j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(a.scores + (query0 + warp_query + i * 16) * a.scores_stride + row0 + warp_row + j * 16,
                              acc[i][j], a.scores_stride, wmma::mem_row_major);
}

// Queries of one pass -> [q_pad][depth] halves, zero-padded; for fp32 queries also the remainder
// x - half(x) as a second half, so that hi + lo carries ~22 bits of each value.
__global__ void split_queries_kernel(const void* queries, int query_f16, int64_t query_stride, int64_t n_queries,
                                     int dim, int64_t depth, int64_t q_pad, __half* hi, __half* lo) {
  const int64_t total = q_pad * depth;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t q = i / depth;
    const int64_t d = i - q * depth;
    const float v = q < n_queries && d < dim ? LoadQueryValue(queries, query_f16, q * query_stride + d) : 0.0f;
    const __half h = __float2half_rn(v);
    hi[i] = h;
    if (lo != nullptr) lo[i] = __float2half_rn(v - __half2float(h));
  }
}

// ---- host side: plan, workspace, launches ------------------------------------------------------

constexpr int kScanMaxQueries = 8;        // AUTO: up to this many queries scan, more are batched
constexpr int kMaxScanPassQueries = 64;   // queries per pass of the scan path (gridDim.y)
constexpr int64_t kFinalMergeItems = 8192;  // above this, partial lists are merged in a tree
constexpr size_t kAlignment = 256;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t RoundUp(int64_t a, int64_t b) { return CeilDiv(a, b) * b; }
size_t AlignUp(size_t a) { return (a + kAlignment - 1) / kAlignment * kAlignment; }

int ListCap(int k) { return k <= 32 ? 32 : (k <= 128 ? 128 : 1024); }

struct Plan {
  bool batched = false;
  int64_t pass_queries = 0;  // queries per pass
  // scan
  int64_t scan_blocks = 0;
  int64_t rows_per_block = 0;
  int64_t merge_fan_in = 0;  // lists per block in a tree level
  // batched
  int64_t q_pad = 0;
  int64_t depth = 0;
  int64_t chunk_rows = 0;
  int64_t rows_per_slice = 0;
  int64_t slices = 0;
  bool split = false;
  // workspace byte offsets
  size_t lists_a = 0, lists_b = 0, query_hi = 0, query_lo = 0, scores = 0, total = 0;
};

int SmCount() {
  int device = 0;
  MF_CUDA_CHECK(cudaGetDevice(&device));
  int sms = 0;
  MF_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return std::max(sms, 1);
}

void Validate(const CosineTopKParams& p) {
  const GalleryView& g = p.gallery;
  MF_CHECK_ARG(g.dim >= 1 && g.dim <= MASKFACE_CUDA_MAX_DIM, "topk: gallery dim must be in [1, 4096]");
  MF_CHECK_ARG(g.row_stride >= g.dim && g.row_stride % 8 == 0,
               "topk: gallery row_stride must be >= dim and a multiple of 8 halfs");
  MF_CHECK_ARG(g.n_rows >= 0 && g.n_rows <= std::numeric_limits<int32_t>::max(),
               "topk: gallery n_rows must be in [0, 2^31 - 1] (int32 row indices)");
  MF_CHECK_ARG(g.n_rows == 0 || g.rows != nullptr, "topk: gallery rows is null");
  MF_CHECK_ARG(reinterpret_cast<uintptr_t>(g.rows) % 16 == 0, "topk: gallery rows must be 16-byte aligned");
  MF_CHECK_ARG(p.k >= 1 && p.k <= MASKFACE_CUDA_MAX_TOP_K, "topk: k must be in [1, 1024]");
  MF_CHECK_ARG(!std::isnan(p.threshold), "topk: threshold must not be NaN");
  MF_CHECK_ARG(p.n_queries >= 0, "topk: n_queries must be >= 0");
  MF_CHECK_ARG(p.query_dtype == MASKFACE_CUDA_F32 || p.query_dtype == MASKFACE_CUDA_F16,
               "topk: query_dtype must be f32 or f16");
  MF_CHECK_ARG(p.query_stride == 0 || p.query_stride >= g.dim, "topk: query_stride must be 0 or >= dim");
  MF_CHECK_ARG(p.path == MASKFACE_CUDA_TOPK_AUTO || p.path == MASKFACE_CUDA_TOPK_SCAN ||
                   p.path == MASKFACE_CUDA_TOPK_BATCHED,
               "topk: unknown path");
  MF_CHECK_ARG(p.n_queries <= std::numeric_limits<int64_t>::max() / MASKFACE_CUDA_MAX_TOP_K,
               "topk: n_queries too large");
}

Plan MakePlan(const CosineTopKParams& p, int sm_count) {
  Plan plan;
  const int64_t n_rows = p.gallery.n_rows;
  const int64_t k = p.k;
  plan.batched = p.path == MASKFACE_CUDA_TOPK_BATCHED ||
                 (p.path == MASKFACE_CUDA_TOPK_AUTO && p.n_queries > kScanMaxQueries);
  if (p.n_queries == 0) return plan;
  if (!plan.batched) {
    plan.pass_queries = std::min<int64_t>(p.n_queries, kMaxScanPassQueries);
    const int64_t target_blocks = static_cast<int64_t>(sm_count) * kScanBlocksPerSm;
    plan.rows_per_block = std::max<int64_t>(kScanRowsPerRound, RoundUp(CeilDiv(n_rows, target_blocks), kScanRowsPerRound));
    plan.scan_blocks = CeilDiv(n_rows, plan.rows_per_block);
    plan.merge_fan_in = std::max<int64_t>(2, kFinalMergeItems / k);
    const size_t lists_bytes = static_cast<size_t>(plan.pass_queries * plan.scan_blocks * k) * sizeof(HitKey);
    const size_t second_bytes =
        static_cast<size_t>(plan.pass_queries * CeilDiv(plan.scan_blocks, plan.merge_fan_in) * k) * sizeof(HitKey);
    plan.lists_a = 0;
    plan.lists_b = AlignUp(lists_bytes);
    plan.total = plan.lists_b + AlignUp(second_bytes);
    return plan;
  }
  plan.pass_queries = std::min<int64_t>(p.n_queries, kMaxPassQueries);
  plan.q_pad = RoundUp(plan.pass_queries, kTileQueries);
  plan.depth = RoundUp(p.gallery.dim, kTileDepth);
  plan.split = p.query_dtype == MASKFACE_CUDA_F32;
  const int64_t budget_rows = static_cast<int64_t>(kScoreBudgetBytes / (plan.q_pad * sizeof(float)));
  plan.chunk_rows = RoundUp(std::max<int64_t>(1, std::min(n_rows, budget_rows)), kTileRows);
  // Enough select blocks to fill the GPU when the pass has few queries.
  const int64_t wanted_slices = std::clamp<int64_t>(CeilDiv(2 * sm_count, plan.pass_queries), 1, kMaxSlicesPerChunk);
  plan.rows_per_slice = RoundUp(CeilDiv(plan.chunk_rows, wanted_slices), kThreads);
  plan.slices = CeilDiv(plan.chunk_rows, plan.rows_per_slice);
  // lists_a: per query, slot 0 = the running best list, slots 1.. = this chunk's slice lists.
  const size_t lists_bytes = static_cast<size_t>(plan.pass_queries * (1 + plan.slices) * k) * sizeof(HitKey);
  const size_t query_bytes = static_cast<size_t>(plan.q_pad * plan.depth) * sizeof(__half);
  plan.lists_a = 0;
  plan.query_hi = AlignUp(lists_bytes);
  plan.query_lo = plan.query_hi + AlignUp(query_bytes);
  plan.scores = plan.query_lo + (plan.split ? AlignUp(query_bytes) : 0);
  plan.total = plan.scores + AlignUp(static_cast<size_t>(plan.q_pad * plan.chunk_rows) * sizeof(float));
  return plan;
}

SelectArgs BaseSelectArgs(const CosineTopKParams& p) {
  SelectArgs s{};
  s.live = p.gallery.live;
  s.threshold = p.threshold;
  s.k = p.k;
  s.out_scores = p.out_scores;
  s.out_rows = p.out_rows;
  s.out_counts = p.out_counts;
  return s;
}

// The k bucket as a compile-time type: fn(BucketK32{}) etc.
template <typename Fn>
void WithBucket(int k, Fn&& fn) {
  switch (ListCap(k)) {
    case 32: fn(BucketK32{}); break;
    case 128: fn(BucketK128{}); break;
    default: fn(BucketK1024{}); break;
  }
}

void LaunchSelect(const SelectArgs& s, int64_t blocks, int64_t queries, cudaStream_t stream) {
  MF_CHECK_ARG(blocks <= std::numeric_limits<int32_t>::max() && queries <= 65535, "topk: grid too large");
  const dim3 grid(static_cast<unsigned>(std::max<int64_t>(blocks, 1)), static_cast<unsigned>(queries));
  WithBucket(s.k, [&](auto bucket) {
    using B = decltype(bucket);
    topk_select_kernel<B><<<grid, kThreads, 0, stream>>>(s);
    MF_CUDA_CHECK_LAST("topk_select_kernel");
  });
}

void RunScanPass(const CosineTopKParams& p, const Plan& plan, int64_t q0, int64_t nq, cudaStream_t stream) {
  char* workspace = static_cast<char*>(p.workspace);
  HitKey* lists[2] = {reinterpret_cast<HitKey*>(workspace + plan.lists_a),
                      reinterpret_cast<HitKey*>(workspace + plan.lists_b)};
  const int64_t k = p.k;
  const int64_t query_stride = p.query_stride != 0 ? p.query_stride : p.gallery.dim;
  const size_t query_bytes = p.query_dtype == MASKFACE_CUDA_F16 ? 2 : 4;
  if (plan.scan_blocks > 0) {
    ScanArgs a;
    a.rows = static_cast<const uint4*>(p.gallery.rows);
    a.live = p.gallery.live;
    a.n_rows = p.gallery.n_rows;
    a.stride_chunks = p.gallery.row_stride / 8;
    a.dim = p.gallery.dim;
    a.queries = static_cast<const char*>(p.queries) + q0 * query_stride * query_bytes;
    a.query_f16 = p.query_dtype == MASKFACE_CUDA_F16;
    a.query_stride = query_stride;
    a.k = p.k;
    a.threshold = p.threshold;
    a.rows_per_block = plan.rows_per_block;
    a.partials = lists[0];
    const dim3 grid(static_cast<unsigned>(plan.scan_blocks), static_cast<unsigned>(nq));
    WithBucket(p.k, [&](auto bucket) {
      using B = decltype(bucket);
      const size_t shared = B::kSortSize * sizeof(HitKey) + p.gallery.row_stride * sizeof(float);
      cosine_scan_kernel<B><<<grid, kThreads, shared, stream>>>(a);
      MF_CUDA_CHECK_LAST("cosine_scan_kernel");
    });
  }
  // Merge the blocks' lists: a tree while they are many, then one block per query.
  int64_t n_lists = plan.scan_blocks;
  int current = 0;
  while (n_lists > 1 && n_lists * k > kFinalMergeItems) {
    const int64_t merged = CeilDiv(n_lists, plan.merge_fan_in);
    SelectArgs s = BaseSelectArgs(p);
    s.keys = lists[current];
    s.keys_stride = n_lists * k;
    s.n_items = n_lists * k;
    s.items_per_block = plan.merge_fan_in * k;
    s.out_keys = lists[1 - current];
    s.out_keys_stride = merged * k;
    s.out_slot = 0;
    LaunchSelect(s, merged, nq, stream);
    n_lists = merged;
    current = 1 - current;
  }
  SelectArgs s = BaseSelectArgs(p);
  s.keys = lists[current];
  s.keys_stride = n_lists * k;
  s.n_items = n_lists * k;
  s.items_per_block = std::max<int64_t>(s.n_items, 1);
  s.out_first_query = q0;
  LaunchSelect(s, 1, nq, stream);
}

void RunBatchedPass(const CosineTopKParams& p, const Plan& plan, int64_t q0, int64_t nq, cudaStream_t stream) {
  char* workspace = static_cast<char*>(p.workspace);
  HitKey* lists = reinterpret_cast<HitKey*>(workspace + plan.lists_a);
  __half* query_hi = reinterpret_cast<__half*>(workspace + plan.query_hi);
  __half* query_lo = plan.split ? reinterpret_cast<__half*>(workspace + plan.query_lo) : nullptr;
  float* scores = reinterpret_cast<float*>(workspace + plan.scores);
  const int64_t k = p.k;
  const int64_t query_stride = p.query_stride != 0 ? p.query_stride : p.gallery.dim;
  const size_t query_bytes = p.query_dtype == MASKFACE_CUDA_F16 ? 2 : 4;
  const int64_t q_pad = RoundUp(nq, kTileQueries);

  split_queries_kernel<<<static_cast<unsigned>(std::min<int64_t>(CeilDiv(q_pad * plan.depth, kThreads), 4096)),
                         kThreads, 0, stream>>>(
      static_cast<const char*>(p.queries) + q0 * query_stride * query_bytes, p.query_dtype == MASKFACE_CUDA_F16,
      query_stride, nq, p.gallery.dim, plan.depth, q_pad, query_hi, query_lo);
  MF_CUDA_CHECK_LAST("split_queries_kernel");
  // The running lists (slot 0 of each query) start empty.
  const int64_t lists_stride = (1 + plan.slices) * k;
  MF_CUDA_CHECK(cudaMemsetAsync(lists, 0, static_cast<size_t>(nq * lists_stride) * sizeof(HitKey), stream));

  const int64_t n_rows = p.gallery.n_rows;
  const int64_t n_chunks = CeilDiv(n_rows, plan.chunk_rows);
  for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
    const int64_t first_row = chunk * plan.chunk_rows;
    const int64_t rows = std::min(plan.chunk_rows, n_rows - first_row);
    TileArgs t;
    t.query_hi = query_hi;
    t.query_lo = query_lo;
    t.depth = plan.depth;
    t.rows = static_cast<const uint4*>(p.gallery.rows);
    t.stride_chunks = p.gallery.row_stride / 8;
    t.first_row = first_row;
    t.n_rows = rows;
    t.scores = scores;
    t.scores_stride = plan.chunk_rows;
    const dim3 grid(static_cast<unsigned>(CeilDiv(rows, kTileRows)), static_cast<unsigned>(q_pad / kTileQueries));
    cosine_tile_kernel<<<grid, kThreads, 0, stream>>>(t);
    MF_CUDA_CHECK_LAST("cosine_tile_kernel");

    const int64_t slices = CeilDiv(rows, plan.rows_per_slice);
    SelectArgs s = BaseSelectArgs(p);
    s.scores = scores;
    s.scores_stride = plan.chunk_rows;
    s.first_row = first_row;
    s.n_items = rows;
    s.items_per_block = plan.rows_per_slice;
    s.out_keys = lists;
    s.out_keys_stride = lists_stride;
    s.out_slot = 1;
    LaunchSelect(s, slices, nq, stream);

    // Running list + this chunk's lists -> running list (or the result after the last chunk).
    // In place is safe: one block per query reads all its items before it writes.
    SelectArgs m = BaseSelectArgs(p);
    m.keys = lists;
    m.keys_stride = lists_stride;
    m.n_items = (1 + slices) * k;
    m.items_per_block = m.n_items;
    if (chunk + 1 < n_chunks) {
      m.out_keys = lists;
      m.out_keys_stride = lists_stride;
      m.out_slot = 0;
    } else {
      m.out_first_query = q0;
    }
    LaunchSelect(m, 1, nq, stream);
  }
  if (n_chunks == 0) {  // empty gallery: the result is the (empty) running list
    SelectArgs m = BaseSelectArgs(p);
    m.keys = lists;
    m.keys_stride = lists_stride;
    m.n_items = k;
    m.items_per_block = k;
    m.out_first_query = q0;
    LaunchSelect(m, 1, nq, stream);
  }
}

}  // namespace

size_t CosineTopKWorkspaceBytes(const CosineTopKParams& params) {
  Validate(params);
  return MakePlan(params, SmCount()).total;
}

void LaunchCosineTopK(const CosineTopKParams& p, cudaStream_t stream) {
  Validate(p);
  if (p.n_queries == 0) return;
  MF_CHECK_ARG(p.queries != nullptr, "topk: queries is null");
  MF_CHECK_ARG(p.out_scores != nullptr && p.out_rows != nullptr && p.out_counts != nullptr,
               "topk: an output buffer is null");
  const Plan plan = MakePlan(p, SmCount());
  MF_CHECK_ARG(p.workspace_bytes >= plan.total,
               "topk: workspace_bytes " + std::to_string(p.workspace_bytes) + " < the " +
                   std::to_string(plan.total) + " bytes maskface_cuda_topk_workspace_size asks for");
  MF_CHECK_ARG(plan.total == 0 || (p.workspace != nullptr && reinterpret_cast<uintptr_t>(p.workspace) % kAlignment == 0),
               "topk: workspace must be a 256-byte aligned device buffer");
  for (int64_t q0 = 0; q0 < p.n_queries; q0 += plan.pass_queries) {
    const int64_t nq = std::min(plan.pass_queries, p.n_queries - q0);
    if (plan.batched) RunBatchedPass(p, plan, q0, nq, stream);
    else RunScanPass(p, plan, q0, nq, stream);
  }
}

}  // namespace maskface::cuda
