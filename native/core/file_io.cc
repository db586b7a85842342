#include "core/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace maskface::file_io {

std::string ErrnoName(int error) {
  switch (error) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ETXTBSY: return "ETXTBSY";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    case EOVERFLOW: return "EOVERFLOW";
    case EDQUOT: return "EDQUOT";
    case ESTALE: return "ESTALE";
    default: return "E" + std::to_string(error);
  }
}

void ThrowIo(const std::string& what, const std::string& path, int error) {
  throw Error(ErrorCode::kIo, what + ": " + std::strerror(error),
              {ErrorDetail::Text("path", path), ErrorDetail::Text("errno", ErrnoName(error))});
}

void ThrowCorrupt(const std::string& subject, const char* section, uint64_t offset, const std::string& reason) {
  throw Error(ErrorCode::kGalleryCorrupt,
              subject + " is corrupt: " + reason + " (" + section + " section, byte " + std::to_string(offset) + ")",
              {ErrorDetail::Text("section", section), ErrorDetail::Number("offset", static_cast<double>(offset))});
}

std::string Folder(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void SyncFolderOf(const std::string& path, const std::string& subject) {
  const std::string folder = Folder(path);
  const int folder_fd = open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const int synced = folder_fd >= 0 ? fsync(folder_fd) : -1;
  const int error = errno;
  if (folder_fd >= 0) close(folder_fd);
  if (synced != 0) ThrowIo("Cannot flush folder " + folder + " to disk after writing " + subject, folder, error);
}

int WriteAll(int fd, const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, bytes, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

int ReadExactly(int fd, void* out, size_t size, uint64_t offset) {
  auto* bytes = static_cast<uint8_t*>(out);
  while (size > 0) {
    const ssize_t n = pread(fd, bytes, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return -1;
    bytes += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return 0;
}

PendingFile::PendingFile(const std::string& target, const char* kind) : target_(target), kind_(kind) {
  static std::atomic<uint64_t> counter{0};
  temp_ = target + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  fd_ = open(temp_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);  // RDWR: a journal rereads itself
  if (fd_ < 0) {
    ThrowIo("Cannot create the temporary file " + temp_ + " to save " + kind_ + " " + target_, target_, errno);
  }
}

PendingFile::~PendingFile() {
  if (fd_ >= 0) close(fd_);
  if (!committed_) unlink(temp_.c_str());
}

void PendingFile::Write(const void* data, size_t size) {
  if (const int error = WriteAll(fd_, data, size)) Fail("Cannot write", error);
}

void PendingFile::Commit(bool keep_open) {
  if (fsync(fd_) != 0) Fail("Cannot flush to disk", errno);
  if (!keep_open) {
    const int closed = close(fd_);
    fd_ = -1;  // closed even when close() fails
    if (closed != 0) Fail("Cannot write", errno);
  }
  if (rename(temp_.c_str(), target_.c_str()) != 0) Fail("Cannot rename over", errno);
  committed_ = true;
  SyncFolderOf(target_, std::string(kind_) + " " + target_);
}

int PendingFile::Release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void PendingFile::Fail(const char* action, int error) const {
  ThrowIo(std::string(action) + " " + kind_ + " " + target_ + " (temporary file " + temp_ + ")", target_, error);
}

}  // namespace maskface::file_io
