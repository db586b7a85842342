// Tests for native/core/gallery_file: round trips through Save / Load / Parse, the bytes Save
// writes against an encoder written here from the format in gallery_file.h, and the error (code,
// section, offset) for truncated, extended, bit-flipped and forged files (forged files get valid
// checksums, so that the checks behind the checksums are reached). Prints one line per check and
// exits non-zero when any fails.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/gallery_file.h"
#include "core/half.h"
#include "tests/test_check.h"

namespace {

namespace fs = std::filesystem;
namespace gf = maskface::gallery_file;

using maskface::Error;
using maskface::ErrorCode;
using maskface::test::Check;
using maskface::test::g_checks;
using maskface::test::g_failures;

using Bytes = std::vector<uint8_t>;

// ---- building files --------------------------------------------------------------------------

void AddStringId(Bytes& ids, const std::string& id) {
  ids.push_back(gf::kIdString);
  const uint32_t length = static_cast<uint32_t>(id.size());
  ids.insert(ids.end(), reinterpret_cast<const uint8_t*>(&length), reinterpret_cast<const uint8_t*>(&length) + 4);
  ids.insert(ids.end(), id.begin(), id.end());
}

void AddNumberId(Bytes& ids, double id) {
  ids.push_back(gf::kIdNumber);
  ids.insert(ids.end(), reinterpret_cast<const uint8_t*>(&id), reinterpret_cast<const uint8_t*>(&id) + 8);
}

uint64_t GetU64(const Bytes& b, size_t at) {
  uint64_t v;
  std::memcpy(&v, &b[at], 8);
  return v;
}
void PutU32(Bytes& b, size_t at, uint32_t v) { std::memcpy(&b[at], &v, 4); }
void PutU64(Bytes& b, size_t at, uint64_t v) { std::memcpy(&b[at], &v, 8); }

// Recomputes every checksum of a file from the section offsets and lengths its header gives
// (those that lie inside the file), so that a forged file gets past them.
void Reseal(Bytes& file) {
  PutU64(file, 120, gf::Checksum(file.data(), 120));
  const size_t footer = file.size() - gf::kFooterBytes;
  const size_t sections[3][2] = {{32, 40}, {48, 56}, {64, 72}};  // offset field, length field
  for (int s = 0; s < 3; ++s) {
    const uint64_t offset = GetU64(file, sections[s][0]), length = GetU64(file, sections[s][1]);
    if (offset <= footer && length <= footer - offset) {
      PutU64(file, footer + 8 + 8 * s, gf::Checksum(file.data() + offset, length));
    }
  }
  PutU64(file, footer + 56, gf::Checksum(file.data() + footer, 56));
}

// A file laid out as gallery_file.h describes, written without gallery_file.cc.
Bytes Forge(uint32_t dim, uint64_t count, const std::string& meta, const Bytes& ids,
            const std::vector<float>& vectors) {
  const size_t ids_offset = 128 + meta.size();
  const size_t vectors_offset = (ids_offset + ids.size() + 63) / 64 * 64;
  const size_t vectors_bytes = vectors.size() * 4;
  Bytes file(vectors_offset + vectors_bytes + 64, 0);
  std::memcpy(&file[0], "MFGALLRY", 8);
  PutU32(file, 8, 1);
  PutU32(file, 12, 128);
  PutU32(file, 16, 1);
  PutU32(file, 20, dim);
  PutU64(file, 24, count);
  PutU64(file, 32, 128);
  PutU64(file, 40, meta.size());
  PutU64(file, 48, ids_offset);
  PutU64(file, 56, ids.size());
  PutU64(file, 64, vectors_offset);
  PutU64(file, 72, vectors_bytes);
  std::memcpy(&file[128], meta.data(), meta.size());
  if (!ids.empty()) std::memcpy(&file[ids_offset], ids.data(), ids.size());
  if (!vectors.empty()) std::memcpy(&file[vectors_offset], vectors.data(), vectors_bytes);
  const size_t footer = file.size() - 64;
  std::memcpy(&file[footer], "MFGALEND", 8);
  PutU64(file, footer + 32, file.size());
  Reseal(file);
  return file;
}

// The small file of the byte-by-byte tests: 2 rows, dim 4; meta at 128 (2 bytes), ids at 130
// (16 bytes), padding 146..191, vectors at 192 (32 bytes), footer at 224, 288 bytes in all.
struct Small {
  static constexpr uint32_t kDim = 4;
  static constexpr uint64_t kCount = 2;
  static constexpr size_t kIdsOffset = 130, kPaddingOffset = 146, kVectorsOffset = 192;
  static constexpr size_t kFooterOffset = 224, kSize = 288;
  std::string meta = "{}";
  Bytes ids;
  std::vector<float> vectors = {0.5f, -0.5f, 0.25f, 1.0f, -0.0f, 3.0f, -2.0f, 1e-3f};
  Small() {
    AddStringId(ids, "ab");
    AddNumberId(ids, 7.5);
  }
  Bytes File() const { return Forge(kDim, kCount, meta, ids, vectors); }
};

// ---- errors ----------------------------------------------------------------------------------

// The maskface::Error that fn throws, or nullopt when it returns.
template <typename Fn>
std::optional<Error> Caught(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  return std::nullopt;
}

const maskface::ErrorDetail* Detail(const Error& e, const std::string& key) {
  for (const auto& d : e.details()) {
    if (d.key == key) return &d;
  }
  return nullptr;
}

std::string Describe(const std::optional<Error>& e) {
  if (!e) return "no error";
  std::string s = "code " + std::to_string(static_cast<int>(e->code()));
  for (const auto& d : e->details()) {
    s += ", " + d.key + "=" + (d.is_number ? maskface::test::Format("%.0f", d.number) : d.text);
  }
  return s + ": " + e->what();
}

bool IsCorrupt(const std::optional<Error>& e, const std::string& section, uint64_t offset) {
  if (!e || e->code() != ErrorCode::kGalleryCorrupt) return false;
  const auto* s = Detail(*e, "section");
  const auto* o = Detail(*e, "offset");
  return s && !s->is_number && s->text == section && o && o->is_number && o->number == static_cast<double>(offset);
}

bool IsIo(const std::optional<Error>& e, const std::string& path, const std::string& errno_name) {
  if (!e || e->code() != ErrorCode::kIo) return false;
  const auto* p = Detail(*e, "path");
  const auto* n = Detail(*e, "errno");
  return p && p->text == path && n && n->text == errno_name;
}

void CheckCorrupt(const std::optional<Error>& e, const std::string& section, uint64_t offset, const std::string& what) {
  const bool ok = IsCorrupt(e, section, offset);
  Check(ok, what + " -> corrupt (" + section + ", " + std::to_string(offset) + ")" +
                (ok ? "" : "; got " + Describe(e)));
}

std::optional<Error> ParseError(const Bytes& file) {
  return Caught([&] { gf::Parse(file.data(), file.size()); });
}

bool SameContents(const gf::Contents& a, const gf::Contents& b) {
  return a.dim == b.dim && a.count == b.count && a.storage == b.storage && a.meta == b.meta && a.ids == b.ids &&
         a.vectors.size() == b.vectors.size() &&
         (a.vectors.empty() || std::memcmp(a.vectors.data(), b.vectors.data(), a.vectors.size() * sizeof(float)) == 0);
}

// ---- files -----------------------------------------------------------------------------------

using maskface::test::TempFolder;

Bytes ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

gf::RowSource RowsOf(const std::vector<float>& vectors, uint32_t dim) {
  return [&vectors, dim](uint64_t index, float* out) { std::memcpy(out, &vectors[index * dim], dim * sizeof(float)); };
}

// ---- tests -----------------------------------------------------------------------------------

void TestRoundTripEmpty(const TempFolder& tmp) {
  std::printf("round trip: no rows\n");
  const std::string path = tmp.File("empty.mfg");
  gf::Save(path, 8, 0, "", {}, nullptr);
  const Bytes file = ReadAll(path);
  Check(file.size() == 128 + 64, "an empty gallery is a header and a footer");
  Check(file == Forge(8, 0, "", {}, {}), "Save writes the bytes of the format");
  const gf::Contents c = gf::Load(path);
  Check(c.dim == 8 && c.count == 0 && c.meta.empty() && c.ids.empty() && c.vectors.empty() &&
            c.storage == gf::Storage::kF32,
        "Load: dim 8, no rows");
  Check(SameContents(c, gf::Parse(file.data(), file.size())), "Parse reads what Load reads");
  Check(tmp.Entries() == std::vector<std::string>{"empty.mfg"}, "no temporary file is left");
  fs::remove(path);
}

// Half-float files: the values rounded to halves, half the bytes, and refused when a value does
// not fit a half float.
void TestRoundTripF16(const TempFolder& tmp) {
  std::printf("round trip: f16 storage\n");
  const std::string path = tmp.File("half.mfg");
  Bytes ids;
  AddStringId(ids, "a");
  AddNumberId(ids, 2);
  const std::vector<float> vectors = {0.1f, -0.2f, 0.3f, 1e-6f, -0.f, 0.5f, 1.f, -1.f, 0.33333f, 65504.f};
  gf::Save(path, 5, 2, "{}", ids, RowsOf(vectors, 5), gf::Storage::kF16);
  const gf::Contents c = gf::Load(path);
  bool rounded = c.vectors.size() == vectors.size();
  for (size_t i = 0; rounded && i < vectors.size(); ++i) {
    rounded = c.vectors[i] == maskface::HalfToFloat(maskface::FloatToHalf(vectors[i]));
  }
  Check(c.storage == gf::Storage::kF16 && c.count == 2 && rounded, "Load gives the values rounded to half floats");
  const Bytes file = ReadAll(path);
  gf::Save(tmp.File("full.mfg"), 5, 2, "{}", ids, RowsOf(vectors, 5));
  Check(ReadAll(tmp.File("full.mfg")).size() - file.size() == 10 * 2, "two bytes a value less than f32");
  const std::vector<float> too_large = {0.f, 0.f, 0.f, 0.f, 70000.f};
  bool refused = false;
  try {
    gf::Save(tmp.File("big.mfg"), 5, 1, "{}", Bytes(ids.begin(), ids.begin() + 6), RowsOf(too_large, 5), gf::Storage::kF16);
  } catch (const Error& e) {
    refused = e.code() == ErrorCode::kInvalidArgument;
  }
  Check(refused && !fs::exists(tmp.File("big.mfg")), "a value too large for a half float is refused at save, no file left");
  fs::remove(path);
  fs::remove(tmp.File("full.mfg"));
}

void TestRoundTripRows(const TempFolder& tmp) {
  std::printf("round trip: 3 rows, dim 5, string and number ids\n");
  const std::string path = tmp.File("rows.mfg");
  const std::string meta = R"({"model":"arcface-r100","fingerprint":"ab12"})";
  Bytes ids;
  AddStringId(ids, "alice");
  AddNumberId(ids, -42.25);
  AddStringId(ids, "");
  const float max = std::numeric_limits<float>::max();
  const std::vector<float> vectors = {
      0.1f, -0.2f, 0.3f,   1e-38f, -0.0f,  // row 0
      3.5f, max,   -1.f,   1e-45f, 0.f,    // row 1
      7.f,  -7.f,  0.125f, -max,   2.f};   // row 2
  gf::Save(path, 5, 3, meta, ids, RowsOf(vectors, 5));
  const Bytes file = ReadAll(path);
  Check(file == Forge(5, 3, meta, ids, vectors), "Save writes the bytes of the format");
  const gf::Contents c = gf::Load(path);
  Check(c.dim == 5 && c.count == 3 && c.meta == meta && c.ids == ids, "Load: dim, count, meta and ids as saved");
  Check(c.vectors.size() == vectors.size() && std::memcmp(c.vectors.data(), vectors.data(), vectors.size() * 4) == 0,
        "Load: every value bit for bit (-0, denormals, extremes)");
  Check(SameContents(c, gf::Parse(file.data(), file.size())), "Parse reads what Load reads");

  // Overwriting: the new contents replace the old.
  gf::Save(path, 5, 1, "", Bytes(ids.begin(), ids.begin() + 10), RowsOf(vectors, 5));
  const gf::Contents again = gf::Load(path);
  Check(again.count == 1 && again.meta.empty() && again.vectors.size() == 5, "Save replaces an existing file");
  Check(tmp.Entries() == std::vector<std::string>{"rows.mfg"}, "no temporary file is left");
  fs::remove(path);
}

// More rows than one write or read chunk (1 MiB), so that the streamed checksums span chunks.
void TestRoundTripLarge(const TempFolder& tmp) {
  std::printf("round trip: 3000 rows, dim 512\n");
  const uint32_t dim = 512;
  const uint64_t count = 3000;
  std::vector<float> vectors(count * dim);
  for (size_t i = 0; i < vectors.size(); ++i) vectors[i] = static_cast<float>(std::sin(i * 0.001) * (i % 7));
  Bytes ids;
  for (uint64_t i = 0; i < count; ++i) AddNumberId(ids, static_cast<double>(i));
  const std::string path = tmp.File("large.mfg");
  gf::Save(path, dim, count, "{}", ids, RowsOf(vectors, dim));
  Check(ReadAll(path) == Forge(dim, count, "{}", ids, vectors), "Save writes the bytes of the format");
  const gf::Contents c = gf::Load(path);
  Check(c.count == count && c.vectors == vectors && c.ids == ids, "Load reads every row back");

  const gf::Contents d = gf::LoadDescription(path);
  Check(d.dim == dim && d.count == count && d.meta == "{}" && d.storage == gf::Storage::kF32 && d.ids.empty() &&
            d.vectors.empty(),
        "LoadDescription: dim, count, storage and meta; no ids, no vectors");

  // LoadStreaming hands the rows over in order, in chunks, and keeps none of them.
  std::vector<float> streamed;
  uint64_t next = 0, chunks = 0;
  bool in_order = true;
  const gf::Contents s = gf::LoadStreaming(path, [&](uint64_t first, uint64_t n, uint32_t chunk_dim, const float* values) {
    in_order &= first == next && n > 0 && chunk_dim == dim;
    next = first + n;
    ++chunks;
    streamed.insert(streamed.end(), values, values + n * chunk_dim);
  });
  Check(in_order && next == count && chunks > 1 && streamed == vectors,
        "LoadStreaming: every row once, in order, in " + std::to_string(chunks) + " chunks");
  Check(s.vectors.empty() && s.ids == ids && s.meta == "{}" && s.count == count, "LoadStreaming keeps ids and meta, not vectors");
  fs::remove(path);
}

void TestTruncation() {
  std::printf("truncation at every length\n");
  const Bytes file = Small().File();
  Check(file.size() == Small::kSize, "the small file is 288 bytes");
  Check(!ParseError(file), "the small file parses");
  int wrong = 0;
  std::string first;
  for (size_t size = 0; size < file.size(); ++size) {
    const std::optional<Error> e = ParseError(Bytes(file.begin(), file.begin() + size));
    if (!IsCorrupt(e, "file", size)) {
      if (wrong++ == 0) first = std::to_string(size) + " bytes: " + Describe(e);
    }
  }
  Check(wrong == 0,
        "each of the 288 truncations -> corrupt (file, its length)" + (wrong ? "; first wrong: " + first : ""));
}

// The (section, offset) of the error a flipped `bit` of the small file (`size` bytes) must give.
// The header checksum covers the version field, so a flip there is damage, not another version.
std::pair<std::string, uint64_t> ExpectedFlipFault(size_t bit, size_t size) {
  const size_t byte = bit / 8;
  if (byte < 8) return {"header", 0};
  if (byte >= 12 && byte < 16) {
    // The header size: impossible values are refused at the field, possible ones fail the checksum
    // that would end a header of that size.
    const uint64_t header_bytes = 128u ^ (1u << (bit - 96));
    if (header_bytes < 128 || header_bytes > 65536 || header_bytes > size - 64) return {"header", 12};
    return {"header", header_bytes - 8};
  }
  if (byte < 128) return {"header", 120};  // the header checksum
  if (byte < Small::kIdsOffset) return {"meta", 128};
  if (byte < Small::kPaddingOffset) return {"ids", Small::kIdsOffset};
  if (byte < Small::kVectorsOffset) return {"vectors", byte};  // padding: not checksummed, checked zero
  if (byte < Small::kFooterOffset) return {"vectors", Small::kVectorsOffset};
  if (byte < Small::kFooterOffset + 8) return {"footer", Small::kFooterOffset};
  return {"footer", Small::kFooterOffset + 56};  // the footer checksum
}

void TestBitFlips() {
  std::printf("every bit flipped, one at a time\n");
  const Bytes file = Small().File();
  int wrong = 0;
  std::string first;
  for (size_t bit = 0; bit < file.size() * 8; ++bit) {
    Bytes flipped = file;
    flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    const std::optional<Error> e = ParseError(flipped);
    const auto [section, offset] = ExpectedFlipFault(bit, file.size());
    if (!IsCorrupt(e, section, offset) && wrong++ == 0) first = "bit " + std::to_string(bit) + ": " + Describe(e);
  }
  Check(wrong == 0, "each of the 2304 flips -> corrupt at the section and offset of the fault" +
                        (wrong ? "; first wrong: " + first : ""));
}

void TestExtended() {
  std::printf("extended file\n");
  Bytes file = Small().File();
  file.push_back(0);
  CheckCorrupt(ParseError(file), "file", Small::kSize, "one zero byte appended");
}

void TestVersion() {
  std::printf("format version\n");
  for (uint32_t version : {0u, 2u, 0xFFFFFFFFu}) {
    Bytes file = Small().File();
    PutU32(file, 8, version);
    Reseal(file);
    const std::optional<Error> e = ParseError(file);
    const bool ok = e && e->code() == ErrorCode::kGalleryVersion && Detail(*e, "version") &&
                    Detail(*e, "version")->number == static_cast<double>(version);
    Check(ok, "version " + std::to_string(version) + " -> version error, details.version " + std::to_string(version) +
                  (ok ? "" : "; got " + Describe(e)));
  }
}

// Header and footer fields that disagree with the format, with valid checksums.
void TestForgedFields() {
  std::printf("forged header and footer fields\n");
  struct Case {
    const char* what;
    size_t at;
    uint64_t value;
    int width;
    const char* section;
    uint64_t offset;
  };
  const Case cases[] = {
      {"header size 256", 12, 256, 4, "header", 12},
      {"storage 3", 16, 3, 4, "header", 16},
      {"storage 2 (f16) with f32-sized vectors", 16, 2, 4, "header", 72},
      {"dim 0", 20, 0, 4, "header", 20},
      {"dim 65537", 20, 65537, 4, "header", 20},
      {"reserved byte 100 set", 100, 1, 1, "header", 100},
      {"meta offset 0", 32, 0, 8, "header", 32},
      {"meta 1 MiB + 1", 40, (1 << 20) + 1, 8, "header", 40},
      {"count 2^62 (vectors size overflows)", 24, uint64_t(1) << 62, 8, "header", 24},
      {"ids size 2^64 - 1 (overflows)", 56, ~uint64_t(0), 8, "header", 24},
      {"ids offset 131", 48, 131, 8, "header", 48},
      {"vectors offset 256", 64, 256, 8, "header", 64},
      {"vectors size 36", 72, 36, 8, "header", 72},
      {"count 3", 24, 3, 8, "header", 72},
      {"dim 8", 20, 8, 4, "header", 72},
      {"ids size 17 (one padding byte more)", 56, 17, 8, "ids", Small::kPaddingOffset},
      {"footer file length 289", Small::kFooterOffset + 32, 289, 8, "footer", Small::kFooterOffset + 32},
      {"footer reserved byte 50 set", Small::kFooterOffset + 50, 1, 1, "footer", Small::kFooterOffset + 50},
  };
  for (const Case& c : cases) {
    Bytes file = Small().File();
    std::memcpy(&file[c.at], &c.value, c.width);
    Reseal(file);
    CheckCorrupt(ParseError(file), c.section, c.offset, c.what);
  }
  Bytes file = Small().File();
  file[Small::kFooterOffset] = 'X';
  Reseal(file);
  CheckCorrupt(ParseError(file), "footer", Small::kFooterOffset, "footer magic MXGALEND");
  file = Small().File();
  file[0] = 'X';
  Reseal(file);
  CheckCorrupt(ParseError(file), "header", 0, "header magic XFGALLRY");
}

void TestNonFiniteValues() {
  std::printf("non-finite vector values\n");
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    Small small;
    small.vectors[6] = bad;  // row 1, value 2
    CheckCorrupt(ParseError(small.File()), "vectors", Small::kVectorsOffset + 6 * 4,
                 "value " + maskface::test::Format("%g", bad) + " at row 1, value 2");
    uint64_t rows_received = 0;
    const Bytes file = small.File();
    const auto e = Caught([&] {
      gf::ParseStreaming(file.data(), file.size(), [&](uint64_t, uint64_t n, uint32_t, const float*) { rows_received += n; });
    });
    Check(IsCorrupt(e, "vectors", Small::kVectorsOffset + 6 * 4) && rows_received == 0,
          "ParseStreaming: the same fault, and no row of the chunk that holds it reaches the sink");
  }
  Small zeros;
  std::fill(zeros.vectors.begin() + 4, zeros.vectors.end(), 0.0f);
  CheckCorrupt(ParseError(zeros.File()), "vectors", Small::kVectorsOffset + 16, "row 1 all zeros");
  // A damaged value whose checksum no longer matches is reported as the checksum, not the value.
  Bytes damaged = Small().File();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(&damaged[Small::kVectorsOffset + 4], &nan, sizeof nan);
  CheckCorrupt(ParseError(damaged), "vectors", Small::kVectorsOffset, "a NaN written over row 0 without a new checksum");
}

