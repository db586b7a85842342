// File system helpers shared by the gallery file and its journal: errors that carry the system's
// reason, whole writes, and the temporary-file-then-rename pattern that makes a file appear whole
// or not at all.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace maskface::file_io {

// Fields of the file formats, little-endian as the hosts are (their .cc files assert it).
inline uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline uint64_t LoadU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void StoreU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }
inline void StoreU64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, sizeof v); }

// The symbolic name of an errno value, as Node names them (JS: error.details.errno).
std::string ErrnoName(int error);

// Throws ErrorCode::kIo: "`what`: <strerror>", details path and errno. `what` is the failed
// action, e.g. "Cannot open gallery file /x/y.mfg".
[[noreturn]] void ThrowIo(const std::string& what, const std::string& path, int error);

// Throws ErrorCode::kGalleryCorrupt: "`subject` is corrupt: `reason` (`section` section, byte
// `offset`)", details section and offset. `subject` names the file ("Gallery file /x/y.mfg").
[[noreturn]] void ThrowCorrupt(const std::string& subject, const char* section, uint64_t offset,
                               const std::string& reason);

// The folder of `path` ("." for a bare name).
std::string Folder(const std::string& path);

// fsync of the folder of `path`, which makes a rename or a creation in it durable. `subject`
// names the file for the error ("gallery file /x/y.mfg").
void SyncFolderOf(const std::string& path, const std::string& subject);

// write() of all `size` bytes, retrying short writes and EINTR; returns 0 or the errno.
int WriteAll(int fd, const void* data, size_t size);

// pread() of exactly `size` bytes at `offset`; returns 0, the errno, or -1 when the file ends first.
int ReadExactly(int fd, void* out, size_t size, uint64_t offset);

// A new file that appears under `target` only on Commit: it is written as a temporary file beside
// the target, then fsynced and renamed over it, and the folder is fsynced. Until Commit the
// destructor removes it (an error, or an exception from whoever fills it). `kind` names the file
// in errors ("gallery file", "gallery journal").
class PendingFile {
 public:
  PendingFile(const std::string& target, const char* kind);
  ~PendingFile();
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  void Write(const void* data, size_t size);

  // fsync, rename over the target, fsync of the folder. With keep_open the descriptor stays open
  // for appends (and is then the caller's, from Release()).
  void Commit(bool keep_open = false);

  // The temporary file's descriptor (e.g. to lock it before it appears under the target's name).
  int fd() const { return fd_; }

  // The open descriptor after Commit(true); the caller closes it.
  int Release();

 private:
  [[noreturn]] void Fail(const char* action, int error) const;

  std::string target_;
  std::string temp_;
  const char* kind_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace maskface::file_io
