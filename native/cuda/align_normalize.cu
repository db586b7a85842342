// Alignment warp + normalisation on the GPU: a batch of HWC uint8 images of any sizes, each with
// its own 2x3 output-to-source map, into one NCHW fp32 or fp16 tensor. The maths follows
// native/core/align.cc (WarpToTensor) formula by formula so the two agree to float rounding:
// source position in double, floor and fraction as in its border path, bilinear in float in the
// same order, then the same channel mix (bias + column * sample).
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "cuda/cuda_check.h"
#include "cuda/launchers.h"

namespace maskface::cuda {
namespace {

// One image as the kernel sees it (80 bytes).
struct AlignImage {
  const uint8_t* data;
  long long row_stride;
  double m[6];
  int width;
  int height;
  int channels;
  int bgr;
};

// Images per launch: the descriptors travel as the kernel's parameter (no device copy to keep
// alive, nothing to synchronise), and 40 of them stay under the classic 4 KiB parameter limit.
constexpr int kImagesPerLaunch = 40;

struct AlignLaunch {
  AlignImage images[kImagesPerLaunch];
  int out_width;
  int out_height;
  int out_channels;
  int out_bgr;
  // value = bias[c] + inverse_std[c] * sample, as MakeChannelMix in align.cc builds it.
  float inverse_std[3];
  float bias[3];
  void* out;              // the whole batch
  long long first_image;  // index in the batch of images[0]
};

constexpr int kBlockX = 32;
constexpr int kBlockY = 8;

__device__ __forceinline__ void Store(float* out, size_t at, float v) { out[at] = v; }
__device__ __forceinline__ void Store(__half* out, size_t at, float v) { out[at] = __float2half_rn(v); }

// Reads pixel (x, y)'s first min(channels, 3) channels, or zeros outside the image.
__device__ __forceinline__ void LoadPixel(const AlignImage& image, int x, int y, float* v) {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) {
    v[0] = v[1] = v[2] = 0.0f;
    return;
  }
  const uint8_t* p = image.data + y * image.row_stride + static_cast<long long>(x) * image.channels;
  v[0] = __ldg(p);
  if (image.channels == 1) {
    v[1] = v[2] = 0.0f;
  } else {
    v[1] = __ldg(p + 1);
    v[2] = __ldg(p + 2);
  }
}

// One thread per output pixel; blockIdx.z picks the image within the launch.
template <typename Out>
__global__ void __launch_bounds__(kBlockX* kBlockY)
    align_normalize_kernel(const __grid_constant__ AlignLaunch launch) {
  const int x = blockIdx.x * kBlockX + threadIdx.x;
  const int y = blockIdx.y * kBlockY + threadIdx.y;
  if (x >= launch.out_width || y >= launch.out_height) return;
  const AlignImage& image = launch.images[blockIdx.z];
  const double* m = image.m;

  // As align.cc's border path: the row start first, then the column step; clamping to
  // [-2, size + 1] changes no sample (all four neighbours are outside beyond -1 or size).
  const double row_x = m[1] * y + m[2];
  const double row_y = m[4] * y + m[5];
  const double sx = fmin(fmax(row_x + m[0] * x, -2.0), image.width + 1.0);
  const double sy = fmin(fmax(row_y + m[3] * x, -2.0), image.height + 1.0);
  const double floor_x = floor(sx);
  const double floor_y = floor(sy);
  const int x0 = static_cast<int>(floor_x);
  const int y0 = static_cast<int>(floor_y);
  const float fx = static_cast<float>(sx - floor_x);
  const float fy = static_cast<float>(sy - floor_y);

  float top_left[3], top_right[3], bottom_left[3], bottom_right[3];
  LoadPixel(image, x0, y0, top_left);
  LoadPixel(image, x0 + 1, y0, top_right);
  LoadPixel(image, x0, y0 + 1, bottom_left);
  LoadPixel(image, x0 + 1, y0 + 1, bottom_right);
  float sample[3];
#pragma unroll
  for (int k = 0; k < 3; ++k) {
    const float upper = top_left[k] + fx * (top_right[k] - top_left[k]);
    const float lower = bottom_left[k] + fx * (bottom_right[k] - bottom_left[k]);
    sample[k] = upper + fy * (lower - upper);
  }

  // The channel mix of align.cc's MakeChannelMix: grey sources replicate, colour sources become
  // grey with BT.601 luma, colour to colour reorders by the two channel orders.
  const int red = image.bgr ? 2 : 0;
  const int blue = image.bgr ? 0 : 2;
  const size_t plane = static_cast<size_t>(launch.out_width) * launch.out_height;
  const size_t pixel = static_cast<size_t>(y) * launch.out_width + x;
  const size_t image_base = static_cast<size_t>(launch.first_image + blockIdx.z) * launch.out_channels * plane;
  Out* out = static_cast<Out*>(launch.out);
  if (launch.out_channels == 1) {
    const float inverse_std = launch.inverse_std[0];
    float value;
    if (image.channels == 1) {
      value = launch.bias[0] + inverse_std * sample[0];
    } else {
      value = launch.bias[0] + (0.299f * inverse_std) * sample[red] +
              ((0.587f * inverse_std) * sample[1] + (0.114f * inverse_std) * sample[blue]);
    }
    Store(out, image_base + pixel, value);
    return;
  }
#pragma unroll
  for (int c = 0; c < 3; ++c) {
    int source = 0;  // grey: every output channel reads the one sample
    if (image.channels != 1) {
      const int rgb = launch.out_bgr ? 2 - c : c;  // which colour output channel c holds
      source = rgb == 0 ? red : (rgb == 1 ? 1 : blue);
    }
    Store(out, image_base + c * plane + pixel, launch.bias[c] + launch.inverse_std[c] * sample[source]);
  }
}

void Validate(const AlignNormalizeParams& p) {
  MF_CHECK_ARG(p.n_images >= 0, "align_normalize: n_images must be >= 0");
  MF_CHECK_ARG(p.n_images == 0 || p.images != nullptr, "align_normalize: images is null");
  MF_CHECK_ARG(p.out_width > 0 && p.out_height > 0, "align_normalize: output size must be positive");
  MF_CHECK_ARG(static_cast<long long>(p.out_width) * p.out_height <= (1LL << 30),
               "align_normalize: output image larger than 2^30 pixels");
  MF_CHECK_ARG(p.out_channels == 1 || p.out_channels == 3, "align_normalize: out_channels must be 1 or 3");
  MF_CHECK_ARG(p.out_dtype == MASKFACE_CUDA_F32 || p.out_dtype == MASKFACE_CUDA_F16,
               "align_normalize: out_dtype must be f32 or f16");
  MF_CHECK_ARG(p.n_images == 0 || p.out != nullptr, "align_normalize: out is null");
  for (int c = 0; c < p.out_channels; ++c) {
    // 1 / std must be finite too (as in WarpToTensor).
    MF_CHECK_ARG(std::isfinite(p.mean[c]) && std::isfinite(p.std[c]) && std::isfinite(1.0f / p.std[c]),
                 "align_normalize: mean and std must be finite, std not zero");
  }
  for (int i = 0; i < p.n_images; ++i) {
    const MaskfaceCudaImage& image = p.images[i];
    const std::string at = "align_normalize: image " + std::to_string(i) + ": ";
    MF_CHECK_ARG(image.data != nullptr, at + "data is null");
    MF_CHECK_ARG(image.width > 0 && image.height > 0, at + "size must be positive");
    MF_CHECK_ARG(image.channels == 1 || image.channels == 3 || image.channels == 4,
                 at + "channels must be 1, 3 or 4");
    MF_CHECK_ARG(image.row_stride == 0 || image.row_stride >= static_cast<int64_t>(image.width) * image.channels,
                 at + "row_stride is smaller than width * channels");
    // Clamped positions reach width + 2 and height + 2: keep every int conversion defined.
    MF_CHECK_ARG(image.width < (1 << 30) && image.height < (1 << 30), at + "size too large");
    for (double v : image.out_to_src) MF_CHECK_ARG(std::isfinite(v), at + "transform is not finite");
  }
}

}  // namespace

