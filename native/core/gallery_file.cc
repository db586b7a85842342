#include "core/gallery_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <new>
#include <optional>

#include "core/error.h"
#include "core/cpu_search.h"
#include "core/file_io.h"
#include "core/half.h"

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace maskface::gallery_file {
namespace {

using file_io::PendingFile;
using file_io::ThrowCorrupt;
using file_io::ThrowIo;

// Sections are read into and written from their buffers as they are in the file.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "gallery files are little-endian: little-endian hosts only");
static_assert(sizeof(size_t) == 8, "a section of a gallery file may be larger than 4 GiB");

constexpr char kHeaderMagic[8] = {'M', 'F', 'G', 'A', 'L', 'L', 'R', 'Y'};
constexpr char kFooterMagic[8] = {'M', 'F', 'G', 'A', 'L', 'E', 'N', 'D'};
constexpr uint32_t kMaxDim = 65536;
constexpr uint64_t kMaxMetaBytes = uint64_t(1) << 20;
constexpr uint32_t kMaxHeaderBytes = 1 << 16;  // of any format version
constexpr size_t kChunkBytes = size_t(1) << 20;  // reads and writes of the large sections

// Byte offsets of the header's fields.
namespace header_at {
constexpr size_t kMagic = 0;
constexpr size_t kVersion = 8;
constexpr size_t kHeaderBytes = 12;
constexpr size_t kStorage = 16;
constexpr size_t kDim = 20;
constexpr size_t kCount = 24;
constexpr size_t kMetaOffset = 32;
constexpr size_t kMetaBytes = 40;
constexpr size_t kIdsOffset = 48;
constexpr size_t kIdsBytes = 56;
constexpr size_t kVectorsOffset = 64;
constexpr size_t kVectorsBytes = 72;
constexpr size_t kReserved = 80;
constexpr size_t kChecksum = 120;
}  // namespace header_at

// Byte offsets of the footer's fields.
namespace footer_at {
constexpr size_t kMagic = 0;
constexpr size_t kMetaChecksum = 8;
constexpr size_t kIdsChecksum = 16;
constexpr size_t kVectorsChecksum = 24;
constexpr size_t kFileBytes = 32;
constexpr size_t kReserved = 40;
constexpr size_t kChecksum = 56;
}  // namespace footer_at

using Header = std::array<uint8_t, kHeaderBytes>;
using Footer = std::array<uint8_t, kFooterBytes>;

using file_io::LoadU32;
using file_io::LoadU64;
using file_io::StoreU32;
using file_io::StoreU64;

// The offset of the first non-zero byte of [data, data + size), if any.
std::optional<size_t> FirstNonZero(const uint8_t* data, size_t size) {
  const uint8_t* end = data + size;
  const uint8_t* found = std::find_if(data, end, [](uint8_t b) { return b != 0; });
  if (found == end) return std::nullopt;
  return static_cast<size_t>(found - data);
}

class StreamingChecksum {
 public:
  StreamingChecksum() {
    XXH3_INITSTATE(&state_);
    XXH3_64bits_reset(&state_);
  }
  void Update(const void* data, size_t size) { XXH3_64bits_update(&state_, data, size); }
  uint64_t Digest() const { return XXH3_64bits_digest(&state_); }

 private:
  XXH3_state_t state_;
};

// Where each section of a file lies; the meta section always starts at kHeaderBytes.
struct Layout {
  Storage storage = Storage::kF32;
  uint32_t dim = 0;
  uint64_t count = 0;
  uint64_t meta_bytes = 0;
  uint64_t ids_offset = 0;
  uint64_t ids_bytes = 0;
  uint64_t padding_bytes = 0;  // zeros between the ids and the aligned vectors
  uint64_t vectors_offset = 0;
  uint64_t vectors_bytes = 0;
  uint64_t file_bytes = 0;
};

// The layout of a file with these sizes, or nullopt when it would be larger than 2^64 bytes.
size_t ValueBytes(Storage storage) { return storage == Storage::kF16 ? sizeof(uint16_t) : sizeof(float); }

std::optional<Layout> PlanLayout(Storage storage, uint32_t dim, uint64_t count, uint64_t meta_bytes, uint64_t ids_bytes) {
  Layout l;
  l.storage = storage;
  l.dim = dim;
  l.count = count;
  l.meta_bytes = meta_bytes;
  l.ids_bytes = ids_bytes;
  uint64_t ids_end, aligned_ids_end, vectors_end;
  if (__builtin_add_overflow(uint64_t{kHeaderBytes}, meta_bytes, &l.ids_offset) ||
      __builtin_add_overflow(l.ids_offset, ids_bytes, &ids_end) ||
      __builtin_add_overflow(ids_end, uint64_t{kVectorAlignment - 1}, &aligned_ids_end) ||
      __builtin_mul_overflow(count, uint64_t{dim} * ValueBytes(storage), &l.vectors_bytes)) {
    return std::nullopt;
  }
  l.vectors_offset = aligned_ids_end / kVectorAlignment * kVectorAlignment;
  l.padding_bytes = l.vectors_offset - ids_end;
  if (__builtin_add_overflow(l.vectors_offset, l.vectors_bytes, &vectors_end) ||
      __builtin_add_overflow(vectors_end, uint64_t{kFooterBytes}, &l.file_bytes)) {
    return std::nullopt;
  }
  return l;
}

struct SectionChecksums {
  uint64_t meta = 0;
  uint64_t ids = 0;
  uint64_t vectors = 0;
};

Header EncodeHeader(const Layout& l) {
  Header h{};
  std::memcpy(&h[header_at::kMagic], kHeaderMagic, sizeof kHeaderMagic);
  StoreU32(&h[header_at::kVersion], kFormatVersion);
  StoreU32(&h[header_at::kHeaderBytes], kHeaderBytes);
  StoreU32(&h[header_at::kStorage], static_cast<uint32_t>(l.storage));
  StoreU32(&h[header_at::kDim], l.dim);
  StoreU64(&h[header_at::kCount], l.count);
  StoreU64(&h[header_at::kMetaOffset], kHeaderBytes);
  StoreU64(&h[header_at::kMetaBytes], l.meta_bytes);
  StoreU64(&h[header_at::kIdsOffset], l.ids_offset);
  StoreU64(&h[header_at::kIdsBytes], l.ids_bytes);
  StoreU64(&h[header_at::kVectorsOffset], l.vectors_offset);
  StoreU64(&h[header_at::kVectorsBytes], l.vectors_bytes);
  StoreU64(&h[header_at::kChecksum], Checksum(h.data(), header_at::kChecksum));
  return h;
}

Footer EncodeFooter(const SectionChecksums& sums, uint64_t file_bytes) {
  Footer f{};
  std::memcpy(&f[footer_at::kMagic], kFooterMagic, sizeof kFooterMagic);
  StoreU64(&f[footer_at::kMetaChecksum], sums.meta);
  StoreU64(&f[footer_at::kIdsChecksum], sums.ids);
  StoreU64(&f[footer_at::kVectorsChecksum], sums.vectors);
  StoreU64(&f[footer_at::kFileBytes], file_bytes);
  StoreU64(&f[footer_at::kChecksum], Checksum(f.data(), footer_at::kChecksum));
  return f;
}

// ---- reading -------------------------------------------------------------------------------

// Where ReadContents gets a file's bytes: a file descriptor (Load) or memory (Parse).
class Source {
 public:
  virtual ~Source() = default;
  virtual uint64_t size() const = 0;
  // Copies [offset, offset + size) of the file to `out`; the caller keeps the range inside size().
  virtual void Read(uint64_t offset, void* out, size_t size) = 0;
  const std::string& subject() const { return subject_; }

 protected:
  explicit Source(std::string subject) : subject_(std::move(subject)) {}

 private:
  std::string subject_;  // for error messages
};

class MemorySource : public Source {
 public:
  MemorySource(const uint8_t* data, size_t size) : Source("Gallery file"), data_(data), size_(size) {}
  uint64_t size() const override { return size_; }
  void Read(uint64_t offset, void* out, size_t size) override { std::memcpy(out, data_ + offset, size); }

 private:
  const uint8_t* data_;
  size_t size_;
};

class FileSource : public Source {
 public:
  explicit FileSource(const std::string& path) : Source("Gallery file " + path), path_(path) {
    // O_NONBLOCK: opening a FIFO would otherwise wait for a writer; regular files ignore it.
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) ThrowIo("Cannot open gallery file " + path, path, errno);
    // A folder opens, and other kinds of file have no meaningful size.
    struct stat st;
    int error = fstat(fd_, &st) != 0 ? errno : 0;
    if (error == 0 && !S_ISREG(st.st_mode)) error = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    if (error != 0) {
      close(fd_);  // the destructor does not run when the constructor throws
      Fail(error);
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~FileSource() override { close(fd_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  uint64_t size() const override { return size_; }

  void Read(uint64_t offset, void* out, size_t size) override {
    auto* bytes = static_cast<uint8_t*>(out);
    while (size > 0) {
      const ssize_t n = pread(fd_, bytes, size, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        Fail(errno);
      }
      if (n == 0) ThrowCorrupt(subject(), "file", offset, "the file ended early while it was read (it shrank?)");
      bytes += n;
      offset += static_cast<uint64_t>(n);
      size -= static_cast<size_t>(n);
    }
  }

 private:
  [[noreturn]] void Fail(int error) const { ThrowIo("Cannot read gallery file " + path_, path_, error); }

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Checks the header against itself and the file size; returns the layout it describes.
Layout ReadHeader(Source& source) {
  const std::string& subject = source.subject();
  const uint64_t size = source.size();
  if (size < kHeaderBytes + kFooterBytes) {
    ThrowCorrupt(subject, "file", size,
                 "the file is " + std::to_string(size) + " bytes long, shorter than a header and a footer");
  }
  Header h;
  source.Read(0, h.data(), h.size());
  if (std::memcmp(&h[header_at::kMagic], kHeaderMagic, sizeof kHeaderMagic) != 0) {
    ThrowCorrupt(subject, "header", header_at::kMagic, "it does not start with MFGALLRY (not a gallery file?)");
  }
  // Every format version keeps the magic, the version and the header size where version 1 has
  // them, and ends its header with the checksum of the bytes before it. So the checksum is checked
  // first: a damaged version field reads as damage, and only an intact header of another version
  // as ERR_GALLERY_VERSION.
  auto fault = [&](size_t field, const std::string& reason) { ThrowCorrupt(subject, "header", field, reason); };
  const uint32_t header_bytes = LoadU32(&h[header_at::kHeaderBytes]);
  if (header_bytes < kHeaderBytes || header_bytes > kMaxHeaderBytes || header_bytes > size - kFooterBytes) {
    fault(header_at::kHeaderBytes, "the header size " + std::to_string(header_bytes) + " is impossible");
  }
  if (header_bytes == kHeaderBytes) {
    if (LoadU64(&h[header_at::kChecksum]) != Checksum(h.data(), header_at::kChecksum)) {
      fault(header_at::kChecksum, "the header's checksum does not match");
    }
  } else {
    std::vector<uint8_t> longer(header_bytes);
    source.Read(0, longer.data(), longer.size());
    if (LoadU64(&longer[header_bytes - 8]) != Checksum(longer.data(), header_bytes - 8)) {
      fault(header_bytes - 8, "the header's checksum does not match");
    }
  }
  const uint32_t version = LoadU32(&h[header_at::kVersion]);
  if (version != kFormatVersion) {
    throw Error(ErrorCode::kGalleryVersion,
                subject + " has format version " + std::to_string(version) + "; this maskface reads version " +
                    std::to_string(kFormatVersion),
                {ErrorDetail::Number("version", version)});
  }
  if (header_bytes != kHeaderBytes) fault(header_at::kHeaderBytes, "the header size of version 1 is 128");
  const uint32_t storage_type = LoadU32(&h[header_at::kStorage]);
  if (storage_type != static_cast<uint32_t>(Storage::kF32) && storage_type != static_cast<uint32_t>(Storage::kF16)) {
    fault(header_at::kStorage, "unknown storage type");
  }
  const auto storage = static_cast<Storage>(storage_type);
  const uint32_t dim = LoadU32(&h[header_at::kDim]);
  if (dim < 1 || dim > kMaxDim) fault(header_at::kDim, "dim " + std::to_string(dim) + " is outside 1..65536");
  if (auto at = FirstNonZero(&h[header_at::kReserved], header_at::kChecksum - header_at::kReserved)) {
    fault(header_at::kReserved + *at, "a reserved byte is not zero");
  }
  if (LoadU64(&h[header_at::kMetaOffset]) != kHeaderBytes) {
    fault(header_at::kMetaOffset, "meta does not follow the header");
  }
  const uint64_t meta_bytes = LoadU64(&h[header_at::kMetaBytes]);
  if (meta_bytes > kMaxMetaBytes) fault(header_at::kMetaBytes, "meta is larger than 1 MiB");
  const std::optional<Layout> layout =
      PlanLayout(storage, dim, LoadU64(&h[header_at::kCount]), meta_bytes, LoadU64(&h[header_at::kIdsBytes]));
  if (!layout) fault(header_at::kCount, "its count and section sizes add up to more than 2^64 bytes");
  if (LoadU64(&h[header_at::kIdsOffset]) != layout->ids_offset) {
    fault(header_at::kIdsOffset, "the ids do not follow meta");
  }
  if (LoadU64(&h[header_at::kVectorsOffset]) != layout->vectors_offset) {
    fault(header_at::kVectorsOffset, "the vectors do not start at the first 64-byte boundary after the ids");
  }
  if (LoadU64(&h[header_at::kVectorsBytes]) != layout->vectors_bytes) {
    fault(header_at::kVectorsBytes, "the vectors' size is not count x dim x " + std::to_string(ValueBytes(storage)));
  }
  if (layout->file_bytes != size) {
    ThrowCorrupt(subject, "file", std::min(size, layout->file_bytes),
                 "the file is " + std::to_string(size) + " bytes long but its header describes " +
                     std::to_string(layout->file_bytes) + " (truncated or extended?)");
  }
  return *layout;
}

// Checks the footer (at the end of the file, whose length ReadHeader checked); returns the
// section checksums it holds.
SectionChecksums ReadFooter(Source& source) {
  const uint64_t at = source.size() - kFooterBytes;
  Footer f;
  source.Read(at, f.data(), f.size());
  auto fault = [&](size_t field, const std::string& reason) {
    ThrowCorrupt(source.subject(), "footer", at + field, reason);
  };
  if (std::memcmp(&f[footer_at::kMagic], kFooterMagic, sizeof kFooterMagic) != 0) {
    fault(footer_at::kMagic, "it does not end with a MFGALEND footer");
  }
  if (LoadU64(&f[footer_at::kChecksum]) != Checksum(f.data(), footer_at::kChecksum)) {
    fault(footer_at::kChecksum, "the footer's checksum does not match");
  }
  if (LoadU64(&f[footer_at::kFileBytes]) != source.size()) {
    fault(footer_at::kFileBytes, "the footer's file length is not the file's");
  }
  if (auto zero_at = FirstNonZero(&f[footer_at::kReserved], footer_at::kChecksum - footer_at::kReserved)) {
    fault(footer_at::kReserved + *zero_at, "a reserved byte is not zero");
  }
  return {LoadU64(&f[footer_at::kMetaChecksum]), LoadU64(&f[footer_at::kIdsChecksum]),
          LoadU64(&f[footer_at::kVectorsChecksum])};
}

// Reads a section into `out` chunk by chunk, hashing each chunk while it is in cache, and checks
// its checksum.
void ReadSection(Source& source, const char* section, uint64_t offset, void* out, size_t size, uint64_t checksum) {
  StreamingChecksum sum;
  auto* bytes = static_cast<uint8_t*>(out);
  for (size_t done = 0; done < size;) {
    const size_t chunk = std::min(kChunkBytes, size - done);
    source.Read(offset + done, bytes + done, chunk);
    sum.Update(bytes + done, chunk);
    done += chunk;
  }
  if (sum.Digest() != checksum) {
    ThrowCorrupt(source.subject(), section, offset, std::string("the ") + section + " checksum does not match");
  }
}

// Streams the vectors section to `rows` a chunk of whole rows at a time (f32, every value
// finite, no row all zeros: a gallery holds unit vectors) and checks its checksum. A bad row
// stops the rows at the chunk before it, but the section is still read to the end: a checksum
// that does not match is the more telling fault, and is reported first.
void StreamVectors(Source& source, const Layout& layout, uint64_t checksum, const RowSink& rows) {
  const size_t value_bytes = ValueBytes(layout.storage);
  const size_t row_bytes = layout.dim * value_bytes;
  const uint64_t rows_per_chunk = std::max<size_t>(1, kChunkBytes / row_bytes);
  const bool halves_stored = layout.storage == Storage::kF16;
  std::vector<float> floats;
  std::vector<uint16_t> halves;
  try {
    const size_t chunk_values = std::min(layout.count, rows_per_chunk) * layout.dim;
    floats.resize(chunk_values);
    if (halves_stored) halves.resize(chunk_values);
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kOutOfMemory, source.subject() + ": out of memory for a chunk of its rows");
  }
  void* raw = halves_stored ? static_cast<void*>(halves.data()) : floats.data();
  StreamingChecksum sum;
  std::optional<IdsFault> bad_row;  // the first bad value or row: offset in the section, reason (as for ids)
  for (uint64_t first = 0; first < layout.count; first += rows_per_chunk) {
    const uint64_t n = std::min(rows_per_chunk, layout.count - first);
    const size_t values = n * layout.dim;
    source.Read(layout.vectors_offset + first * row_bytes, raw, n * row_bytes);
    sum.Update(raw, n * row_bytes);
    if (bad_row) continue;
    if (halves_stored) ActiveKernels().to_f32(halves.data(), values, floats.data());
    const float* bad = std::find_if(floats.data(), floats.data() + values, [](float v) { return !std::isfinite(v); });
    if (bad != floats.data() + values) {
      const uint64_t index = first * layout.dim + static_cast<uint64_t>(bad - floats.data());
      bad_row = IdsFault{index * value_bytes, "row " + std::to_string(index / layout.dim) + " holds a value that is not finite"};
      continue;
    }
    for (uint64_t r = 0; r < n && !bad_row; ++r) {
      const float* row = floats.data() + r * layout.dim;
      if (std::all_of(row, row + layout.dim, [](float v) { return v == 0.0f; })) {
        bad_row = IdsFault{(first + r) * row_bytes, "row " + std::to_string(first + r) + " is all zeros"};
      }
    }
    if (!bad_row) rows(first, n, layout.dim, floats.data());
  }
  if (sum.Digest() != checksum) {
    ThrowCorrupt(source.subject(), "vectors", layout.vectors_offset, "the vectors checksum does not match");
  }
  if (bad_row) ThrowCorrupt(source.subject(), "vectors", layout.vectors_offset + bad_row->offset, bad_row->reason);
}

enum class Extent { kDescription, kWhole };

// Every check of the format, in an order that names the most telling fault first. kDescription
// stops after the meta section (ids and vectors are not read). The vectors go to `rows` when it
// is set (Contents::vectors stays empty), else into Contents::vectors.
Contents ReadContents(Source& source, Extent extent, const RowSink* rows) {
  const Layout layout = ReadHeader(source);
  const SectionChecksums sums = ReadFooter(source);
  Contents contents;
  contents.dim = layout.dim;
  contents.count = layout.count;
  contents.storage = layout.storage;
  const bool whole = extent == Extent::kWhole;
  try {
    // Sizes are bounded by the file's size now.
    contents.meta.resize(layout.meta_bytes);
    if (whole) contents.ids.resize(layout.ids_bytes);
    if (whole && rows == nullptr) contents.vectors.resize(layout.count * layout.dim);
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kOutOfMemory,
                source.subject() + ": out of memory for its " + std::to_string(layout.file_bytes) + " bytes");
  }
  ReadSection(source, "meta", kHeaderBytes, contents.meta.data(), contents.meta.size(), sums.meta);
  if (!whole) return contents;
  ReadSection(source, "ids", layout.ids_offset, contents.ids.data(), contents.ids.size(), sums.ids);
  if (auto fault = FindIdsFault(contents.ids.data(), contents.ids.size(), layout.count)) {
    ThrowCorrupt(source.subject(), "ids", layout.ids_offset + fault->offset, fault->reason);
  }
  std::array<uint8_t, kVectorAlignment> padding;
  const uint64_t padding_offset = layout.vectors_offset - layout.padding_bytes;
  source.Read(padding_offset, padding.data(), layout.padding_bytes);
  if (auto at = FirstNonZero(padding.data(), layout.padding_bytes)) {
    ThrowCorrupt(source.subject(), "vectors", padding_offset + *at, "a padding byte before the vectors is not zero");
  }
  if (rows != nullptr) {
    StreamVectors(source, layout, sums.vectors, *rows);
  } else {
    float* out = contents.vectors.data();
    StreamVectors(source, layout, sums.vectors, [&](uint64_t first, uint64_t n, uint32_t dim, const float* values) {
      std::copy(values, values + n * dim, out + first * dim);
    });
  }
  return contents;
}

// ---- writing -------------------------------------------------------------------------------

// Writes the rows from `rows`, a chunk of whole rows at a time; returns their checksum.
uint64_t WriteVectors(PendingFile& file, const Layout& layout, const RowSource& rows) {
  const size_t row_floats = layout.dim;
  const uint64_t rows_per_chunk = std::max<size_t>(1, kChunkBytes / (row_floats * sizeof(float)));
  std::vector<float> chunk(std::min(layout.count, rows_per_chunk) * row_floats);
  std::vector<uint16_t> halves;
  StreamingChecksum sum;
  for (uint64_t first = 0; first < layout.count; first += rows_per_chunk) {
    const uint64_t n = std::min(rows_per_chunk, layout.count - first);
    for (uint64_t r = 0; r < n; ++r) {
      float* row = chunk.data() + r * row_floats;
      rows(first + r, row);
      // A file with such a row could not be loaded again.
      if (!std::all_of(row, row + row_floats, [](float v) { return std::isfinite(v); })) {
        throw Error(ErrorCode::kInvalidArgument,
                    "Cannot save gallery: row " + std::to_string(first + r) + " holds a value that is not finite");
      }
      if (std::all_of(row, row + row_floats, [](float v) { return v == 0.0f; })) {
        throw Error(ErrorCode::kInvalidArgument, "Cannot save gallery: row " + std::to_string(first + r) + " is all zeros");
      }
    }
    if (layout.storage == Storage::kF16) {
      halves.resize(n * row_floats);
      ActiveKernels().to_f16(chunk.data(), halves.size(), halves.data());
      for (size_t i = 0; i < halves.size(); ++i) {
        if ((halves[i] & 0x7C00u) == 0x7C00u) {
          throw Error(ErrorCode::kInvalidArgument, "Cannot save gallery: row " + std::to_string(first + i / row_floats) +
                                                       " holds a value too large for a half float");
        }
      }
      const size_t bytes = halves.size() * sizeof(uint16_t);
      sum.Update(halves.data(), bytes);
      file.Write(halves.data(), bytes);
    } else {
      const size_t bytes = n * row_floats * sizeof(float);
      sum.Update(chunk.data(), bytes);
      file.Write(chunk.data(), bytes);
    }
  }
  return sum.Digest();
}

}  // namespace

std::optional<IdsFault> FindIdsFault(const uint8_t* ids, size_t size, uint64_t count) {
  size_t at = 0;
  for (uint64_t i = 0; i < count; ++i) {
    auto fault = [&](const std::string& what) { return IdsFault{at, "id " + std::to_string(i) + ": " + what}; };
    if (at == size) {
      return IdsFault{at, "the ids section ends after " + std::to_string(i) + " of " + std::to_string(count) + " ids"};
    }
    const uint8_t kind = ids[at];
    if (kind == kIdString) {
      if (size - at < 5) return fault("its string length runs past the end of the ids section");
      const uint32_t length = LoadU32(ids + at + 1);
      if (length > size - at - 5) {
        return fault("its " + std::to_string(length) + "-byte string runs past the end of the ids section");
      }
      at += 5 + size_t{length};
    } else if (kind == kIdNumber) {
      if (size - at < 9) return fault("its number runs past the end of the ids section");
      at += 9;
    } else {
      return fault("unknown kind " + std::to_string(kind));
    }
  }
  if (at != size) {
    const size_t extra = size - at;
    return IdsFault{at, std::to_string(extra) + (extra == 1 ? " byte follows" : " bytes follow") + " the last of " +
                            std::to_string(count) + " ids"};
  }
  return std::nullopt;
}

uint64_t Checksum(const void* data, size_t size) { return XXH3_64bits(data, size); }

void CheckIds(const uint8_t* ids, size_t size, uint64_t count, uint64_t section_offset) {
  if (auto fault = FindIdsFault(ids, size, count)) {
    ThrowCorrupt("Gallery file", "ids", section_offset + fault->offset, fault->reason);
  }
}

Contents Parse(const uint8_t* data, size_t size) {
  MemorySource source(data, size);
  return ReadContents(source, Extent::kWhole, nullptr);
}

Contents Load(const std::string& path) {
  FileSource source(path);
  return ReadContents(source, Extent::kWhole, nullptr);
}

Contents LoadDescription(const std::string& path) {
  FileSource source(path);
  return ReadContents(source, Extent::kDescription, nullptr);
}

Contents LoadStreaming(const std::string& path, const RowSink& rows) {
  MF_CHECK_ARG(rows, "LoadStreaming: no row sink");
  FileSource source(path);
  return ReadContents(source, Extent::kWhole, &rows);
}

Contents ParseStreaming(const uint8_t* data, size_t size, const RowSink& rows) {
  MF_CHECK_ARG(rows, "ParseStreaming: no row sink");
  MemorySource source(data, size);
  return ReadContents(source, Extent::kWhole, &rows);
}

void Save(const std::string& path, uint32_t dim, uint64_t count, const std::string& meta,
          const std::vector<uint8_t>& ids, const RowSource& rows, Storage storage) {
  MF_CHECK_ARG(storage == Storage::kF32 || storage == Storage::kF16, "Cannot save gallery: unknown storage type");
  MF_CHECK_ARG(dim >= 1 && dim <= kMaxDim,
               "Cannot save gallery: dim " + std::to_string(dim) + " is outside 1..65536");
  MF_CHECK_ARG(meta.size() <= kMaxMetaBytes, "Cannot save gallery: meta is larger than 1 MiB");
  if (auto fault = FindIdsFault(ids.data(), ids.size(), count)) {
    throw Error(ErrorCode::kInvalidArgument,
                "Cannot save gallery: malformed ids section at byte " + std::to_string(fault->offset) + ": " +
                    fault->reason);
  }
  const std::optional<Layout> layout = PlanLayout(storage, dim, count, meta.size(), ids.size());
  MF_CHECK_ARG(layout, "Cannot save gallery: count x dim is too large for a file");
  MF_CHECK_ARG(count == 0 || rows, "Cannot save gallery: no row source");

  SectionChecksums sums{Checksum(meta.data(), meta.size()), Checksum(ids.data(), ids.size()), 0};
  PendingFile file(path, "gallery file");
  const Header header = EncodeHeader(*layout);
  file.Write(header.data(), header.size());
  file.Write(meta.data(), meta.size());
  file.Write(ids.data(), ids.size());
  const std::array<uint8_t, kVectorAlignment> zeros{};
  file.Write(zeros.data(), layout->padding_bytes);
  sums.vectors = WriteVectors(file, *layout, rows);
  const Footer footer = EncodeFooter(sums, layout->file_bytes);
  file.Write(footer.data(), footer.size());
  file.Commit();
}

}  // namespace maskface::gallery_file
