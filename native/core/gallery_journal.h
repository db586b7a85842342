// Gallery journals: the changes made to a gallery since its file was last saved, one record per
// add or remove, appended and fdatasynced before they are acknowledged.
//
// Layout, little-endian, format version 1:
//   header   kHeaderBytes: magic "MFJOURNL", format version, header size, storage type, dim,
//            lineage (a random number the gallery file's meta carries too, so a journal is never
//            replayed onto another gallery), base sequence number (the gallery file this journal
//            follows holds every change up to it), zero bytes, then XXH3-64 of the bytes before it
//   records  one after another: u32 magic "MFJR", u32 payload length, u64 sequence number, the
//            payload, then XXH3-64 of the length, sequence number and payload. Sequence numbers
//            start at base + 1 and rise by one.
//   payload  an operation byte (kAdd, kRemove), one id entry in the format of a gallery file's ids
//            section, and for kAdd `dim` finite f32 values.
//
// A crash during an append can leave a torn last record. Reading stops before it and reports its
// bytes (`torn_bytes`); opening for appends cuts them off. They were never acknowledged: an append
// returns only after the whole record is on disk. A damaged record followed by any intact one is
// not a torn tail but damage (ErrorCode::kGalleryCorrupt, section "journal"), as is anything wrong
// with the header; an intact header of another version is ErrorCode::kGalleryVersion.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace maskface::gallery_journal {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 64;
inline constexpr size_t kRecordOverhead = 24;  // magic, length, sequence number, checksum
inline constexpr uint32_t kMaxPayloadBytes = uint32_t(1) << 30;

enum class Op : uint8_t { kAdd = 1, kRemove = 2 };

struct Header {
  uint32_t dim = 0;
  uint64_t lineage = 0;
  uint64_t base_seq = 0;
};

struct Contents {
  Header header;
  std::vector<uint8_t> ops;     // one per record
  std::vector<uint64_t> seqs;   // one per record: header.base_seq + 1, + 2, ...
  std::vector<uint8_t> ids;     // one id entry per record, in the ids-section format
  std::vector<float> vectors;   // dim values per kAdd record, in record order
  uint64_t valid_bytes = 0;     // the header and the intact records
  uint64_t torn_bytes = 0;      // what follows them: a torn last record
};

// Reads and checks a journal. Errors: kIo (cannot open or read), kGalleryVersion, kGalleryCorrupt
// (details: section "journal", offset), kOutOfMemory.
Contents Read(const std::string& path);

// The same checks over bytes in memory (tests, fuzzing).
Contents Parse(const uint8_t* data, size_t size);

// Checks one record's payload for a journal of `dim` values; throws kInvalidArgument naming `what`.
void CheckPayload(const uint8_t* payload, size_t size, uint32_t dim, const std::string& what);

// What a journal must continue: the gallery file's dim, its lineage (when the file names one) and
// its sequence number (the file holds every change up to it; 0 without a file).
struct Follows {
  bool file_exists = false;
  uint32_t dim = 0;
  bool has_lineage = false;
  uint64_t lineage = 0;
  uint64_t file_seq = 0;
};

// Throws kGalleryCorrupt (details: section "journal") when the journal of `path` cannot be
// replayed onto that file: another dim or lineage, a base after the file's sequence number
// (changes between them are missing), records beside a file that names no journal, or a base
// other than 0 with no file at all.
void CheckFollows(const Contents& journal, const Follows& file, const std::string& path);

// Appends to one journal file. Calls are serialised by a mutex; the caller orders them.
class Writer {
 public:
  // Writes a journal with no records at `path`, atomically (a temporary file renamed over it).
  static std::unique_ptr<Writer> Create(const std::string& path, const Header& header);

  // Opens a journal that Read returned `contents` for, cutting off its torn tail (fsynced).
  static std::unique_ptr<Writer> Open(const std::string& path, const Contents& contents);

  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Appends `count` records: payload i is the next lengths[i] bytes of `payloads`, its sequence
  // number first_seq + i, where first_seq must be last_seq() + 1. Returns once they are written
  // and fdatasynced. On any failure the file is cut back to its previous length where possible
  // and the writer refuses further calls (kIo): what is on disk is then unknown to it.
  void Append(const uint8_t* payloads, const uint32_t* lengths, size_t count, uint64_t first_seq);

  // Starts the journal over from a gallery file that holds every change up to `base_seq` (at most
  // last_seq()): a new journal with that base and the records after it replaces this one,
  // atomically. A crash leaves the old journal or the new one; either replays onto that file.
  void Rebase(uint64_t base_seq);

  Header header() const;
  uint64_t last_seq() const;
  uint64_t bytes() const;  // the journal's length

 private:
  Writer(std::string path, int fd, const Header& header, uint64_t last_seq, uint64_t bytes);
  void CheckUsable() const;

  mutable std::mutex mutex_;
  std::string path_;
  int fd_;
  Header header_;
  uint64_t last_seq_;
  uint64_t bytes_;
  bool failed_ = false;
};

}  // namespace maskface::gallery_journal
