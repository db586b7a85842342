#include "core/gallery_journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <new>
#include <optional>

#include "core/error.h"
#include "core/file_io.h"
#include "core/gallery_file.h"

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace maskface::gallery_journal {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "gallery journals are little-endian: little-endian hosts only");

constexpr char kHeaderMagic[8] = {'M', 'F', 'J', 'O', 'U', 'R', 'N', 'L'};
constexpr uint32_t kRecordMagic = 0x524a464d;  // "MFJR"
constexpr uint32_t kMaxDim = 65536;
constexpr uint32_t kStorageF32 = 1;

namespace header_at {
constexpr size_t kMagic = 0;
constexpr size_t kVersion = 8;
constexpr size_t kHeaderBytes = 12;
constexpr size_t kStorage = 16;
constexpr size_t kDim = 20;
constexpr size_t kLineage = 24;
constexpr size_t kBaseSeq = 32;
constexpr size_t kReserved = 40;
constexpr size_t kChecksum = 56;
}  // namespace header_at

namespace record_at {
constexpr size_t kMagic = 0;
constexpr size_t kLength = 4;
constexpr size_t kSeq = 8;
constexpr size_t kPayload = 16;
}  // namespace record_at

using file_io::LoadU32;
using file_io::LoadU64;
using file_io::StoreU32;
using file_io::StoreU64;

[[noreturn]] void ThrowCorrupt(const std::string& subject, uint64_t offset, const std::string& reason) {
  file_io::ThrowCorrupt(subject, "journal", offset, reason);
}

std::array<uint8_t, kHeaderBytes> EncodeHeader(const Header& header) {
  std::array<uint8_t, kHeaderBytes> h{};
  std::memcpy(&h[header_at::kMagic], kHeaderMagic, sizeof kHeaderMagic);
  StoreU32(&h[header_at::kVersion], kFormatVersion);
  StoreU32(&h[header_at::kHeaderBytes], kHeaderBytes);
  StoreU32(&h[header_at::kStorage], kStorageF32);
  StoreU32(&h[header_at::kDim], header.dim);
  StoreU64(&h[header_at::kLineage], header.lineage);
  StoreU64(&h[header_at::kBaseSeq], header.base_seq);
  StoreU64(&h[header_at::kChecksum], XXH3_64bits(h.data(), header_at::kChecksum));
  return h;
}

Header DecodeHeader(const uint8_t* data, size_t size, const std::string& subject) {
  if (size < header_at::kHeaderBytes + 4 || std::memcmp(data, kHeaderMagic, sizeof kHeaderMagic) != 0) {
    ThrowCorrupt(subject, 0, "it does not start with a gallery journal header");
  }
  // A later version keeps magic, version and header size where they are and ends its header with
  // the checksum, so an intact header of another version is told apart from a damaged one.
  const uint32_t header_bytes = LoadU32(data + header_at::kHeaderBytes);
  if (header_bytes >= 16 && header_bytes <= 4096 && header_bytes <= size &&
      LoadU64(data + header_bytes - 8) == XXH3_64bits(data, header_bytes - 8)) {
    const uint32_t version = LoadU32(data + header_at::kVersion);
    if (version != kFormatVersion) {
      throw Error(ErrorCode::kGalleryVersion,
                  subject + " has format version " + std::to_string(version) + "; this maskface reads version " +
                      std::to_string(kFormatVersion),
                  {ErrorDetail::Number("version", version)});
    }
  }
  if (size < kHeaderBytes) ThrowCorrupt(subject, size, "the header is cut short");
  if (LoadU64(data + header_at::kChecksum) != XXH3_64bits(data, header_at::kChecksum)) {
    ThrowCorrupt(subject, header_at::kChecksum, "the header checksum does not match");
  }
  if (header_bytes != kHeaderBytes) ThrowCorrupt(subject, header_at::kHeaderBytes, "the header size is wrong");
  if (LoadU32(data + header_at::kStorage) != kStorageF32) {
    ThrowCorrupt(subject, header_at::kStorage, "unknown storage type");
  }
  Header header;
  header.dim = LoadU32(data + header_at::kDim);
  if (header.dim == 0 || header.dim > kMaxDim) ThrowCorrupt(subject, header_at::kDim, "dim is outside 1..65536");
  header.lineage = LoadU64(data + header_at::kLineage);
  header.base_seq = LoadU64(data + header_at::kBaseSeq);
  for (size_t i = header_at::kReserved; i < header_at::kChecksum; ++i) {
    if (data[i] != 0) ThrowCorrupt(subject, i, "a reserved header byte is not zero");
  }
  return header;
}

