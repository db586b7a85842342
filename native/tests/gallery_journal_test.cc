// Tests for native/core/gallery_journal: records written by Writer read back; a torn last record is
// dropped and cut off on Open, damage before an intact record is kGalleryCorrupt with its offset;
// Rebase keeps exactly the records after its base; sequence numbers, payloads and CheckFollows
// are enforced. Prints one line per check and exits non-zero when any fails.

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/gallery_file.h"
#include "core/gallery_journal.h"
#include "tests/test_check.h"

namespace {

namespace gj = maskface::gallery_journal;
namespace gf = maskface::gallery_file;

using maskface::Error;
using maskface::ErrorCode;
using maskface::test::Check;
using maskface::test::g_failures;

using Bytes = std::vector<uint8_t>;

constexpr uint32_t kDim = 3;

Bytes AddPayload(const std::string& id, float seed) {
  Bytes p;
  p.reserve(64);
  p.push_back(static_cast<uint8_t>(gj::Op::kAdd));
  p.push_back(gf::kIdString);
  const uint32_t length = static_cast<uint32_t>(id.size());
  p.insert(p.end(), reinterpret_cast<const uint8_t*>(&length), reinterpret_cast<const uint8_t*>(&length) + 4);
  p.insert(p.end(), id.begin(), id.end());
  for (uint32_t i = 0; i < kDim; ++i) {
    const float v = seed + static_cast<float>(i);
    p.insert(p.end(), reinterpret_cast<const uint8_t*>(&v), reinterpret_cast<const uint8_t*>(&v) + 4);
  }
  return p;
}

Bytes RemovePayload(double id) {
  Bytes p;
  p.reserve(16);
  p.push_back(static_cast<uint8_t>(gj::Op::kRemove));
  p.push_back(gf::kIdNumber);
  p.insert(p.end(), reinterpret_cast<const uint8_t*>(&id), reinterpret_cast<const uint8_t*>(&id) + 8);
  return p;
}

void Append(gj::Writer& writer, const std::vector<Bytes>& payloads) {
  Bytes all;
  std::vector<uint32_t> lengths;
  for (const Bytes& p : payloads) {
    all.insert(all.end(), p.begin(), p.end());
    lengths.push_back(static_cast<uint32_t>(p.size()));
  }
  writer.Append(all.data(), lengths.data(), lengths.size(), writer.last_seq() + 1);
}

Bytes ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes{std::istreambuf_iterator<char>(in), {}};
}

void WriteBytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// The code and "offset" detail of what `body` throws; kInternal when it throws nothing.
std::pair<ErrorCode, double> Outcome(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    for (const auto& d : e.details()) {
      if (d.key == "offset") return {e.code(), d.number};
    }
    return {e.code(), -1};
  }
  return {ErrorCode::kInternal, -1};
}

}  // namespace

