#include "core/align.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/error.h"

namespace maskface {

const double kArcFaceTemplate112[10] = {
    38.2946, 51.6963,  // left eye
    73.5318, 51.5014,  // right eye
    56.0252, 71.7366,  // nose tip
    41.5493, 92.3655,  // left mouth corner
    70.7299, 92.2041,  // right mouth corner
};

namespace {

bool AllFiniteDoubles(const double* v, int n) {
  for (int i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) return false;
  }
  return true;
}

// Mean of a point set and its spread (sum of squared distances to the mean).
struct PointStats {
  double mean_x = 0.0;
  double mean_y = 0.0;
  double spread = 0.0;
  bool degenerate = true;
};

PointStats ComputePointStats(const double* points, int n) {
  PointStats stats;
  double magnitude = 0.0;
  for (int i = 0; i < n; ++i) {
    stats.mean_x += points[2 * i];
    stats.mean_y += points[2 * i + 1];
    magnitude += points[2 * i] * points[2 * i] + points[2 * i + 1] * points[2 * i + 1];
  }
  stats.mean_x /= n;
  stats.mean_y /= n;
  for (int i = 0; i < n; ++i) {
    const double dx = points[2 * i] - stats.mean_x;
    const double dy = points[2 * i + 1] - stats.mean_y;
    stats.spread += dx * dx + dy * dy;
  }
  // Equal points leave a spread of rounding noise (the mean is inexact), far below this bound;
  // the bound is relative so that it does not depend on the coordinates' unit.
  constexpr double kRelativeSpreadFloor = 1e-20;
  stats.degenerate = !(stats.spread > kRelativeSpreadFloor * magnitude);
  return stats;
}

}  // namespace

bool EstimateSimilarity(const double* src, const double* dst, int n, Affine* out) {
  if (src == nullptr || dst == nullptr || out == nullptr || n < 2) return false;
  if (!AllFiniteDoubles(src, 2 * n) || !AllFiniteDoubles(dst, 2 * n)) return false;
  const PointStats from = ComputePointStats(src, n);
  const PointStats to = ComputePointStats(dst, n);
  // Equal destination points would give a zero scale: no similarity, and no inverse.
  if (from.degenerate || to.degenerate) return false;

  // In 2D, Umeyama's SVD solution (with its reflection guard) reduces to a closed form: the best
  // scale * rotation is [[a, -b], [b, a]] with a + ib = sum(conj(p) q) / sum(|p|^2) over the
  // centred points p (source) and q (destination), written as complex numbers. It never reflects.
  double dot = 0.0;
  double cross = 0.0;
  for (int i = 0; i < n; ++i) {
    const double px = src[2 * i] - from.mean_x;
    const double py = src[2 * i + 1] - from.mean_y;
    const double qx = dst[2 * i] - to.mean_x;
    const double qy = dst[2 * i + 1] - to.mean_y;
    dot += px * qx + py * qy;
    cross += px * qy - py * qx;
  }
  const double a = dot / from.spread;
  const double b = cross / from.spread;
  // Zero when the destination is an exact mirror image of the source around its centre.
  if (a == 0.0 && b == 0.0) return false;

  *out = Affine{{a, -b, to.mean_x - (a * from.mean_x - b * from.mean_y),
                 b, a, to.mean_y - (b * from.mean_x + a * from.mean_y)}};
  return AllFiniteDoubles(out->m, 6);
}

bool InvertAffine(const Affine& a, Affine* out) {
  if (out == nullptr || !AllFiniteDoubles(a.m, 6)) return false;
  const double* m = a.m;
  const double det = m[0] * m[4] - m[1] * m[3];
  // Relative test: a determinant that is only cancellation noise means singular too.
  constexpr double kRelativeDeterminantFloor = 1e-14;
  if (!(std::abs(det) > kRelativeDeterminantFloor * (std::abs(m[0] * m[4]) + std::abs(m[1] * m[3])))) {
    return false;
  }
  const double i0 = m[4] / det, i1 = -m[1] / det;
  const double i3 = -m[3] / det, i4 = m[0] / det;
  *out = Affine{{i0, i1, -(i0 * m[2] + i1 * m[5]), i3, i4, -(i3 * m[2] + i4 * m[5])}};
  return AllFiniteDoubles(out->m, 6);
}

