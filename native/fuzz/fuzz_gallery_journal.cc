// libFuzzer target: gallery journals (core/gallery_journal.h). Parse takes arbitrary bytes and
// must return or throw maskface::Error with ERR_GALLERY_CORRUPT or ERR_GALLERY_VERSION; a crash,
// a sanitizer report, another exception or another code is a finding. The first input byte picks
// whether the rest is parsed as it is or resealed first (the header checksum and every record's
// checksum recomputed, walking the records by their length fields), so that the fuzzer also gets
// past the checksums to the checks behind them: sequence numbers, payloads, ids, values. What
// parses must be canonical: a journal created with its header and given its records again holds
// exactly the intact bytes, and reads back to the same contents.
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
#include "core/gallery_journal.h"
#include "fuzz/fuzz_input.h"

namespace {

namespace fs = std::filesystem;
namespace gj = maskface::gallery_journal;
namespace gf = maskface::gallery_file;

using Bytes = std::vector<uint8_t>;

uint32_t GetU32(const Bytes& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, &b[at], sizeof v);
  return v;
}
void PutU64(Bytes& b, size_t at, uint64_t v) { std::memcpy(&b[at], &v, sizeof v); }

void Reseal(Bytes& file) {
  if (file.size() < gj::kHeaderBytes) return;
  PutU64(file, 56, gf::Checksum(file.data(), 56));
  for (size_t at = gj::kHeaderBytes; file.size() - at >= gj::kRecordOverhead;) {
    const uint32_t length = GetU32(file, at + 4);
    if (length > file.size() - at - gj::kRecordOverhead) break;
    PutU64(file, at + 16 + length, gf::Checksum(file.data() + at + 4, 12 + size_t{length}));
    at += gj::kRecordOverhead + length;
  }
}

// The payloads of the parsed records, rebuilt from ops, ids and vectors.
void Payloads(const gj::Contents& c, Bytes* payloads, std::vector<uint32_t>* lengths) {
  size_t id_at = 0, vector_at = 0;
  for (uint8_t op : c.ops) {
    const size_t id_bytes = c.ids[id_at] == gf::kIdString ? 5 + GetU32(c.ids, id_at + 1) : 9;
    const size_t start = payloads->size();
    payloads->push_back(op);
    payloads->insert(payloads->end(), c.ids.begin() + id_at, c.ids.begin() + id_at + id_bytes);
    id_at += id_bytes;
    if (op == static_cast<uint8_t>(gj::Op::kAdd)) {
      const auto* v = reinterpret_cast<const uint8_t*>(c.vectors.data() + vector_at);
      payloads->insert(payloads->end(), v, v + c.header.dim * sizeof(float));
      vector_at += c.header.dim;
    }
    lengths->push_back(static_cast<uint32_t>(payloads->size() - start));
  }
  FUZZ_CHECK(id_at == c.ids.size() && vector_at == c.vectors.size());
}

void CheckRoundTrip(const Bytes& file, const gj::Contents& contents) {
  static maskface::fuzz::ScratchFolder folder("fuzz_gallery_journal");
  const std::string path = (folder.path / "g.mfg.journal").string();
  Bytes payloads;
  std::vector<uint32_t> lengths;
  Payloads(contents, &payloads, &lengths);
  {
    auto writer = gj::Writer::Create(path, contents.header);
    if (!lengths.empty()) writer->Append(payloads.data(), lengths.data(), lengths.size(), contents.header.base_seq + 1);
  }
  std::ifstream in(path, std::ios::binary);
  const Bytes written{std::istreambuf_iterator<char>(in), {}};
  FUZZ_CHECK(written.size() == contents.valid_bytes);
  FUZZ_CHECK(std::memcmp(written.data(), file.data(), written.size()) == 0);
  const gj::Contents again = gj::Read(path);
  FUZZ_CHECK(again.ops == contents.ops && again.ids == contents.ids && again.seqs == contents.seqs &&
             again.torn_bytes == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Bytes file(data + 1, data + size);
  if (data[0] & 1) Reseal(file);
  gj::Contents contents;
  try {
    contents = gj::Parse(file.data(), file.size());
  } catch (const maskface::Error& e) {
    FUZZ_CHECK(e.code() == maskface::ErrorCode::kGalleryCorrupt || e.code() == maskface::ErrorCode::kGalleryVersion);
    return 0;
  }
  FUZZ_CHECK(contents.valid_bytes + contents.torn_bytes == file.size());
  FUZZ_CHECK(contents.seqs.size() == contents.ops.size());
  for (size_t i = 0; i < contents.seqs.size(); ++i) FUZZ_CHECK(contents.seqs[i] == contents.header.base_seq + 1 + i);
  for (float v : contents.vectors) FUZZ_CHECK(std::isfinite(v));
  CheckRoundTrip(file, contents);
  return 0;
}
