// What the libFuzzer targets of native/fuzz share: a reader that turns the fuzz bytes into
// parameters (sizes, flags, floats with their special values), and the check that makes a broken
// invariant a finding. Every read succeeds: past the end of the input it reads zeros, so any input
// is a valid program and the fuzzer spends no time on rejected ones.
#pragma once
#include <stdlib.h>  // mkdtemp

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "core/align.h"
#include "core/error.h"

namespace maskface::fuzz {

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return size_ == 0; }
  size_t remaining() const { return size_; }

  uint8_t Byte() {
    if (size_ == 0) return 0;
    --size_;
    return *data_++;
  }
  bool Bool() { return Byte() & 1; }
  uint16_t U16() { return static_cast<uint16_t>(Byte() | Byte() << 8); }
  uint32_t U32() { return static_cast<uint32_t>(U16()) | static_cast<uint32_t>(U16()) << 16; }
  uint64_t U64() { return static_cast<uint64_t>(U32()) | static_cast<uint64_t>(U32()) << 32; }

  // An int in [lo, hi], from as few bytes as the range needs.
  int Int(int lo, int hi) {
    const uint64_t span = static_cast<uint64_t>(static_cast<int64_t>(hi) - lo) + 1;
    const uint64_t raw = span <= 256 ? Byte() : span <= 65536 ? U16() : U32();
    return static_cast<int>(lo + static_cast<int64_t>(raw % span));
  }

  // Any int: mostly small, sometimes a boundary or 32 raw bits.
  int AnyInt() {
    switch (Byte() % 8) {
      case 0: return std::numeric_limits<int>::max();
      case 1: return std::numeric_limits<int>::min();
      case 2: return static_cast<int>(U32());
      case 3: return -static_cast<int>(Byte());
      default: return static_cast<int>(U16() % 300);
    }
  }

  // A double: a special value (NaN, infinities, extremes, denormals, signed zeros), a small
  // multiple of 1/16 (coordinates, scales), or 64 raw bits (anything at all).
  double Double() {
    const uint8_t kind = Byte();
    if (kind < 64) return Special(kind);
    if (kind < 192) return static_cast<int16_t>(U16()) / 16.0;
    uint64_t bits = U64();
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }

  // A float: the same mix, in float.
  float Float() {
    const uint8_t kind = Byte();
    if (kind < 64) return static_cast<float>(Special(kind));
    if (kind < 192) return static_cast<float>(static_cast<int16_t>(U16()) / 256.0);
    uint32_t bits = U32();
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }

 private:
  static double Special(uint8_t kind) {
    constexpr double kInf = std::numeric_limits<double>::infinity();
    static const double kSpecial[] = {
        0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 255.0, 127.5,
        std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::quiet_NaN(), kInf, -kInf,
        DBL_MAX, -DBL_MAX, DBL_MIN, std::numeric_limits<double>::denorm_min(),
        FLT_MAX, -FLT_MAX, FLT_MIN, std::numeric_limits<float>::denorm_min(),
        1e300, -1e300, 1e-300, 1e-310,
        1e30, -1e30, 1e15, -1e15, 1e-15, 4294967296.0, 2147483647.0, -2147483648.0,
        1.0 + DBL_EPSILON, 1.0 - DBL_EPSILON / 2, 1e-7, 0.1, 64.0, 65.0, 63.5, -0.5};
    return kSpecial[kind % (sizeof kSpecial / sizeof kSpecial[0])];
  }

  const uint8_t* data_;
  size_t size_;
};

// A broken invariant: print it and abort, which libFuzzer records as a crash with its input.
[[noreturn]] inline void Fail(const char* what, const char* file, int line) {
  std::fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", file, line, what);
  std::abort();
}