Affine ResizeMap(int src_width, int src_height, int out_width, int out_height) {
  MF_CHECK_ARG(src_width > 0 && src_height > 0, "ResizeMap: source size must be positive");
  MF_CHECK_ARG(out_width > 0 && out_height > 0, "ResizeMap: output size must be positive");
  const double scale_x = static_cast<double>(src_width) / out_width;
  const double scale_y = static_cast<double>(src_height) / out_height;
  return Affine{{scale_x, 0.0, 0.5 * scale_x - 0.5, 0.0, scale_y, 0.5 * scale_y - 0.5}};
}

Affine MirrorOutput(const Affine& out_to_src, int width) {
  const double* m = out_to_src.m;
  const double last = width - 1;
  return Affine{{-m[0], m[1], m[0] * last + m[2], -m[3], m[4], m[3] * last + m[5]}};
}

namespace {

// Four floats that the compiler keeps in one SIMD register (GCC and Clang vector extensions):
// one pixel's channels, or one value per output channel.
using Float4 = float __attribute__((vector_size(16)));

// How the sampled source channels become output values:
//   value = bias + sum_k column[k] * sample[k]   (lane c of value is output channel c).
// One small matrix covers colour order, grey replication, BT.601 luma and (v - mean) / std.
struct ChannelMix {
  Float4 column[3] = {};
  Float4 bias = {};
};

ChannelMix MakeChannelMix(int src_channels, bool src_bgr, int out_channels, bool out_bgr,
                          const float* mean, const float* std) {
  ChannelMix mix;
  // Index of the red, green and blue samples: colour sources are sampled in their own order.
  const int sample_of_rgb[3] = {src_bgr ? 2 : 0, 1, src_bgr ? 0 : 2};
  constexpr float kLumaWeights[3] = {0.299f, 0.587f, 0.114f};  // BT.601, R G B
  for (int c = 0; c < out_channels; ++c) {
    const float inverse_std = 1.0f / std[c];
    if (src_channels == 1) {
      mix.column[0][c] = inverse_std;
    } else if (out_channels == 1) {
      for (int rgb = 0; rgb < 3; ++rgb) mix.column[sample_of_rgb[rgb]][c] = kLumaWeights[rgb] * inverse_std;
    } else {
      mix.column[sample_of_rgb[out_bgr ? 2 - c : c]][c] = inverse_std;
    }
    mix.bias[c] = -mean[c] * inverse_std;
  }
  return mix;
}

// Pixel loads: the result's lanes 0..2 hold a pixel's first three channels (grey: lane 0 only);
// lane 3 is never used (the mix has three columns), so it may hold anything.
//
// LoadPixel reads exactly the pixel's bytes. Inside a row, a 3-channel pixel is cheaper to fetch
// with one 32-bit read, which reads a byte beyond it: LoadPixelReadAhead reads the byte after it
// (fine for any pixel but the last of a row), LoadPixelReadBehind the byte before it (fine for
// any pixel but the first). A 4-channel pixel is one 32-bit read in all three.
#if defined(__SSE2__)
// Widens the bytes of a little-endian word in integer lanes and converts once: GCC would
// otherwise convert each byte on its own.
inline Float4 BytesToFloats(uint32_t word) {
  const __m128i zero = _mm_setzero_si128();
  const __m128i words = _mm_unpacklo_epi8(_mm_cvtsi32_si128(static_cast<int>(word)), zero);
  return reinterpret_cast<Float4>(_mm_cvtepi32_ps(_mm_unpacklo_epi16(words, zero)));
}

inline uint32_t LoadWord(const uint8_t* p) {
  uint32_t word;
  std::memcpy(&word, p, sizeof word);
  return word;
}

template <int kStride>
Float4 LoadPixel(const uint8_t* p) {
  if constexpr (kStride == 1) return Float4{static_cast<float>(p[0]), 0.0f, 0.0f, 0.0f};
  if constexpr (kStride == 3) return BytesToFloats(p[0] | p[1] << 8 | p[2] << 16);
  return BytesToFloats(LoadWord(p));
}

template <int kStride>
Float4 LoadPixelReadAhead(const uint8_t* p) {
  if constexpr (kStride == 1) return LoadPixel<1>(p);
  return BytesToFloats(LoadWord(p));
}

template <int kStride>
Float4 LoadPixelReadBehind(const uint8_t* p) {
  if constexpr (kStride == 3) return BytesToFloats(LoadWord(p - 1) >> 8);
  return LoadPixelReadAhead<kStride>(p);
}
#else
template <int kStride>
Float4 LoadPixel(const uint8_t* p) {
  if constexpr (kStride == 1) return Float4{static_cast<float>(p[0]), 0.0f, 0.0f, 0.0f};
  return Float4{static_cast<float>(p[0]), static_cast<float>(p[1]), static_cast<float>(p[2]), 0.0f};
}

template <int kStride>
Float4 LoadPixelReadAhead(const uint8_t* p) {
  return LoadPixel<kStride>(p);
}

template <int kStride>
Float4 LoadPixelReadBehind(const uint8_t* p) {
  return LoadPixel<kStride>(p);
}
#endif

void ValidateWarpArguments(const char* caller, const ImageView& image, const Affine& out_to_src,
                           int out_width, int out_height, int out_channels, const void* out) {
  const std::string prefix = std::string(caller) + ": ";
  MF_CHECK_ARG(image.data != nullptr, prefix + "image data is null");
  MF_CHECK_ARG(image.width > 0 && image.height > 0, prefix + "image size must be positive");
  MF_CHECK_ARG(image.channels == 1 || image.channels == 3 || image.channels == 4,
               prefix + "image channels must be 1, 3 or 4");
  MF_CHECK_ARG(image.row_stride == 0 ||
                   image.row_stride >= static_cast<size_t>(image.width) * image.channels,
               prefix + "image row_stride is smaller than width * channels");
  MF_CHECK_ARG(out_width > 0 && out_height > 0, prefix + "output size must be positive");
  MF_CHECK_ARG(out_channels == 1 || out_channels == 3, prefix + "output channels must be 1 or 3");
  MF_CHECK_ARG(AllFiniteDoubles(out_to_src.m, 6), prefix + "transform is not finite");
  // Every term of an output pixel's source position must stay within 2^40 pixels: beyond, the
  // terms can overflow to opposite infinities (a NaN position) or round so far that the interior
  // span's 32.32 fixed-point positions overflow. No image is that large; such a map is a mistake.
  const double last_x = out_width - 1.0, last_y = out_height - 1.0;
  constexpr double kMaxTerm = 1099511627776.0;  // 2^40
  const double* m = out_to_src.m;
  for (double term : {m[0] * last_x, m[1] * last_y, m[2], m[3] * last_x, m[4] * last_y, m[5]}) {
    MF_CHECK_ARG(std::fabs(term) <= kMaxTerm, prefix + "transform sends output pixels more than 2^40 pixels away");
  }
  MF_CHECK_ARG(out != nullptr, prefix + "output buffer is null");
}

// Narrows the output columns [*first, *last] (real-valued) to those where
// 0 <= start + step * x <= limit.
void NarrowToRange(double start, double step, double limit, double* first, double* last) {
  if (step == 0.0) {
    if (!(start >= 0.0 && start <= limit)) *last = -1.0;  // no column qualifies
    return;
  }
  double from = -start / step;
  double to = (limit - start) / step;
  if (step < 0.0) std::swap(from, to);
  *first = std::max(*first, from);
  *last = std::min(*last, to);
}

// The columns [begin, end) of one output row whose source position lies in
// [0, width - 1] x [0, height - 1], so that all four neighbours (up to rounding) are pixels.
struct Span {
  int begin = 0;
  int end = 0;
};

Span InteriorSpan(double row_x, double row_y, const double* m, int width, int height, int out_width) {
  if (width < 2 || height < 2) return Span{};
  double first = 0.0;
  double last = out_width - 1.0;
  NarrowToRange(row_x, m[0], width - 1.0, &first, &last);
  NarrowToRange(row_y, m[3], height - 1.0, &first, &last);
  if (!(first <= last)) return Span{};
  const int begin = static_cast<int>(std::ceil(first));
  return Span{begin, std::max(begin, static_cast<int>(std::floor(last)) + 1)};
}

// Bilinear sampling of every output pixel, handing the mixed channel values to
// store(pixel, std::array<float, kOutChannels>). kStride is the source's bytes per pixel (1, 3 or
// 4; a 4th channel is never used). Both are constants so that the channel loops unroll.
// Each row runs in three parts: a branch-free loop over the columns whose neighbours are all
// inside the image, and a checked loop for the columns before and after them.
template <int kStride, int kOutChannels, typename Store>
void WarpPixels(const ImageView& image, const Affine& out_to_src, int out_width, int out_height,
                const ChannelMix& mix, Store store) {
  const uint8_t* data = image.data;
  const int width = image.width;
  const int height = image.height;
  const ptrdiff_t row_stride = static_cast<ptrdiff_t>(
      image.row_stride != 0 ? image.row_stride : static_cast<size_t>(width) * kStride);
  const double* m = out_to_src.m;

  for (int y = 0; y < out_height; ++y) {
    const double row_x = m[1] * y + m[2];
    const double row_y = m[4] * y + m[5];
    const size_t row_pixel = static_cast<size_t>(y) * out_width;

    auto emit = [&](int x, float fx, float fy, Float4 top_left, Float4 top_right, Float4 bottom_left,
                    Float4 bottom_right) {
      const Float4 upper = top_left + fx * (top_right - top_left);
      const Float4 lower = bottom_left + fx * (bottom_right - bottom_left);
      const Float4 sample = upper + fy * (lower - upper);
      Float4 mixed = mix.bias + mix.column[0] * sample[0];
      if (kStride != 1) mixed += mix.column[1] * sample[1] + mix.column[2] * sample[2];
      std::array<float, kOutChannels> value;
      for (int c = 0; c < kOutChannels; ++c) value[c] = mixed[c];
      store(row_pixel + x, value);
    };

    // Columns with a neighbour outside the image: those neighbours read as 0. Clamping to
    // [-2, size + 1] keeps the int conversion defined and changes no sample: beyond -1 or size,
    // all four neighbours are outside anyway.
    auto border_pixel = [&](int x) {
      const double sx = std::clamp(row_x + m[0] * x, -2.0, width + 1.0);
      const double sy = std::clamp(row_y + m[3] * x, -2.0, height + 1.0);
      int x0 = static_cast<int>(sx);
      int y0 = static_cast<int>(sy);
      x0 -= x0 > sx;  // floor (the cast truncates toward zero)
      y0 -= y0 > sy;
      const bool left_in = static_cast<unsigned>(x0) < static_cast<unsigned>(width);
      const bool right_in = static_cast<unsigned>(x0 + 1) < static_cast<unsigned>(width);
      const bool top_in = static_cast<unsigned>(y0) < static_cast<unsigned>(height);
      const bool bottom_in = static_cast<unsigned>(y0 + 1) < static_cast<unsigned>(height);
      // Offsets, not pointers: a pointer is only formed for a neighbour inside the image.
      const ptrdiff_t top_left = y0 * row_stride + x0 * kStride;
      const ptrdiff_t bottom_left = top_left + row_stride;
      const Float4 zero = {};
      emit(x, static_cast<float>(sx - x0), static_cast<float>(sy - y0),
           top_in && left_in ? LoadPixel<kStride>(data + top_left) : zero,
           top_in && right_in ? LoadPixel<kStride>(data + (top_left + kStride)) : zero,
           bottom_in && left_in ? LoadPixel<kStride>(data + bottom_left) : zero,
           bottom_in && right_in ? LoadPixel<kStride>(data + (bottom_left + kStride)) : zero);
    };

    const Span span = InteriorSpan(row_x, row_y, m, width, height, out_width);
    for (int x = 0; x < span.begin; ++x) border_pixel(x);
    if (span.begin < span.end) {
      // Inside the span the source position steps in 32.32 fixed point: the floor is a shift and
      // the fraction one conversion per axis, where double coordinates cost three conversions
      // (twice the time of the whole loop otherwise). Each step rounds by at most 2^-33 pixel,
      // far below float resolution; interpolation stays in float. Positions here lie in the
      // image, so they fit. Steps are only taken in spans of two or more columns, where
      // |step| < size; the clamp keeps a lone column's unused step from overflowing.
      constexpr double kOne = 4294967296.0;  // 2^32
      constexpr double kMaxStep = 1 << 30;
      int64_t fixed_x = std::llround((row_x + m[0] * span.begin) * kOne);
      int64_t fixed_y = std::llround((row_y + m[3] * span.begin) * kOne);
      const int64_t step_x = std::llround(std::clamp(m[0], -kMaxStep, kMaxStep) * kOne);
      const int64_t step_y = std::llround(std::clamp(m[3], -kMaxStep, kMaxStep) * kOne);
      for (int x = span.begin; x < span.end; ++x, fixed_x += step_x, fixed_y += step_y) {
        // 0 <= position <= size - 1 up to rounding. Capping the cell at size - 2 keeps the right
        // and lower neighbours inside: on the last column the fraction is then 1, which lands on
        // them exactly. (A rounding excursion past the edge changes the sample negligibly: the
        // zero-border interpolation is continuous.)
        const int x0 = static_cast<int>(std::clamp<int64_t>(fixed_x >> 32, 0, width - 2));
        const int y0 = static_cast<int>(std::clamp<int64_t>(fixed_y >> 32, 0, height - 2));
        const float fx = static_cast<float>(fixed_x - (static_cast<int64_t>(x0) << 32)) * (1.0f / kOne);
        const float fy = static_cast<float>(fixed_y - (static_cast<int64_t>(y0) << 32)) * (1.0f / kOne);
        const uint8_t* top = data + y0 * row_stride + x0 * kStride;
        const uint8_t* bottom = top + row_stride;
        // The left neighbours are never a row's last pixel, nor the right ones its first.
        emit(x, fx, fy, LoadPixelReadAhead<kStride>(top), LoadPixelReadBehind<kStride>(top + kStride),
             LoadPixelReadAhead<kStride>(bottom), LoadPixelReadBehind<kStride>(bottom + kStride));
      }
    }
    for (int x = span.end; x < out_width; ++x) border_pixel(x);
  }
}

template <int N>
using IntConstant = std::integral_constant<int, N>;

// Calls warp(stride, out_channels) with both as compile-time constants (IntConstant).
template <typename Warp>
void WithConstantChannels(int stride, int out_channels, Warp warp) {
  auto with_stride = [&](auto constant_stride) {
    if (out_channels == 1) {
      warp(constant_stride, IntConstant<1>{});
    } else {
      warp(constant_stride, IntConstant<3>{});
    }
  };
  switch (stride) {
    case 1: with_stride(IntConstant<1>{}); break;
    case 3: with_stride(IntConstant<3>{}); break;
    default: with_stride(IntConstant<4>{}); break;
  }
}

}  // namespace