// Why a payload is malformed, or empty when it is well-formed.
std::string PayloadFault(const uint8_t* payload, size_t size, uint32_t dim) {
  if (size < 1) return "the record is empty";
  const uint8_t op = payload[0];
  if (op != static_cast<uint8_t>(Op::kAdd) && op != static_cast<uint8_t>(Op::kRemove)) {
    return "unknown operation " + std::to_string(op);
  }
  const size_t vector_bytes = op == static_cast<uint8_t>(Op::kAdd) ? size_t{dim} * sizeof(float) : 0;
  if (size < 1 + vector_bytes) return "the record is too short for its vector";
  const size_t id_bytes = size - 1 - vector_bytes;
  if (auto fault = gallery_file::FindIdsFault(payload + 1, id_bytes, 1)) return fault->reason;
  for (size_t i = 0; i < dim && vector_bytes > 0; ++i) {
    float v;
    std::memcpy(&v, payload + 1 + id_bytes + i * sizeof(float), sizeof v);
    if (!std::isfinite(v)) return "value " + std::to_string(i) + " of its vector is not finite";
  }
  return {};
}

// The record at `offset` when it is whole and its checksum matches: its payload length.
std::optional<uint32_t> IntactRecordAt(const uint8_t* data, size_t size, size_t offset) {
  if (size - offset < kRecordOverhead) return std::nullopt;
  const uint8_t* r = data + offset;
  if (LoadU32(r + record_at::kMagic) != kRecordMagic) return std::nullopt;
  const uint32_t length = LoadU32(r + record_at::kLength);
  if (length > kMaxPayloadBytes || length > size - offset - kRecordOverhead) return std::nullopt;
  const size_t checked = record_at::kPayload - record_at::kLength + length;
  if (LoadU64(r + record_at::kPayload + length) != XXH3_64bits(r + record_at::kLength, checked)) return std::nullopt;
  return length;
}

Contents ParseWithSubject(const uint8_t* data, size_t size, const std::string& subject) {
  Contents contents;
  contents.header = DecodeHeader(data, size, subject);
  const uint32_t dim = contents.header.dim;
  size_t offset = kHeaderBytes;
  uint64_t expected_seq = contents.header.base_seq + 1;
  try {
    while (offset < size) {
      const std::optional<uint32_t> length = IntactRecordAt(data, size, offset);
      if (!length) {
        // A torn tail holds no intact record: a crash cut the last append short. Anything intact
        // after this point was acknowledged, so this is damage, not a tear.
        for (size_t later = offset + 1; later + kRecordOverhead <= size; ++later) {
          if (IntactRecordAt(data, size, later)) {
            ThrowCorrupt(subject, offset, "a damaged record is followed by an intact one at byte " + std::to_string(later));
          }
        }
        break;
      }
      const uint8_t* r = data + offset;
      const uint64_t seq = LoadU64(r + record_at::kSeq);
      if (seq != expected_seq) {
        ThrowCorrupt(subject, offset + record_at::kSeq,
                     "record " + std::to_string(contents.ops.size()) + " has sequence number " + std::to_string(seq) +
                         "; expected " + std::to_string(expected_seq));
      }
      const uint8_t* payload = r + record_at::kPayload;
      const std::string fault = PayloadFault(payload, *length, dim);
      if (!fault.empty()) ThrowCorrupt(subject, offset + record_at::kPayload, fault);
      const size_t vector_bytes = payload[0] == static_cast<uint8_t>(Op::kAdd) ? size_t{dim} * sizeof(float) : 0;
      const size_t id_bytes = *length - 1 - vector_bytes;
      contents.ops.push_back(payload[0]);
      contents.seqs.push_back(seq);
      contents.ids.insert(contents.ids.end(), payload + 1, payload + 1 + id_bytes);
      if (vector_bytes > 0) {
        const size_t at = contents.vectors.size();
        contents.vectors.resize(at + dim);
        std::memcpy(contents.vectors.data() + at, payload + 1 + id_bytes, vector_bytes);
      }
      ++expected_seq;
      offset += kRecordOverhead + *length;
    }
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kOutOfMemory, subject + ": out of memory for its " + std::to_string(size) + " bytes");
  }
  contents.valid_bytes = offset;
  contents.torn_bytes = size - offset;
  return contents;
}

// One writer per journal: two would interleave their records. The lock belongs to the open file,
// so a second Gallery.open of the same path, in this process or another, is refused.
void Lock(int fd, const std::string& path) {
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    file_io::ThrowIo(error == EWOULDBLOCK ? "Gallery journal " + path + " is open for writing elsewhere"
                                          : "Cannot lock gallery journal " + path,
                     path, error);
  }
}

