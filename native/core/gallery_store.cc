#include "core/gallery_store.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "core/cpu_search.h"
#include "core/error.h"
#include "core/int8_codes.h"

namespace maskface {
namespace {

constexpr size_t kDefaultBlockBytes = size_t(16) << 20;
constexpr size_t kRowAlignment = 64;  // a cache line, and one zmm load

struct AlignedDelete {
  void operator()(uint8_t* p) const { ::operator delete(p, std::align_val_t(kRowAlignment)); }
};

template <typename Fn>
auto RethrowingOutOfMemory(const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kOutOfMemory, std::string(what) + ": out of memory");
  }
}

uint8_t* AllocateAligned(size_t bytes) {
  return bytes == 0 ? nullptr : static_cast<uint8_t*>(::operator new(bytes, std::align_val_t(kRowAlignment)));
}

}  // namespace

// rows_per_block vectors, an i8 store's codes and scales, and the live flags. Blocks are never
// moved or freed before the store, so a search can read them without holding the mutex.
struct GalleryStore::Block {
  Block(size_t rows, size_t vector_bytes, size_t code_stride)
      : data(AllocateAligned(rows * vector_bytes)),
        codes(AllocateAligned(rows * code_stride)),
        scales(code_stride != 0 ? new float[rows]() : nullptr),
        live(new std::atomic<uint8_t>[rows]()) {}

  std::unique_ptr<uint8_t, AlignedDelete> data;
  std::unique_ptr<uint8_t, AlignedDelete> codes;
  std::unique_ptr<float[]> scales;
  std::unique_ptr<std::atomic<uint8_t>[]> live;
};

GalleryStore::GalleryStore(size_t dim, size_t rows_per_block, VectorStorage storage)
    : dim_(dim),
      storage_(storage),
      code_stride_(storage == VectorStorage::kI8 ? Int8CodeStride(dim) : 0),
      rows_per_block_(rows_per_block != 0 ? rows_per_block : std::max<size_t>(1, kDefaultBlockBytes / std::max<size_t>(1, row_bytes()))) {
  MF_CHECK_ARG(dim > 0, "GalleryStore: dim must be > 0");
}

GalleryStore::~GalleryStore() = default;

// Rows written so far: blocks are reserved whole, but the pages of rows never written are not
// touched, so they cost address space, not memory.
size_t GalleryStore::bytes() const { return rows() * (row_bytes() + sizeof(uint8_t)); }

size_t GalleryStore::capacity() const {
  std::lock_guard<std::mutex> lock(blocks_mutex_);
  return blocks_.size() * rows_per_block_;
}

void GalleryStore::AddBlocksUpTo(size_t rows) {
  const size_t needed = (rows + rows_per_block_ - 1) / rows_per_block_;
  size_t have;
  {
    std::lock_guard<std::mutex> lock(blocks_mutex_);
    have = blocks_.size();
  }
  if (have >= needed) return;
  // Allocate outside the lock so a search taking its snapshot is not held up; Put and Reserve
  // come from one thread at a time, so nobody else adds blocks meanwhile.
  std::vector<std::unique_ptr<Block>> fresh;
  for (size_t b = have; b < needed; ++b) fresh.push_back(std::make_unique<Block>(rows_per_block_, vector_bytes(), code_stride_));
  std::lock_guard<std::mutex> lock(blocks_mutex_);
  blocks_.reserve(needed);
  for (auto& block : fresh) blocks_.push_back(std::move(block));
}

GalleryStore::Block* GalleryStore::BlockFor(size_t row) const {
  std::lock_guard<std::mutex> lock(blocks_mutex_);
  return blocks_[row / rows_per_block_].get();
}

void GalleryStore::Reserve(size_t rows) {
  RethrowingOutOfMemory("GalleryStore::Reserve", [&] { AddBlocksUpTo(rows); });
}

void GalleryStore::Put(size_t row, const float* vec) {
  MF_CHECK_ARG(vec != nullptr, "GalleryStore::Put: vector is null");
  const size_t n_rows = rows();
  MF_CHECK_ARG(row <= n_rows, "GalleryStore::Put: row > rows()");
  if (row == n_rows) RethrowingOutOfMemory("GalleryStore::Put", [&] { AddBlocksUpTo(row + 1); });
  Block* block = BlockFor(row);
  const size_t slot = row % rows_per_block_;
  // Codes first: a vector they refuse (not finite) leaves the row as it was.
  if (storage_ == VectorStorage::kI8) {
    const Int8RowCode code =
        EncodeInt8Row(vec, dim_, code_stride_, reinterpret_cast<int8_t*>(block->codes.get() + slot * code_stride_));
    block->scales[slot] = code.scale;
    // Raised before the row's flag or rows_ publishes it, so a search that sees the row also
    // sees a bound that covers it.
    if (code.error_norm > code_error_max_.load(std::memory_order_relaxed)) code_error_max_.store(code.error_norm, std::memory_order_relaxed);
    if (code.code_norm > code_norm_max_.load(std::memory_order_relaxed)) code_norm_max_.store(code.code_norm, std::memory_order_relaxed);
  }
  uint8_t* out = block->data.get() + slot * vector_bytes();
  if (storage_ == VectorStorage::kF16) {
    ActiveKernels().to_f16(vec, dim_, reinterpret_cast<uint16_t*>(out));
  } else {
    std::memcpy(out, vec, dim_ * sizeof(float));
  }
  if (block->live[slot].exchange(1, std::memory_order_acq_rel) == 0) live_.fetch_add(1, std::memory_order_relaxed);
  // Publishes the row: a search that sees rows() > row also sees its vector and flag.
  if (row == n_rows) rows_.store(n_rows + 1, std::memory_order_release);
}

