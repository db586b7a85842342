// libFuzzer target: gallery files (core/gallery_file.h). Parse takes arbitrary bytes and must
// return or throw maskface::Error with ERR_GALLERY_CORRUPT or ERR_GALLERY_VERSION; a crash, a
// sanitizer report, another exception or another code is a finding. The first input byte picks
// whether the rest is parsed as it is or resealed first (every checksum recomputed from the
// offsets its header gives), so that the fuzzer also gets past the checksums to the checks behind
// them: layout, padding, ids, values. A file that parses must be canonical: Save of its contents
// (in its storage type: half floats widen and narrow back exactly) writes the same bytes, and
// Load of those gives the same contents. ParseStreaming must reach the same verdict, with its
// rows arriving in order, once each, and (for a file that parses) exactly Parse's vectors.
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/gallery_file.h"
#include "fuzz/fuzz_input.h"

namespace {

namespace fs = std::filesystem;
namespace gf = maskface::gallery_file;

using Bytes = std::vector<uint8_t>;

uint64_t GetU64(const Bytes& b, size_t at) {
  uint64_t v;
  std::memcpy(&v, &b[at], sizeof v);
  return v;
}
void PutU64(Bytes& b, size_t at, uint64_t v) { std::memcpy(&b[at], &v, sizeof v); }

// Recomputes the header checksum, the footer's checksums of the sections the header places
// inside the file, and the footer checksum.
void Reseal(Bytes& file) {
  if (file.size() < gf::kHeaderBytes + gf::kFooterBytes) return;
  PutU64(file, 120, gf::Checksum(file.data(), 120));
  const size_t footer = file.size() - gf::kFooterBytes;
  const size_t sections[3][2] = {{32, 40}, {48, 56}, {64, 72}};  // header fields: offset, length
  for (int s = 0; s < 3; ++s) {
    const uint64_t offset = GetU64(file, sections[s][0]), length = GetU64(file, sections[s][1]);
    if (offset <= footer && length <= footer - offset) {
      PutU64(file, footer + 8 + 8 * s, gf::Checksum(file.data() + offset, length));
    }
  }
  PutU64(file, footer + 56, gf::Checksum(file.data() + footer, 56));
}

bool SameContents(const gf::Contents& a, const gf::Contents& b) {
  return a.dim == b.dim && a.count == b.count && a.storage == b.storage && a.meta == b.meta && a.ids == b.ids &&
         a.vectors.size() == b.vectors.size() &&
         (a.vectors.empty() || std::memcmp(a.vectors.data(), b.vectors.data(), a.vectors.size() * sizeof(float)) == 0);
}

void CheckRoundTrip(const Bytes& file, const gf::Contents& contents) {
  static maskface::fuzz::ScratchFolder folder("fuzz_gallery_file");
  const std::string path = (folder.path / "gallery.mfg").string();
  const uint32_t dim = contents.dim;
  gf::Save(
      path, dim, contents.count, contents.meta, contents.ids,
      [&](uint64_t index, float* out) { std::memcpy(out, &contents.vectors[index * dim], dim * sizeof(float)); },
      contents.storage);
  std::ifstream in(path, std::ios::binary);
  const Bytes saved{std::istreambuf_iterator<char>(in), {}};
  FUZZ_CHECK(saved == file);
  FUZZ_CHECK(SameContents(gf::Load(path), contents));
}

// What ParseStreaming makes of a file: its contents with the streamed rows as vectors, or its
// error (code and message).
struct StreamedVerdict {
  gf::Contents contents;
  bool failed = false;
  maskface::ErrorCode code{};
  std::string message;
};

StreamedVerdict ParseByStreaming(const Bytes& file) {
  StreamedVerdict verdict;
  std::vector<float> rows;
  uint64_t next = 0;
  try {
    verdict.contents = gf::ParseStreaming(file.data(), file.size(), [&](uint64_t first, uint64_t n, uint32_t dim, const float* values) {
      FUZZ_CHECK(first == next && n > 0);
      next = first + n;
      for (uint64_t r = 0; r < n; ++r) {
        const float* row = values + r * dim;
        bool zero = true;
        for (uint32_t d = 0; d < dim; ++d) {
          FUZZ_CHECK(std::isfinite(row[d]));
          zero &= row[d] == 0.0f;
        }
        FUZZ_CHECK(!zero);
      }
      rows.insert(rows.end(), values, values + n * dim);
    });
    FUZZ_CHECK(verdict.contents.vectors.empty() && next == verdict.contents.count);
    verdict.contents.vectors = std::move(rows);
  } catch (const maskface::Error& e) {
    verdict.failed = true;
    verdict.code = e.code();
    verdict.message = e.what();
  }
  return verdict;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Bytes file(data + 1, data + size);
  if (data[0] & 1) Reseal(file);
  const StreamedVerdict streamed = ParseByStreaming(file);
  gf::Contents contents;
  try {
    contents = gf::Parse(file.data(), file.size());
  } catch (const maskface::Error& e) {
    FUZZ_CHECK(e.code() == maskface::ErrorCode::kGalleryCorrupt || e.code() == maskface::ErrorCode::kGalleryVersion);
    FUZZ_CHECK(streamed.failed && streamed.code == e.code() && streamed.message == e.what());
    return 0;
  }
  FUZZ_CHECK(!streamed.failed && SameContents(streamed.contents, contents));
  FUZZ_CHECK(contents.vectors.size() == contents.count * contents.dim);
  for (float v : contents.vectors) FUZZ_CHECK(std::isfinite(v));
  gf::CheckIds(contents.ids.data(), contents.ids.size(), contents.count, 0);
  CheckRoundTrip(file, contents);
  return 0;
}