int OpenForWrite(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) file_io::ThrowIo("Cannot open gallery journal " + path, path, errno);
  try {
    Lock(fd, path);
  } catch (...) {
    close(fd);
    throw;
  }
  return fd;
}

}  // namespace

Contents Parse(const uint8_t* data, size_t size) { return ParseWithSubject(data, size, "Gallery journal"); }

Contents Read(const std::string& path) {
  const std::string subject = "Gallery journal " + path;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) file_io::ThrowIo("Cannot open gallery journal " + path, path, errno);
  struct stat st;
  int error = fstat(fd, &st) != 0 ? errno : 0;
  if (error == 0 && !S_ISREG(st.st_mode)) error = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
  std::vector<uint8_t> bytes;
  if (error == 0) {
    try {
      bytes.resize(static_cast<size_t>(st.st_size));
    } catch (const std::bad_alloc&) {
      close(fd);
      throw Error(ErrorCode::kOutOfMemory, subject + ": out of memory for its " + std::to_string(st.st_size) + " bytes");
    }
    error = file_io::ReadExactly(fd, bytes.data(), bytes.size(), 0);
  }
  close(fd);
  if (error == -1) ThrowCorrupt(subject, 0, "the file shrank while it was read");
  if (error != 0) file_io::ThrowIo("Cannot read gallery journal " + path, path, error);
  return ParseWithSubject(bytes.data(), bytes.size(), subject);
}

void CheckPayload(const uint8_t* payload, size_t size, uint32_t dim, const std::string& what) {
  MF_CHECK_ARG(size <= kMaxPayloadBytes, what + " is larger than 1 GiB");
  const std::string fault = PayloadFault(payload, size, dim);
  if (!fault.empty()) throw Error(ErrorCode::kInvalidArgument, what + " is malformed: " + fault);
}

void CheckFollows(const Contents& journal, const Follows& file, const std::string& path) {
  const std::string subject = "Gallery journal " + path;
  const Header& header = journal.header;
  if (header.dim != file.dim) {
    ThrowCorrupt(subject, header_at::kDim,
                 "it holds " + std::to_string(header.dim) + "-d vectors; its gallery " + std::to_string(file.dim) + "-d");
  }
  if (file.has_lineage) {
    if (header.lineage != file.lineage) ThrowCorrupt(subject, header_at::kLineage, "it belongs to another gallery file");
    if (header.base_seq > file.file_seq) {
      ThrowCorrupt(subject, header_at::kBaseSeq,
                   "it continues change " + std::to_string(header.base_seq) + " but the gallery file holds changes up to " +
                       std::to_string(file.file_seq) + " (an older copy of the file?)");
    }
  } else if (file.file_exists) {
    if (!journal.ops.empty()) ThrowCorrupt(subject, header_at::kLineage, "the gallery file beside it names no journal");
  } else if (header.base_seq != 0) {
    ThrowCorrupt(subject, header_at::kBaseSeq,
                 "it continues change " + std::to_string(header.base_seq) + " of a gallery file that does not exist");
  }
}

// ---- Writer --------------------------------------------------------------------------------

Writer::Writer(std::string path, int fd, const Header& header, uint64_t last_seq, uint64_t bytes)
    : path_(std::move(path)), fd_(fd), header_(header), last_seq_(last_seq), bytes_(bytes) {}

Writer::~Writer() {
  if (fd_ >= 0) close(fd_);
}

std::unique_ptr<Writer> Writer::Create(const std::string& path, const Header& header) {
  MF_CHECK_ARG(header.dim >= 1 && header.dim <= kMaxDim, "Cannot create gallery journal: dim is outside 1..65536");
  file_io::PendingFile file(path, "gallery journal");
  Lock(file.fd(), path);
  const auto h = EncodeHeader(header);
  file.Write(h.data(), h.size());
  file.Commit(/*keep_open=*/true);
  return std::unique_ptr<Writer>(new Writer(path, file.Release(), header, header.base_seq, kHeaderBytes));
}

std::unique_ptr<Writer> Writer::Open(const std::string& path, const Contents& contents) {
  const int fd = OpenForWrite(path);
  struct stat st;
  int error = fstat(fd, &st) != 0 ? errno : 0;
  // The file must still be the one that was read: same length, so no writer came in between.
  if (error == 0 && static_cast<uint64_t>(st.st_size) != contents.valid_bytes + contents.torn_bytes) error = ESTALE;
  if (error == 0 && contents.torn_bytes > 0 &&
      (ftruncate(fd, static_cast<off_t>(contents.valid_bytes)) != 0 || fdatasync(fd) != 0)) {
    error = errno;
  }
  if (error != 0) {
    close(fd);
    file_io::ThrowIo("Cannot open gallery journal " + path + " for appends", path, error);
  }
  const uint64_t last = contents.seqs.empty() ? contents.header.base_seq : contents.seqs.back();
  return std::unique_ptr<Writer>(new Writer(path, fd, contents.header, last, contents.valid_bytes));
}