void TestMalformedIds() {
  std::printf("malformed ids sections (valid checksums)\n");
  const size_t at = Small::kIdsOffset;
  Small small;
  auto parse_with_ids = [&](const Bytes& ids) {
    return ParseError(Forge(Small::kDim, Small::kCount, small.meta, ids, small.vectors));
  };
  Bytes ab;
  AddStringId(ab, "ab");  // 7 bytes

  Bytes ids = {3};
  ids.resize(16, 0);
  CheckCorrupt(parse_with_ids(ids), "ids", at, "first id of kind 3");
  ids = ab;
  ids.push_back(0);
  ids.resize(16, 0);
  CheckCorrupt(parse_with_ids(ids), "ids", at + 7, "second id of kind 0");
  ids = ab;
  AddStringId(ids, "cd");
  PutU32(ids, 8, 1000);
  CheckCorrupt(parse_with_ids(ids), "ids", at + 7, "second id a 1000-byte string in 2 bytes");
  ids = ab;
  AddStringId(ids, "cd");
  PutU32(ids, 8, 0xFFFFFFFF);
  CheckCorrupt(parse_with_ids(ids), "ids", at + 7, "second id a 2^32 - 1 byte string");
  ids = ab;
  ids.insert(ids.end(), {1, 0, 0});
  CheckCorrupt(parse_with_ids(ids), "ids", at + 7, "string length cut short");
  ids = ab;
  ids.insert(ids.end(), {2, 0, 0, 0, 0, 0, 0, 0});
  CheckCorrupt(parse_with_ids(ids), "ids", at + 7, "number cut short");
  ids = small.ids;
  ids.push_back(0);
  CheckCorrupt(parse_with_ids(ids), "ids", at + 16, "a byte after the last id");
  CheckCorrupt(parse_with_ids(ab), "ids", at + 7, "one id for two rows");
  CheckCorrupt(parse_with_ids({}), "ids", at, "no ids for two rows");
  Check(!parse_with_ids(small.ids), "the same file with well-formed ids parses");
}