void LaunchAlignNormalize(const AlignNormalizeParams& p, cudaStream_t stream) {
  Validate(p);
  AlignLaunch launch{};
  launch.out_width = p.out_width;
  launch.out_height = p.out_height;
  launch.out_channels = p.out_channels;
  launch.out_bgr = p.out_bgr != 0;
  for (int c = 0; c < 3; ++c) {
    const int from = c < p.out_channels ? c : 0;
    launch.inverse_std[c] = 1.0f / p.std[from];
    launch.bias[c] = -p.mean[from] * launch.inverse_std[c];
  }
  launch.out = p.out;
  const dim3 block(kBlockX, kBlockY);
  for (int first = 0; first < p.n_images; first += kImagesPerLaunch) {
    const int count = std::min(kImagesPerLaunch, p.n_images - first);
    for (int i = 0; i < count; ++i) {
      const MaskfaceCudaImage& source = p.images[first + i];
      AlignImage& image = launch.images[i];
      image.data = source.data;
      image.row_stride = source.row_stride != 0 ? source.row_stride
                                                : static_cast<long long>(source.width) * source.channels;
      for (int j = 0; j < 6; ++j) image.m[j] = source.out_to_src[j];
      image.width = source.width;
      image.height = source.height;
      image.channels = source.channels;
      image.bgr = source.bgr != 0;
    }
    launch.first_image = first;
    const dim3 grid((p.out_width + kBlockX - 1) / kBlockX, (p.out_height + kBlockY - 1) / kBlockY, count);
    if (p.out_dtype == MASKFACE_CUDA_F16) {
      align_normalize_kernel<__half><<<grid, block, 0, stream>>>(launch);
      MF_CUDA_CHECK_LAST("align_normalize_kernel<half>");
    } else {
      align_normalize_kernel<float><<<grid, block, 0, stream>>>(launch);
      MF_CUDA_CHECK_LAST("align_normalize_kernel<float>");
    }
  }
}

}  // namespace maskface::cuda
