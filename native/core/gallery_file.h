// Gallery files: a gallery's rows, their ids and a description of the model that made them.
//
// Layout, little-endian, format version 1:
//   header   kHeaderBytes: magic "MFGALLRY", format version, header size, storage type, dim, row
//            count, offset and length of each section, then XXH3-64 of the header's bytes before it
//            (every later version keeps magic, version and size at these offsets and ends its
//            header with that checksum, so a reader tells a newer file from a damaged one)
//   meta     UTF-8 text the caller writes (maskface writes JSON: the model fingerprint, ...)
//   ids      `count` entries, one per row in row order: a kind byte, then for kind 1 (string) a u32
//            byte length and that many UTF-8 bytes, for kind 2 (number) an IEEE 754 f64
//   vectors  count x dim values, row-major, at a 64-byte aligned offset (zero padding before):
//            f32, or IEEE half floats when the storage type is f16
//   footer   kFooterBytes: magic "MFGALEND", XXH3-64 of meta, of ids and of vectors, the file
//            length, then XXH3-64 of the footer's bytes before it
// Every byte of the file is covered by a checksum or is zero padding that is checked to be zero,
// so a truncated, extended or damaged file is refused rather than read as a smaller gallery.
//
// Save is atomic: the bytes go to a temporary file in the same folder, which is fsynced and
// renamed over the target, and the folder is fsynced; a crash leaves the old file or the new one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace maskface::gallery_file {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 128;
inline constexpr size_t kFooterBytes = 64;
inline constexpr size_t kVectorAlignment = 64;

enum class Storage : uint32_t { kF32 = 1, kF16 = 2 };

// Id kinds of the ids section.
inline constexpr uint8_t kIdString = 1;
inline constexpr uint8_t kIdNumber = 2;

struct Contents {
  uint32_t dim = 0;
  uint64_t count = 0;
  Storage storage = Storage::kF32;
  std::string meta;
  std::vector<uint8_t> ids;    // the ids section as written, checked entry by entry
  std::vector<float> vectors;  // count x dim, every value finite (half floats widened)
};

// Writes row `index` (0 <= index < count) of the gallery being saved into `out` (dim floats).
using RowSource = std::function<void(uint64_t index, float* out)>;

// Saves atomically (see above). `ids` is an ids section (kind, length, bytes per row) holding
// exactly `count` entries; `meta` is at most 1 MiB; `storage` f16 rounds the values to half
// floats. Errors: ErrorCode::kInvalidArgument for a malformed ids section, bad sizes, a row
// value that is not finite (or not as a half float) or a row of zeros (Load would refuse the file),
// ErrorCode::kIo with the system's reason for a file system failure. A failure before the rename
// removes the temporary file and leaves `path` as it was; only the folder's fsync comes after it.
// An exception from `rows` propagates the same way.
void Save(const std::string& path, uint32_t dim, uint64_t count, const std::string& meta,
          const std::vector<uint8_t>& ids, const RowSource& rows, Storage storage = Storage::kF32);

// Reads and checks a whole file. Errors: ErrorCode::kIo when it cannot be opened or read
// (details: path, errno), ErrorCode::kGalleryVersion for an intact header of another format
// version (details: version), ErrorCode::kOutOfMemory when its sections do not fit, and
// ErrorCode::kGalleryCorrupt for anything else that is wrong, a row of zeros included (details:
// section, offset; the zero padding before the vectors counts as "vectors").
Contents Load(const std::string& path);

// The same checks over a file's bytes in memory (tests, fuzzing).
Contents Parse(const uint8_t* data, size_t size);

// What a file says about itself, read and checked before its rows are: dim, count, storage and
// meta from its header, footer and meta section (ids and vectors stay empty and unchecked). A
// loader checks the meta (the model) with it before it reads the rest.
Contents LoadDescription(const std::string& path);

// Receives a file's rows in row order, a chunk of whole rows at a time: rows first..first+n-1,
// n x dim floats (half floats widened), every value finite; dim is the file's.
using RowSink = std::function<void(uint64_t first, uint64_t n, uint32_t dim, const float* values)>;

// Load without holding the vectors: they go to `rows` chunk by chunk while the file is read
// (about 1 MiB at a time), and Contents::vectors stays empty; so a gallery's load needs memory for
// its store, not for a second copy of the file. The same checks and errors as Load, but the rows
// reach the sink before the end of the file is checked: when it throws, discard what the sink
// received. An exception from the sink propagates.
Contents LoadStreaming(const std::string& path, const RowSink& rows);
Contents ParseStreaming(const uint8_t* data, size_t size, const RowSink& rows);

// The first malformed entry of an ids section (see CheckIds): where it is in the section, and what
// is wrong; nothing when all `count` entries are well-formed and fill the section exactly.
struct IdsFault {
  uint64_t offset;
  std::string reason;
};
std::optional<IdsFault> FindIdsFault(const uint8_t* ids, size_t size, uint64_t count);

// Checks that an ids section holds exactly `count` well-formed entries (known kind, lengths inside
// the section; not UTF-8 validity, which the reader of the strings checks). `section_offset` is
// where the section starts in its file, for the offset of an error. Throws kGalleryCorrupt.
void CheckIds(const uint8_t* ids, size_t size, uint64_t count, uint64_t section_offset);

// XXH3-64 of a byte range (exposed for tests that forge files).
uint64_t Checksum(const void* data, size_t size);

}  // namespace maskface::gallery_file