// Whether WarpToTensor / WarpToImage must accept a map for an out_width x out_height output
// (core/align.cc, ValidateWarpArguments): finite, and every term of an output pixel's source
// position (m[0] x, m[1] y, m[2], m[3] x, m[4] y, m[5]) within 2^40 pixels. Larger terms reached
// two bugs before they were refused (test/fuzz-corpus/fuzz_warp/crash-border-nan: a NaN
// position, static_cast<int>(NaN); crash-fixed-step-overflow: int64 overflow of the 32.32
// fixed-point positions).
inline bool WarpAccepts(const Affine& map, int out_width, int out_height) {
  const double* m = map.m;
  for (int i = 0; i < 6; ++i) {
    if (!std::isfinite(m[i])) return false;
  }
  const double last_x = out_width - 1.0, last_y = out_height - 1.0;
  constexpr double kMaxTerm = 1099511627776.0;  // 2^40
  const double terms[6] = {m[0] * last_x, m[1] * last_y, m[2], m[3] * last_x, m[4] * last_y, m[5]};
  for (double t : terms) {
    if (!(std::fabs(t) <= kMaxTerm)) return false;
  }
  return true;
}

// An image over a buffer of exactly the bytes its view covers, so that AddressSanitizer sees any
// read past the last pixel or before the first. Sizes 1..max_side, channels 1, 3 or 4, rows padded
// by 0..15 bytes (or row_stride 0, meaning width * channels), pixels from a pattern or the input.
struct FuzzImage {
  std::vector<uint8_t> pixels;
  ImageView view;
};

inline FuzzImage ReadImage(Reader& in, int max_side = 64) {
  static const int kChannels[3] = {1, 3, 4};
  FuzzImage image;
  ImageView& v = image.view;
  v.width = in.Int(1, max_side);
  v.height = in.Int(1, max_side);
  v.channels = kChannels[in.Int(0, 2)];
  v.bgr = in.Bool();
  const int pad = in.Int(0, 16);
  const size_t row_bytes = static_cast<size_t>(v.width) * v.channels;
  v.row_stride = pad == 16 ? 0 : row_bytes + pad;
  const size_t stride = v.row_stride != 0 ? v.row_stride : row_bytes;
  image.pixels.resize((v.height - 1) * stride + row_bytes);
  const int mode = in.Int(0, 3);
  const uint8_t seed = in.Byte();
  uint8_t pattern[32] = {};
  const int pattern_size = mode == 3 ? in.Int(1, 32) : 1;
  for (int i = 0; i < pattern_size; ++i) pattern[i] = in.Byte();
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    switch (mode) {
      case 0: image.pixels[i] = static_cast<uint8_t>(i * 131 + seed * 7 + (i >> 5)); break;
      case 1: image.pixels[i] = 255; break;
      case 2: image.pixels[i] = 0; break;
      default: image.pixels[i] = pattern[i % pattern_size]; break;
    }
  }
  v.data = image.pixels.data();
  return image;
}

}  // namespace maskface::fuzz

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) ::maskface::fuzz::Fail(#cond, __FILE__, __LINE__); \
  } while (0)

// fn() must throw maskface::Error (a rejected argument); returning normally is a finding.
#define FUZZ_EXPECT_ERROR(...)                                                    \
  do {                                                                            \
    bool thrown_ = false;                                                         \
    try {                                                                         \
      __VA_ARGS__;                                                                \
    } catch (const ::maskface::Error&) {                                          \
      thrown_ = true;                                                             \
    }                                                                             \
    if (!thrown_) ::maskface::fuzz::Fail("no maskface::Error from: " #__VA_ARGS__, __FILE__, __LINE__); \
  } while (0)

namespace maskface::fuzz {

// A folder for the files a target writes (Save fsyncs), on tmpfs where there is one, removed at exit.
struct ScratchFolder {
  std::filesystem::path path;
  explicit ScratchFolder(const std::string& prefix) {
    const std::filesystem::path base =
        std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path();
    std::string name = (base / (prefix + "-XXXXXX")).string();
    if (mkdtemp(name.data()) == nullptr) Fail("mkdtemp failed", __FILE__, __LINE__);
    path = name;
  }
  ~ScratchFolder() { std::filesystem::remove_all(path); }
};

}  // namespace maskface::fuzz