void TestCheckIds() {
  std::printf("CheckIds\n");
  Small small;
  const Bytes& ids = small.ids;  // "ab" (7 bytes), 7.5 (9 bytes)
  Check(!Caught([&] { gf::CheckIds(ids.data(), ids.size(), 2, 1000); }), "two well-formed ids, count 2: accepted");
  Check(!Caught([&] { gf::CheckIds(nullptr, 0, 0, 0); }), "an empty section, count 0: accepted");
  CheckCorrupt(Caught([&] { gf::CheckIds(ids.data(), ids.size(), 3, 1000); }), "ids", 1016, "count 3 for two ids");
  CheckCorrupt(Caught([&] { gf::CheckIds(ids.data(), ids.size(), 1, 1000); }), "ids", 1007, "count 1 for two ids");
  CheckCorrupt(Caught([&] { gf::CheckIds(ids.data(), ids.size(), ~uint64_t(0), 0); }), "ids", 16,
               "count 2^64 - 1 for two ids");
}

void TestSaveArguments(const TempFolder& tmp) {
  std::printf("Save: invalid arguments\n");
  const std::string path = tmp.File("args.mfg");
  Small small;
  const gf::RowSource rows = RowsOf(small.vectors, 4);
  auto invalid = [&](const std::string& what, auto&& fn) {
    const std::optional<Error> e = Caught(fn);
    const bool ok = e && e->code() == ErrorCode::kInvalidArgument;
    Check(ok, what + " -> invalid argument" + (ok ? "" : "; got " + Describe(e)));
  };
  invalid("dim 0", [&] { gf::Save(path, 0, 2, "", small.ids, rows); });
  invalid("dim 65537", [&] { gf::Save(path, 65537, 2, "", small.ids, rows); });
  invalid("meta 1 MiB + 1", [&] { gf::Save(path, 4, 2, std::string((1 << 20) + 1, 'x'), small.ids, rows); });
  invalid("count 3 for two ids", [&] { gf::Save(path, 4, 3, "", small.ids, rows); });
  invalid("an id of kind 9", [&] { gf::Save(path, 4, 1, "", {9, 0, 0, 0, 0, 0, 0, 0, 0}, rows); });
  invalid("no row source", [&] { gf::Save(path, 4, 2, "", small.ids, nullptr); });
  invalid("row 1 all zeros", [&] {
    gf::Save(path, 4, 2, "", small.ids, [](uint64_t index, float* out) {
      for (int d = 0; d < 4; ++d) out[d] = index == 1 ? 0.0f : 1.0f;
    });
  });
  invalid("a NaN in row 1", [&] {
    gf::Save(path, 4, 2, "", small.ids, [](uint64_t index, float* out) {
      for (int d = 0; d < 4; ++d) out[d] = index == 1 && d == 3 ? std::nanf("") : 1.0f;
    });
  });
  Check(!fs::exists(path) && tmp.Entries().empty(), "nothing is written, no temporary file is left");
  gf::Save(path, 4, 2, std::string(1 << 20, 'x'), small.ids, rows);
  Check(gf::Load(path).meta.size() == 1 << 20, "meta of exactly 1 MiB is saved and loaded");
  fs::remove(path);
}