int main() {
  const maskface::test::TempFolder folder("maskface-gallery-journal-test");
  const std::string path = folder.File("g.mfg.journal");

  gj::Header header;
  header.dim = kDim;
  header.lineage = 0x0123456789abcdefULL;
  header.base_seq = 10;
  {
    auto writer = gj::Writer::Create(path, header);
    Check(writer->bytes() == gj::kHeaderBytes && writer->last_seq() == 10, "a new journal is its header, at its base");
    Append(*writer, {AddPayload("alice", 1), AddPayload("bob", 2)});
    Append(*writer, {RemovePayload(7)});
    Check(writer->last_seq() == 13, "three records numbered 11..13");
    Check(Outcome([&] { Append(*writer, {RemovePayload(1)}); writer->Append(nullptr, nullptr, 0, 99); }).first ==
              ErrorCode::kInvalidArgument,
          "an append out of sequence is refused");
    Check(Outcome([&] {
            Bytes bad = AddPayload("x", 1);
            bad.pop_back();
            Append(*writer, {bad});
          }).first == ErrorCode::kInvalidArgument,
          "a malformed payload is refused before it is written");
    Check(Outcome([&] { gj::Writer::Open(path, gj::Read(path)); }).first == ErrorCode::kIo,
          "a second writer of the same journal is refused (lock)");
  }
  const Bytes whole = ReadBytes(path);
  gj::Contents read = gj::Read(path);
  Check(read.ops.size() == 4 && read.seqs.front() == 11 && read.seqs.back() == 14, "four records read back");
  Check(read.vectors.size() == 2 * kDim && read.vectors[3] == 2.0f, "with the vectors of the adds");
  Check(read.valid_bytes == whole.size() && read.torn_bytes == 0, "every byte intact");

  // Every cut: the whole records before it, the rest torn; never an error past the header.
  bool cuts_ok = true;
  size_t previous = 0;
  for (size_t cut = gj::kHeaderBytes; cut < whole.size(); ++cut) {
    const gj::Contents c = gj::Parse(whole.data(), cut);
    cuts_ok &= c.valid_bytes + c.torn_bytes == cut && c.ops.size() >= previous && c.ops.size() < 4;
    previous = c.ops.size();
  }
  Check(cuts_ok, "a journal cut anywhere after its header reads as its whole records");
  Check(Outcome([&] { gj::Parse(whole.data(), 40); }).first == ErrorCode::kGalleryCorrupt, "a cut header is corrupt");

  // A flipped bit in the first record, with intact ones after it: damage, at that record.
  Bytes flipped = whole;
  flipped[gj::kHeaderBytes + 20] ^= 0x10;
  const auto damage = Outcome([&] { gj::Parse(flipped.data(), flipped.size()); });
  Check(damage.first == ErrorCode::kGalleryCorrupt && damage.second == gj::kHeaderBytes,
        "a damaged record before intact ones is corrupt, at its offset");
  Bytes last = whole;
  last[whole.size() - 3] ^= 0x01;
  const gj::Contents torn = gj::Parse(last.data(), last.size());
  Check(torn.ops.size() == 3 && torn.torn_bytes > 0, "a damaged last record is a torn tail: dropped");
  Bytes header_flip = whole;
  header_flip[33] ^= 0x01;
  Check(Outcome([&] { gj::Parse(header_flip.data(), header_flip.size()); }).first == ErrorCode::kGalleryCorrupt,
        "a damaged header is corrupt");

  // Open cuts the torn tail; appends follow the last whole record.
  WriteBytes(path, Bytes(whole.begin(), whole.end() - 5));
  {
    auto writer = gj::Writer::Open(path, gj::Read(path));
    Check(writer->last_seq() == 13 && ReadBytes(path).size() == writer->bytes(), "Open cuts off the torn tail");
    Append(*writer, {AddPayload("carol", 3)});
    writer->Rebase(12);
    const gj::Contents after = gj::Read(path);
    Check(after.header.base_seq == 12 && after.seqs == std::vector<uint64_t>{13, 14} && after.ops[1] == 1,
          "Rebase keeps the records after its base, in place");
    Append(*writer, {RemovePayload(3)});
    Check(gj::Read(path).seqs.back() == 15, "and appends go on in the new file");
    Check(Outcome([&] { writer->Rebase(99); }).first == ErrorCode::kInvalidArgument, "a base past the last record is refused");
    writer->Rebase(15);
    Check(ReadBytes(path).size() == gj::kHeaderBytes, "a rebase to the last record leaves the header alone");
  }

  // CheckFollows.
  gj::Contents c = gj::Read(path);
  gj::Follows file;
  file.file_exists = true;
  file.dim = kDim;
  file.has_lineage = true;
  file.lineage = header.lineage;
  file.file_seq = 15;
  Check(Outcome([&] { gj::CheckFollows(c, file, path); }).first == ErrorCode::kInternal, "a journal follows its own file");
  gj::Follows other = file;
  other.lineage ^= 1;
  Check(Outcome([&] { gj::CheckFollows(c, other, path); }).first == ErrorCode::kGalleryCorrupt, "another lineage is refused");
  other = file;
  other.file_seq = 14;
  Check(Outcome([&] { gj::CheckFollows(c, other, path); }).first == ErrorCode::kGalleryCorrupt,
        "a file older than the journal's base is refused");
  other = file;
  other.dim = 4;
  Check(Outcome([&] { gj::CheckFollows(c, other, path); }).first == ErrorCode::kGalleryCorrupt, "another dim is refused");
  other = {};
  other.dim = kDim;
  Check(Outcome([&] { gj::CheckFollows(c, other, path); }).first == ErrorCode::kGalleryCorrupt,
        "a journal past change 0 with no file is refused");

  std::printf("%s\n", g_failures == 0 ? "all passed" : "FAILED");
  return g_failures == 0 ? 0 : 1;
}
