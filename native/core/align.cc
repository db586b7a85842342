#include "core/align.h"

#include <algorithm>
#include <cmath>
#include <string>

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

namespace {

// How the sampled source channels become output values:
//   value[c] = bias[c] + sum_k weight[c][k] * sample[k].
// One small matrix covers colour order, grey replication, BT.601 luma and (v - mean) / std.
struct ChannelMix {
  int out_channels = 3;
  float weight[3][3] = {};
  float bias[3] = {};
};

ChannelMix MakeChannelMix(int src_channels, bool src_bgr, int out_channels, bool out_bgr,
                          const float* mean, const float* std) {
  ChannelMix mix;
  mix.out_channels = out_channels;
  // Index of the red, green and blue samples: colour sources are sampled in their own order.
  const int sample_of_rgb[3] = {src_bgr ? 2 : 0, 1, src_bgr ? 0 : 2};
  constexpr float kLumaWeights[3] = {0.299f, 0.587f, 0.114f};  // BT.601, R G B
  for (int c = 0; c < out_channels; ++c) {
    if (src_channels == 1) {
      mix.weight[c][0] = 1.0f;
    } else if (out_channels == 1) {
      for (int rgb = 0; rgb < 3; ++rgb) mix.weight[c][sample_of_rgb[rgb]] = kLumaWeights[rgb];
    } else {
      const int rgb = out_bgr ? 2 - c : c;
      mix.weight[c][sample_of_rgb[rgb]] = 1.0f;
    }
    const float inverse_std = 1.0f / std[c];
    for (float& w : mix.weight[c]) w *= inverse_std;
    mix.bias[c] = -mean[c] * inverse_std;
  }
  return mix;
}

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
  MF_CHECK_ARG(out != nullptr, prefix + "output buffer is null");
}

// Bilinear sampling of every output pixel, handing the mixed channel values to store(pixel, value).
// kStride is the source's bytes per pixel (1, 3 or 4); a 4th channel is never read.
template <int kStride, typename Store>
void WarpPixels(const ImageView& image, const Affine& out_to_src, int out_width, int out_height,
                const ChannelMix& mix, Store store) {
  constexpr int kSampled = kStride == 1 ? 1 : 3;
  const uint8_t* data = image.data;
  const int width = image.width;
  const int height = image.height;
  const size_t row_stride =
      image.row_stride != 0 ? image.row_stride : static_cast<size_t>(width) * kStride;
  const double* m = out_to_src.m;
  // A coordinate below -1 or above size has all its neighbours outside the image, so clamping to
  // [-2, size + 1] leaves the sample (0) unchanged and keeps the int conversion defined.
  const double max_x = width + 1.0;
  const double max_y = height + 1.0;

  size_t pixel = 0;
  for (int y = 0; y < out_height; ++y) {
    const double row_x = m[1] * y + m[2];
    const double row_y = m[4] * y + m[5];
    for (int x = 0; x < out_width; ++x, ++pixel) {
      const double sx = std::clamp(row_x + m[0] * x, -2.0, max_x);
      const double sy = std::clamp(row_y + m[3] * x, -2.0, max_y);
      int x0 = static_cast<int>(sx);
      int y0 = static_cast<int>(sy);
      x0 -= x0 > sx;  // floor without a libm call (the cast truncates toward zero)
      y0 -= y0 > sy;
      const float fx = static_cast<float>(sx - x0);
      const float fy = static_cast<float>(sy - y0);

      float sample[kSampled];
      if (static_cast<unsigned>(x0) < static_cast<unsigned>(width - 1) &&
          static_cast<unsigned>(y0) < static_cast<unsigned>(height - 1)) {
        // All four neighbours inside: the common case, no per-neighbour checks.
        const uint8_t* top = data + static_cast<size_t>(y0) * row_stride + static_cast<size_t>(x0) * kStride;
        const uint8_t* bottom = top + row_stride;
        for (int k = 0; k < kSampled; ++k) {
          const float upper = top[k] + fx * (top[k + kStride] - top[k]);
          const float lower = bottom[k] + fx * (bottom[k + kStride] - bottom[k]);
          sample[k] = upper + fy * (lower - upper);
        }
      } else {
        // Image border: neighbours outside the image read as 0.
        const bool left_in = static_cast<unsigned>(x0) < static_cast<unsigned>(width);
        const bool right_in = static_cast<unsigned>(x0 + 1) < static_cast<unsigned>(width);
        const bool top_in = static_cast<unsigned>(y0) < static_cast<unsigned>(height);
        const bool bottom_in = static_cast<unsigned>(y0 + 1) < static_cast<unsigned>(height);
        const uint8_t* top = top_in ? data + static_cast<size_t>(y0) * row_stride : nullptr;
        const uint8_t* bottom = bottom_in ? data + static_cast<size_t>(y0 + 1) * row_stride : nullptr;
        const size_t left = static_cast<size_t>(x0) * kStride;
        const size_t right = left + kStride;
        for (int k = 0; k < kSampled; ++k) {
          const float top_left = top && left_in ? top[left + k] : 0.0f;
          const float top_right = top && right_in ? top[right + k] : 0.0f;
          const float bottom_left = bottom && left_in ? bottom[left + k] : 0.0f;
          const float bottom_right = bottom && right_in ? bottom[right + k] : 0.0f;
          const float upper = top_left + fx * (top_right - top_left);
          const float lower = bottom_left + fx * (bottom_right - bottom_left);
          sample[k] = upper + fy * (lower - upper);
        }
      }

      float value[3];
      for (int c = 0; c < mix.out_channels; ++c) {
        float v = mix.bias[c];
        for (int k = 0; k < kSampled; ++k) v += mix.weight[c][k] * sample[k];
        value[c] = v;
      }
      store(pixel, value);
    }
  }
}

template <typename Store>
void WarpAnyStride(const ImageView& image, const Affine& out_to_src, int out_width, int out_height,
                   const ChannelMix& mix, Store store) {
  switch (image.channels) {
    case 1: WarpPixels<1>(image, out_to_src, out_width, out_height, mix, store); break;
    case 3: WarpPixels<3>(image, out_to_src, out_width, out_height, mix, store); break;
    default: WarpPixels<4>(image, out_to_src, out_width, out_height, mix, store); break;
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
  WarpAnyStride(image, out_to_src, spec.width, spec.height, mix,
                [out, plane, channels = spec.channels](size_t pixel, const float* value) {
                  for (int c = 0; c < channels; ++c) out[c * plane + pixel] = value[c];
                });
}

void WarpToImage(const ImageView& image, const Affine& out_to_src, int out_width, int out_height,
                 int out_channels, bool out_bgr, uint8_t* out) {
  ValidateWarpArguments("WarpToImage", image, out_to_src, out_width, out_height, out_channels, out);
  constexpr float kZero[3] = {0.0f, 0.0f, 0.0f};
  constexpr float kOne[3] = {1.0f, 1.0f, 1.0f};
  const ChannelMix mix = MakeChannelMix(image.channels, image.bgr, out_channels, out_bgr, kZero, kOne);
  WarpAnyStride(image, out_to_src, out_width, out_height, mix,
                [out, out_channels](size_t pixel, const float* value) {
                  for (int c = 0; c < out_channels; ++c) {
                    // Clamp first: the luma of 255s may round a hair above 255.
                    const float v = std::clamp(value[c], 0.0f, 255.0f);
                    out[pixel * out_channels + c] = static_cast<uint8_t>(v + 0.5f);
                  }
                });
}

}  // namespace maskface