void TestSaveFailures(const TempFolder& tmp) {
  std::printf("Save: file system failures and failing row sources\n");
  Small small;
  const std::string missing = tmp.File("no-such-folder/g.mfg");
  const std::optional<Error> e = Caught([&] { gf::Save(missing, 4, 2, "", small.ids, RowsOf(small.vectors, 4)); });
  const bool ok = IsIo(e, missing, "ENOENT");
  Check(ok, "a missing folder -> ERR_IO, details path and errno ENOENT" + (ok ? "" : "; got " + Describe(e)));
  Check(tmp.Entries().empty(), "nothing is left behind");

  const std::string target = tmp.File("g.mfg");
  gf::Save(target, 4, 2, "old", small.ids, RowsOf(small.vectors, 4));
  const Bytes old_bytes = ReadAll(target);
  struct RowFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  bool propagated = false;
  try {
    gf::Save(target, 4, 2, "new", small.ids, [](uint64_t index, float* out) {
      if (index == 1) throw RowFailure("row 1 is not available");
      for (int d = 0; d < 4; ++d) out[d] = 0.5f;
    });
  } catch (const RowFailure& failure) {
    propagated = std::string(failure.what()) == "row 1 is not available";
  }
  Check(propagated, "the row source's exception propagates unchanged");
  Check(ReadAll(target) == old_bytes && gf::Load(target).meta == "old", "the old file is left as it was and loads");
  Check(tmp.Entries() == std::vector<std::string>{"g.mfg"}, "no temporary file is left");
  fs::remove(target);
}