bool GalleryStore::Kill(size_t row) {
  MF_CHECK_ARG(row < rows(), "GalleryStore::Kill: row >= rows()");
  Block* block = BlockFor(row);
  if (block->live[row % rows_per_block_].exchange(0, std::memory_order_acq_rel) == 0) return false;
  live_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

bool GalleryStore::IsLive(size_t row) const {
  if (row >= rows()) return false;
  return BlockFor(row)->live[row % rows_per_block_].load(std::memory_order_acquire) != 0;
}

void GalleryStore::Get(size_t row, float* out) const {
  MF_CHECK_ARG(out != nullptr, "GalleryStore::Get: output is null");
  MF_CHECK_ARG(row < rows(), "GalleryStore::Get: row >= rows()");
  const uint8_t* in = BlockFor(row)->data.get() + (row % rows_per_block_) * vector_bytes();
  if (storage_ == VectorStorage::kF16) {
    ActiveKernels().to_f32(reinterpret_cast<const uint16_t*>(in), dim_, out);
  } else {
    std::memcpy(out, in, dim_ * sizeof(float));
  }
}

std::vector<GalleryStore::Block*> GalleryStore::SnapshotBlocks(size_t* n_rows) const {
  // rows_ is published after its block was added, so every block below it exists already.
  *n_rows = rows();
  const size_t n_blocks = (*n_rows + rows_per_block_ - 1) / rows_per_block_;
  std::vector<Block*> blocks(n_blocks);
  std::lock_guard<std::mutex> lock(blocks_mutex_);
  for (size_t b = 0; b < n_blocks; ++b) blocks[b] = blocks_[b].get();
  return blocks;
}

void GalleryStore::Search(const SearchParams& params, TopKOutput out) const {
  RethrowingOutOfMemory("GalleryStore::Search", [&] {
    size_t n_rows = 0;
    const std::vector<Block*> blocks = SnapshotBlocks(&n_rows);
    // The live flags as of now, copied (1 byte a row against the row's 4 * dim): a row dead now
    // is never reported, even if it is written again while the scan runs. The scan computes a
    // score before it looks at the flag, so reading the flags live would let a row rewritten
    // mid-scan (a torn vector) be reported as its new self. Rows live now are not rewritten
    // before this search ends: lib/ reuses a row only after the searches that started before
    // its removal have ended.
    std::vector<uint8_t> live(n_rows);
    std::vector<RowSegment> segments(blocks.size());
    for (size_t b = 0; b < blocks.size(); ++b) {
      if (storage_ == VectorStorage::kF16) {
        segments[b].data_f16 = reinterpret_cast<const uint16_t*>(blocks[b]->data.get());
      } else {
        segments[b].data = reinterpret_cast<const float*>(blocks[b]->data.get());
      }
      if (storage_ == VectorStorage::kI8) {
        segments[b].codes = reinterpret_cast<const int8_t*>(blocks[b]->codes.get());
        segments[b].code_scales = blocks[b]->scales.get();
        segments[b].code_stride = code_stride_;
      }
      segments[b].first_row = b * rows_per_block_;
      segments[b].n_rows = std::min(rows_per_block_, n_rows - segments[b].first_row);
      uint8_t* flags = live.data() + segments[b].first_row;
      for (size_t i = 0; i < segments[b].n_rows; ++i) flags[i] = blocks[b]->live[i].load(std::memory_order_acquire);
      segments[b].live = flags;
    }
    // Read after the flags: every row live in the snapshot was covered when it was published.
    const Int8Bound bound{code_error_max_.load(std::memory_order_acquire), code_norm_max_.load(std::memory_order_acquire)};
    SearchStats stats;
    SearchParams counted = params;
    counted.stats = &stats;
    SearchSegments(segments.data(), segments.size(), dim_, counted, out, DetectSimdLevel(), bound);
    {
      std::lock_guard<std::mutex> lock(stats_mutex_);
      search_totals_ += stats;
    }
    if (params.stats != nullptr) *params.stats += stats;
  });
}

SearchStats GalleryStore::search_stats() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return search_totals_;
}

}  // namespace maskface