void Writer::CheckUsable() const {
  if (failed_) {
    throw Error(ErrorCode::kIo, "Gallery journal " + path_ + " failed earlier; reopen the gallery",
                {ErrorDetail::Text("path", path_)});
  }
}

void Writer::Append(const uint8_t* payloads, const uint32_t* lengths, size_t count, uint64_t first_seq) {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckUsable();
  MF_CHECK_ARG(first_seq == last_seq_ + 1, "journal records must follow sequence number " + std::to_string(last_seq_));
  std::vector<uint8_t> buffer;
  size_t at = 0;
  for (size_t i = 0; i < count; ++i) {
    const uint32_t length = lengths[i];
    CheckPayload(payloads + at, length, header_.dim, "journal record " + std::to_string(i));
    const size_t start = buffer.size();
    buffer.resize(start + kRecordOverhead + length);
    uint8_t* r = buffer.data() + start;
    StoreU32(r + record_at::kMagic, kRecordMagic);
    StoreU32(r + record_at::kLength, length);
    StoreU64(r + record_at::kSeq, first_seq + i);
    std::memcpy(r + record_at::kPayload, payloads + at, length);
    StoreU64(r + record_at::kPayload + length,
             XXH3_64bits(r + record_at::kLength, record_at::kPayload - record_at::kLength + length));
    at += length;
  }
  int error = 0;
  if (lseek(fd_, static_cast<off_t>(bytes_), SEEK_SET) < 0) error = errno;
  if (error == 0) error = file_io::WriteAll(fd_, buffer.data(), buffer.size());
  if (error == 0 && fdatasync(fd_) != 0) error = errno;
  if (error != 0) {
    // Cut back what may have reached the file; whether that worked or not, stop writing here.
    if (ftruncate(fd_, static_cast<off_t>(bytes_)) == 0) fdatasync(fd_);
    failed_ = true;
    file_io::ThrowIo("Cannot append to gallery journal " + path_, path_, error);
  }
  bytes_ += buffer.size();
  last_seq_ = first_seq + count - 1;
}

void Writer::Rebase(uint64_t base_seq) {
  std::lock_guard<std::mutex> lock(mutex_);
  CheckUsable();
  MF_CHECK_ARG(base_seq >= header_.base_seq && base_seq <= last_seq_,
               "a journal base must lie within " + std::to_string(header_.base_seq) + ".." + std::to_string(last_seq_));
  // Where the first record after base_seq starts: record heads carry the lengths to skip.
  uint64_t offset = kHeaderBytes;
  uint64_t seq = header_.base_seq;
  std::array<uint8_t, record_at::kPayload> head;
  while (seq < base_seq) {
    const int error = file_io::ReadExactly(fd_, head.data(), head.size(), offset);
    if (error != 0 || LoadU32(head.data() + record_at::kMagic) != kRecordMagic) {
      failed_ = true;
      file_io::ThrowIo("Cannot reread gallery journal " + path_, path_, error > 0 ? error : EIO);
    }
    seq = LoadU64(head.data() + record_at::kSeq);
    offset += kRecordOverhead + LoadU32(head.data() + record_at::kLength);
  }
  Header header = header_;
  header.base_seq = base_seq;
  file_io::PendingFile file(path_, "gallery journal");
  Lock(file.fd(), path_);
  const auto h = EncodeHeader(header);
  file.Write(h.data(), h.size());
  std::vector<uint8_t> chunk(size_t(1) << 20);
  for (uint64_t at = offset; at < bytes_;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), bytes_ - at));
    const int error = file_io::ReadExactly(fd_, chunk.data(), n, at);
    if (error != 0) file_io::ThrowIo("Cannot reread gallery journal " + path_, path_, error > 0 ? error : EIO);
    file.Write(chunk.data(), n);
    at += n;
  }
  try {
    file.Commit(/*keep_open=*/true);
  } catch (...) {
    // The rename may have happened: which file the path names is then unknown here.
    failed_ = true;
    throw;
  }
  close(fd_);
  fd_ = file.Release();
  header_ = header;
  bytes_ = kHeaderBytes + (bytes_ - offset);
}

Header Writer::header() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return header_;
}

uint64_t Writer::last_seq() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_seq_;
}

uint64_t Writer::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

}  // namespace maskface::gallery_journal