void TestLoadFailures(const TempFolder& tmp) {
  std::printf("Load: file system failures\n");
  const std::string missing = tmp.File("missing.mfg");
  std::optional<Error> e = Caught([&] { gf::Load(missing); });
  bool ok = IsIo(e, missing, "ENOENT") &&
            std::string(e->what()) == "Cannot open gallery file " + missing + ": No such file or directory";
  Check(ok, "a missing file -> ERR_IO, details path and errno ENOENT, message in words" +
                (ok ? "" : "; got " + Describe(e)));
  e = Caught([&] { gf::Load(tmp.path.string()); });
  ok = IsIo(e, tmp.path.string(), "EISDIR");
  Check(ok, "a folder -> ERR_IO, errno EISDIR" + (ok ? "" : "; got " + Describe(e)));

  // Load goes through the same checks as Parse.
  const std::string short_file = tmp.File("short.mfg");
  const Bytes file = Small().File();
  std::ofstream(short_file, std::ios::binary).write(reinterpret_cast<const char*>(file.data()), 250);
  CheckCorrupt(Caught([&] { gf::Load(short_file); }), "file", 250, "Load of a file cut at 250 bytes");
  fs::remove(short_file);
}

}  // namespace

int main() {
  TempFolder tmp("maskface-gallery-file-test");
  TestRoundTripEmpty(tmp);
  TestRoundTripRows(tmp);
  TestRoundTripF16(tmp);
  TestRoundTripLarge(tmp);
  TestTruncation();
  TestBitFlips();
  TestExtended();
  TestVersion();
  TestForgedFields();
  TestNonFiniteValues();
  TestMalformedIds();
  TestCheckIds();
  TestSaveArguments(tmp);
  TestSaveFailures(tmp);
  TestLoadFailures(tmp);
  std::printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