void WarpToTensor(const ImageView& image, const Affine& out_to_src, const TensorSpec& spec, float* out) {
  ValidateWarpArguments("WarpToTensor", image, out_to_src, spec.width, spec.height, spec.channels, out);
  for (int c = 0; c < spec.channels; ++c) {
    // 1 / std must be finite too: a zero or subnormal std would turn every value into +-Inf.
    MF_CHECK_ARG(std::isfinite(spec.mean[c]) && std::isfinite(spec.std[c]) &&
                     std::isfinite(1.0f / spec.std[c]),
                 "WarpToTensor: mean and std must be finite, std not zero");
  }
  const ChannelMix mix =
      MakeChannelMix(image.channels, image.bgr, spec.channels, spec.bgr, spec.mean, spec.std);
  const size_t plane = static_cast<size_t>(spec.width) * spec.height;
  WithConstantChannels(image.channels, spec.channels, [&](auto stride, auto out_channels) {
    WarpPixels<stride, out_channels>(image, out_to_src, spec.width, spec.height, mix,
                                     [out, plane](size_t pixel, const auto& value) {
                                       for (size_t c = 0; c < value.size(); ++c) out[c * plane + pixel] = value[c];
                                     });
  });
}

void WarpToImage(const ImageView& image, const Affine& out_to_src, int out_width, int out_height,
                 int out_channels, bool out_bgr, uint8_t* out) {
  ValidateWarpArguments("WarpToImage", image, out_to_src, out_width, out_height, out_channels, out);
  constexpr float kZero[3] = {0.0f, 0.0f, 0.0f};
  constexpr float kOne[3] = {1.0f, 1.0f, 1.0f};
  const ChannelMix mix = MakeChannelMix(image.channels, image.bgr, out_channels, out_bgr, kZero, kOne);
  WithConstantChannels(image.channels, out_channels, [&](auto stride, auto constant_out_channels) {
    WarpPixels<stride, constant_out_channels>(
        image, out_to_src, out_width, out_height, mix, [out](size_t pixel, const auto& value) {
          for (size_t c = 0; c < value.size(); ++c) {
            // Clamp first: the luma of 255s may round a hair above 255.
            const float v = std::clamp(value[c], 0.0f, 255.0f);
            out[pixel * value.size() + c] = static_cast<uint8_t>(v + 0.5f);
          }
        });
  });
}

}  // namespace maskface
