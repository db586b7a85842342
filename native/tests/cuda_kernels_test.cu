// libmaskface_cuda.so against the CPU references, then timings. Runs under ctest; needs a GPU.
//
// Every check uses fresh random inputs and poisoned outputs (NaN / 0x7f bytes), and goes through
// the C ABI (maskface_cuda.h), as the addon will. Without a usable device it prints why and
// exits 77, which CMake registers as SKIP_RETURN_CODE.
//
//   cuda_kernels_test            correctness + quick timings (ctest)
//   cuda_kernels_test --bench    correctness + the full timings of bench/gpu/check.sh
//                                (1M x 512 fp16 gallery, copy bandwidth, batches, attention)
//   cuda_kernels_test --check-only   correctness alone
//   cuda_kernels_test --quick    correctness alone on smaller inputs with the same shapes and
//                                code paths (compute-sanitizer runs each launch ~100x slower)
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "core/align.h"
#include "core/attention_mask.h"
#include "cuda/maskface_cuda.h"
#include "tests/test_check.h"

namespace {

constexpr int kSkip = 77;

using maskface::test::Check;
using maskface::test::g_checks;
using maskface::test::g_failures;

std::string Fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Fmt(const char* format, ...) {
  char text[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof text, format, args);
  va_end(args);
  return text;
}

// Harness-side CUDA failures are fatal: they are not what is under test.
#define HARNESS_CUDA(expr)                                                                       \
  do {                                                                                           \
    const cudaError_t status_ = (expr);                                                          \
    if (status_ != cudaSuccess) {                                                                \
      std::printf("FATAL %s:%d %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(status_)); \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

// A library call that must succeed.
bool Ok(int status, const std::string& what) {
  if (status == MASKFACE_CUDA_OK) return true;
  Check(false, what + ": status " + std::to_string(status) + ": " + maskface_cuda_last_error());
  return false;
}

template <typename T>
struct DeviceArray {
  T* data = nullptr;
  size_t size = 0;
  explicit DeviceArray(size_t n, int poison_byte = -1) : size(n) {
    if (n > 0) HARNESS_CUDA(cudaMalloc(&data, n * sizeof(T)));
    if (n > 0 && poison_byte >= 0) HARNESS_CUDA(cudaMemset(data, poison_byte, n * sizeof(T)));
  }
  DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    if (!host.empty()) HARNESS_CUDA(cudaMemcpy(data, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceArray() { cudaFree(data); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  std::vector<T> Read() const {
    std::vector<T> host(size);
    if (size > 0) HARNESS_CUDA(cudaMemcpy(host.data(), data, size * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
};

float HalfToFloat(__half h) { return __half2float(h); }
__half FloatToHalf(float f) { return __float2half_rn(f); }

// Milliseconds per call of fn on stream, after warm-up calls.
double TimeMs(cudaStream_t stream, int iterations, const std::function<void()>& fn) {
  for (int i = 0; i < 2; ++i) fn();
  cudaEvent_t start, stop;
  HARNESS_CUDA(cudaEventCreate(&start));
  HARNESS_CUDA(cudaEventCreate(&stop));
  HARNESS_CUDA(cudaEventRecord(start, stream));
  for (int i = 0; i < iterations; ++i) fn();
  HARNESS_CUDA(cudaEventRecord(stop, stream));
  HARNESS_CUDA(cudaEventSynchronize(stop));
  float ms = 0;
  HARNESS_CUDA(cudaEventElapsedTime(&ms, start, stop));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / iterations;
}

// ===== a. alignment + normalisation ===============================================================

struct HostImage {
  int width, height, channels;
  bool bgr;
  size_t row_stride;
  std::vector<uint8_t> pixels;
};

HostImage RandomImage(std::mt19937& rng, int width, int height, int channels, int padding, bool bgr) {
  HostImage image{width, height, channels, bgr, static_cast<size_t>(width) * channels + padding, {}};
  image.pixels.resize(image.row_stride * height);
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& p : image.pixels) p = static_cast<uint8_t>(byte(rng));
  return image;
}

// Output-to-source similarity putting the output centre on (cx, cy) of the source.
maskface::Affine RandomMap(std::mt19937& rng, const HostImage& image, int out_w, int out_h) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double scale = 0.3 + 3.0 * unit(rng);
  const double angle = (unit(rng) - 0.5) * 1.2;
  // Centres partly outside the image, so the zero border is exercised.
  const double cx = (unit(rng) * 1.4 - 0.2) * image.width;
  const double cy = (unit(rng) * 1.4 - 0.2) * image.height;
  const double a = scale * std::cos(angle), b = scale * std::sin(angle);
  const double ox = (out_w - 1) / 2.0, oy = (out_h - 1) / 2.0;
  return maskface::Affine{{a, -b, cx - (a * ox - b * oy), b, a, cy - (b * ox + a * oy)}};
}

// --quick: smaller galleries and images, every code path kept (bench/gpu/check.sh under compute-sanitizer).
bool g_quick = false;

void TestAlign(std::mt19937& rng, cudaStream_t stream) {
  std::printf("align_normalize\n");
  struct Case {
    int width, height, channels, padding;
    bool bgr;
  };
  // Odd sizes, row padding, 1x1, grey and RGBA; 45 images so that the 40-per-launch split runs.
  std::vector<Case> cases = {{g_quick ? 96 : 640, g_quick ? 72 : 480, 3, 0, true}, {37, 53, 1, 3}, {200, 150, 4, 8, false}, {1, 1, 3, 0, false},
                             {113, 97, 3, 5, false}, {2, 2, 1, 0, false}};
  std::uniform_int_distribution<int> side(1, 90);
  std::uniform_int_distribution<int> channel_pick(0, 2);
  while (cases.size() < 45) {
    const int channels[3] = {1, 3, 4};
    cases.push_back({side(rng), side(rng), channels[channel_pick(rng)], side(rng) % 5, side(rng) % 2 == 0});
  }
  struct Spec {
    int width, height, channels;
    bool bgr;
    float mean, std;
  };
  const Spec specs[] = {{112, 112, 3, false, 127.5f, 127.5f}, {112, 112, 3, true, 127.0f, 128.0f},
                        {64, 48, 1, false, 0.0f, 1.0f}, {7, 5, 3, false, 10.0f, 0.5f}};
  std::vector<HostImage> images;
  std::vector<maskface::Affine> maps;
  for (const Case& c : cases) images.push_back(RandomImage(rng, c.width, c.height, c.channels, c.padding, c.bgr));
  std::vector<std::unique_ptr<DeviceArray<uint8_t>>> device_pixels;
  for (const HostImage& image : images) device_pixels.push_back(std::make_unique<DeviceArray<uint8_t>>(image.pixels));

  for (const Spec& spec : specs) {
    maps.clear();
    for (const HostImage& image : images) maps.push_back(RandomMap(rng, image, spec.width, spec.height));
    // The first map is the identity-like plain resize, as for already aligned crops.
    maps[0] = maskface::ResizeMap(images[0].width, images[0].height, spec.width, spec.height);
    std::vector<MaskfaceCudaImage> descriptors(images.size());
    for (size_t i = 0; i < images.size(); ++i) {
      descriptors[i].data = device_pixels[i]->data;
      descriptors[i].width = images[i].width;
      descriptors[i].height = images[i].height;
      descriptors[i].channels = images[i].channels;
      descriptors[i].bgr = images[i].bgr;
      descriptors[i].row_stride = static_cast<int64_t>(images[i].row_stride);
      std::memcpy(descriptors[i].out_to_src, maps[i].m, sizeof maps[i].m);
    }
    const size_t per_image = static_cast<size_t>(spec.width) * spec.height * spec.channels;
    std::vector<float> reference(per_image * images.size());
    maskface::TensorSpec tensor;
    tensor.width = spec.width;
    tensor.height = spec.height;
    tensor.channels = spec.channels;
    tensor.bgr = spec.bgr;
    for (int c = 0; c < 3; ++c) {
      tensor.mean[c] = spec.mean + c;  // per-channel values differ, so a channel mix-up shows
      tensor.std[c] = spec.std * (1.0f + 0.1f * c);
    }
    for (size_t i = 0; i < images.size(); ++i) {
      maskface::ImageView view{images[i].pixels.data(), images[i].width, images[i].height, images[i].channels,
                               images[i].bgr, images[i].row_stride};
      maskface::WarpToTensor(view, maps[i], tensor, reference.data() + i * per_image);
    }
    for (int dtype : {MASKFACE_CUDA_F32, MASKFACE_CUDA_F16}) {
      MaskfaceCudaAlignParams p{};
      p.images = descriptors.data();
      p.n_images = static_cast<int32_t>(images.size());
      p.out_width = spec.width;
      p.out_height = spec.height;
      p.out_channels = spec.channels;
      p.out_bgr = spec.bgr;
      std::copy(tensor.mean, tensor.mean + 3, p.mean);
      std::copy(tensor.std, tensor.std + 3, p.std);
      p.out_dtype = dtype;
      const std::string label = Fmt("%d images -> %dx%dx%d%s %s", p.n_images, spec.width, spec.height, spec.channels,
                                    spec.bgr ? " bgr" : "", dtype == MASKFACE_CUDA_F16 ? "fp16" : "fp32");
      std::vector<float> got(reference.size());
      if (dtype == MASKFACE_CUDA_F32) {
        DeviceArray<float> out(reference.size(), 0xff);  // NaN
        p.out = out.data;
        if (!Ok(maskface_cuda_align_normalize(&p, stream), label)) continue;
        HARNESS_CUDA(cudaStreamSynchronize(stream));
        got = out.Read();
      } else {
        DeviceArray<__half> out(reference.size(), 0xff);
        p.out = out.data;
        if (!Ok(maskface_cuda_align_normalize(&p, stream), label)) continue;
        HARNESS_CUDA(cudaStreamSynchronize(stream));
        const std::vector<__half> halves = out.Read();
        for (size_t i = 0; i < got.size(); ++i) got[i] = HalfToFloat(halves[i]);
      }
      // Error in 0..255 pixel units (times std): float rounding of the same formulas for fp32
      // (the CPU steps positions in 32.32 fixed point inside the image, the GPU in double);
      // half's relative rounding on top for fp16.
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const double allowed = dtype == MASKFACE_CUDA_F32 ? 2e-3 / spec.std : std::abs(reference[i]) * 1.0 / 1024 + 2e-3 / spec.std;
        const double error = std::abs(static_cast<double>(got[i]) - reference[i]);
        if (!(error <= allowed)) worst = std::numeric_limits<double>::infinity();
        else worst = std::max(worst, error * spec.std);
      }
      Check(std::isfinite(worst), label + Fmt(": matches WarpToTensor, every value written (max error %.2g px)", worst));
    }
  }

  // Rejected on the host, with a message.
  MaskfaceCudaImage bad{};
  bad.data = device_pixels[0]->data;
  bad.width = 4;
  bad.height = 4;
  bad.channels = 2;
  MaskfaceCudaAlignParams p{};
  p.images = &bad;
  p.n_images = 1;
  p.out_width = p.out_height = 8;
  p.out_channels = 3;
  p.mean[0] = p.mean[1] = p.mean[2] = 0;
  p.std[0] = p.std[1] = p.std[2] = 1;
  DeviceArray<float> out(8 * 8 * 3);
  p.out = out.data;
  const int status = maskface_cuda_align_normalize(&p, stream);
  Check(status == MASKFACE_CUDA_INVALID_ARGUMENT && std::strstr(maskface_cuda_last_error(), "channels") != nullptr,
        Fmt("2-channel image -> INVALID_ARGUMENT (\"%s\")", maskface_cuda_last_error()));
  p.std[1] = 0;
  bad.channels = 3;
  Check(maskface_cuda_align_normalize(&p, stream) == MASKFACE_CUDA_INVALID_ARGUMENT, "std 0 -> INVALID_ARGUMENT");
}

void BenchAlign(std::mt19937& rng, cudaStream_t stream, int n_images) {
  const HostImage image = RandomImage(rng, 640, 480, 3, 0, true);
  DeviceArray<uint8_t> pixels(image.pixels);
  std::vector<MaskfaceCudaImage> descriptors(n_images);
  for (int i = 0; i < n_images; ++i) {
    descriptors[i] = MaskfaceCudaImage{pixels.data, 640, 480, 3, 1, 0, {}};
    const maskface::Affine map = RandomMap(rng, image, 112, 112);
    std::memcpy(descriptors[i].out_to_src, map.m, sizeof map.m);
  }
  DeviceArray<__half> out(static_cast<size_t>(n_images) * 3 * 112 * 112);
  MaskfaceCudaAlignParams p{};
  p.images = descriptors.data();
  p.n_images = n_images;
  p.out_width = p.out_height = 112;
  p.out_channels = 3;
  for (int c = 0; c < 3; ++c) p.mean[c] = p.std[c] = 127.5f;
  p.out_dtype = MASKFACE_CUDA_F16;
  p.out = out.data;
  const double ms = TimeMs(stream, 20, [&] { maskface_cuda_align_normalize(&p, stream); });
  std::printf("  time align_normalize: %d faces from 640x480 BGR -> 112x112x3 fp16: %.3f ms (%.0f faces/s)\n",
              n_images, ms, n_images / ms * 1e3);
}

// ===== b. attention masking =======================================================================

template <typename T>
__device__ __forceinline__ float ToFloat(T v) { return static_cast<float>(v); }
template <>
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }
template <typename T>
__device__ __forceinline__ T FromFloat(float v) { return static_cast<T>(v); }
template <>
__device__ __forceinline__ __half FromFloat(float v) { return __float2half_rn(v); }

// The unfused baseline (what two framework ops do): softmax writes A and P, a second kernel
// reads F and A and writes F * A.
template <typename T>
__global__ void unfused_softmax_kernel(const T* logits, T* attention, T* probabilities, int64_t pixels, int64_t plane) {
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p >= pixels) return;
  const int64_t n = p / plane, at = p - n * plane;
  const T* l = logits + n * 3 * plane + at;
  const maskface::RegionProbabilities r = maskface::RegionSoftmax(
      ToFloat(l[0]), ToFloat(l[plane]), ToFloat(l[2 * plane]), maskface::AttentionGating::kFace);
  attention[p] = FromFloat<T>(r.attention);
  for (int c = 0; c < 3; ++c) probabilities[n * 3 * plane + c * plane + at] = FromFloat<T>(r.p[c]);
}

template <typename T>
__global__ void unfused_scale_kernel(const T* features, const T* attention, T* out, int64_t total, int64_t channels,
                                     int64_t plane) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t n = i / (channels * plane), at = i % plane;
  out[i] = FromFloat<T>(ToFloat(features[i]) * ToFloat(attention[n * plane + at]));
}

template <typename T>
std::vector<float> ToHostFloats(const DeviceArray<T>& a) {
  std::vector<float> out(a.size);
  if constexpr (std::is_same_v<T, float>) {
    out = a.Read();
  } else {
    const std::vector<T> h = a.Read();
    for (size_t i = 0; i < h.size(); ++i) out[i] = HalfToFloat(h[i]);
  }
  return out;
}

template <typename T>
void CheckAttention(std::mt19937& rng, cudaStream_t stream, int64_t n, int64_t c, int64_t h, int64_t w,
                    MaskfaceCudaGating gating, bool in_place, bool with_probabilities) {
  constexpr bool kHalf = std::is_same_v<T, __half>;
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const size_t feature_count = static_cast<size_t>(n * c * h * w);
  const size_t logit_count = static_cast<size_t>(n * 3 * h * w);
  std::vector<T> features(feature_count), logits(logit_count);
  std::vector<float> features_f(feature_count), logits_f(logit_count);  // what the device holds
  for (size_t i = 0; i < feature_count; ++i) {
    features[i] = static_cast<T>(normal(rng));
    features_f[i] = static_cast<float>(features[i]);
  }
  for (size_t i = 0; i < logit_count; ++i) {
    logits[i] = static_cast<T>(normal(rng));
    logits_f[i] = static_cast<float>(logits[i]);
  }
  std::vector<float> want_features(feature_count), want_probabilities(logit_count);
  maskface::ApplyAttentionMask(features_f.data(), logits_f.data(),
                               {static_cast<size_t>(n), static_cast<size_t>(c), static_cast<size_t>(h), static_cast<size_t>(w)},
                               gating == MASKFACE_CUDA_GATING_FACE ? maskface::AttentionGating::kFace
                                                                   : maskface::AttentionGating::kNotMask,
                               want_features.data(), want_probabilities.data());

  DeviceArray<T> d_features(features), d_logits(logits);
  DeviceArray<T> d_out(in_place ? 0 : feature_count, 0xff);
  DeviceArray<T> d_probabilities(logit_count, 0xff);
  MaskfaceCudaAttentionParams p{};
  p.features = d_features.data;
  p.logits = d_logits.data;
  p.out_features = in_place ? d_features.data : d_out.data;
  p.out_probabilities = with_probabilities ? d_probabilities.data : nullptr;
  p.batch = n;
  p.channels = c;
  p.height = h;
  p.width = w;
  p.gating = gating;
  p.dtype = kHalf ? MASKFACE_CUDA_F16 : MASKFACE_CUDA_F32;
  const std::string label = Fmt("%s %ldx%ldx%ldx%ld %s%s%s", kHalf ? "fp16" : "fp32", static_cast<long>(n),
                                static_cast<long>(c), static_cast<long>(h), static_cast<long>(w),
                                gating == MASKFACE_CUDA_GATING_FACE ? "face" : "not_mask", in_place ? " in place" : "",
                                with_probabilities ? "" : " (no probabilities)");
  if (!Ok(maskface_cuda_attention_mask(&p, stream), label)) return;
  HARNESS_CUDA(cudaStreamSynchronize(stream));
  const std::vector<float> got = ToHostFloats(in_place ? d_features : d_out);
  // fp32: the same formulas, expf to an ulp or two. fp16: one rounding of the result, which for
  // subnormal halves (|x| < 6.1e-5) is absolute: half their spacing, 2^-25.
  const double relative = kHalf ? 1.0 / 1024 : 2e-6;
  const double absolute = kHalf ? std::ldexp(1.0, -25) : 1e-30;
  double worst = 0;  // in units of the allowed error
  for (size_t i = 0; i < feature_count; ++i) {
    const double ratio = std::abs(got[i] - want_features[i]) / (relative * std::abs(want_features[i]) + absolute);
    worst = std::isnan(ratio) ? INFINITY : std::max(worst, ratio);
  }
  bool probabilities_ok = true;
  const std::vector<float> got_p = ToHostFloats(d_probabilities);
  for (size_t i = 0; i < logit_count; ++i) {
    if (with_probabilities) {
      probabilities_ok &= std::abs(got_p[i] - want_probabilities[i]) <= relative * want_probabilities[i] + absolute;
    } else {
      probabilities_ok &= std::isnan(got_p[i]);  // untouched: still the 0xff (NaN) poison
    }
  }
  Check(worst <= 1.0, label + Fmt(": F * A matches the CPU reference (max error %.2g of the allowed)", worst));
  Check(probabilities_ok, label + (with_probabilities ? ": probabilities match" : ": probabilities untouched"));
}

template <typename T>
void BenchAttention(cudaStream_t stream, int64_t n, int64_t c, int64_t h, int64_t w) {
  constexpr bool kHalf = std::is_same_v<T, __half>;
  const int64_t plane = h * w, pixels = n * plane, total = n * c * plane;
  DeviceArray<T> features(total, 0), logits(n * 3 * plane, 0), out(total, 0), probabilities(n * 3 * plane, 0),
      attention(pixels, 0);
  MaskfaceCudaAttentionParams p{};
  p.features = features.data;
  p.logits = logits.data;
  p.out_features = out.data;
  p.out_probabilities = probabilities.data;
  p.batch = n;
  p.channels = c;
  p.height = h;
  p.width = w;
  p.dtype = kHalf ? MASKFACE_CUDA_F16 : MASKFACE_CUDA_F32;
  const double fused = TimeMs(stream, 50, [&] { maskface_cuda_attention_mask(&p, stream); });
  const double unfused = TimeMs(stream, 50, [&] {
    unfused_softmax_kernel<T><<<static_cast<unsigned>((pixels + 255) / 256), 256, 0, stream>>>(
        logits.data, attention.data, probabilities.data, pixels, plane);
    unfused_scale_kernel<T><<<static_cast<unsigned>((total + 255) / 256), 256, 0, stream>>>(
        features.data, attention.data, out.data, total, c, plane);
  });
  HARNESS_CUDA(cudaGetLastError());
  // Bytes the fused kernel must move: F in, F out, logits in, probabilities out.
  const double bytes = static_cast<double>(2 * total + 6 * pixels) * sizeof(T);
  std::printf("  time attention_mask %s %ldx%ldx%ldx%ld: fused %.4f ms (%.0f GB/s), unfused %.4f ms, fused %.2fx faster\n",
              kHalf ? "fp16" : "fp32", static_cast<long>(n), static_cast<long>(c), static_cast<long>(h),
              static_cast<long>(w), fused, bytes / fused / 1e6, unfused, unfused / fused);
}

// ===== c. cosine top-k ============================================================================

struct Gallery {
  int dim = 0;
  std::vector<float> rows;      // as the device holds them (fp16-rounded), n x dim
  std::vector<uint8_t> live;
  std::vector<int> duplicate_of;  // row that this row copies exactly, or -1
  MaskfaceCudaGallery* device = nullptr;
  ~Gallery() {
    if (device) maskface_cuda_gallery_destroy(device);
  }
  int64_t n() const { return static_cast<int64_t>(live.size()); }
};

std::vector<float> RandomUnit(std::mt19937& rng, int64_t n, int dim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(n) * dim);
  for (int64_t i = 0; i < n; ++i) {
    double norm = 0;
    for (int d = 0; d < dim; ++d) norm += std::pow(v[i * dim + d] = normal(rng), 2);
    for (int d = 0; d < dim; ++d) v[i * dim + d] = static_cast<float>(v[i * dim + d] / std::sqrt(norm));
  }
  return v;
}

// Uploads rows [first, first + count) of `values` (dense float) to the device gallery in the
// given dtype, and mirrors what the device holds (half-rounded) in g.rows.
bool UploadRange(Gallery& g, int64_t first, const std::vector<float>& values, int dtype, cudaStream_t stream) {
  const int64_t count = static_cast<int64_t>(values.size()) / g.dim;
  if (first + count > g.n()) {
    g.rows.resize(static_cast<size_t>(first + count) * g.dim, 0.0f);
    g.live.resize(static_cast<size_t>(first + count), 0);
    g.duplicate_of.resize(static_cast<size_t>(first + count), -1);
  }
  std::vector<__half> halves(values.size());
  for (size_t i = 0; i < values.size(); ++i) halves[i] = FloatToHalf(values[i]);
  for (size_t i = 0; i < values.size(); ++i) g.rows[first * g.dim + i] = HalfToFloat(halves[i]);
  for (int64_t r = first; r < first + count; ++r) {
    g.live[r] = 1;
    g.duplicate_of[r] = -1;
  }
  const void* host = dtype == MASKFACE_CUDA_F16 ? static_cast<const void*>(halves.data()) : values.data();
  return Ok(maskface_cuda_gallery_upload_rows(g.device, first, count, host, dtype, stream),
            Fmt("upload rows [%ld, %ld)", static_cast<long>(first), static_cast<long>(first + count)));
}

// A gallery of n rows built the way a real one is: several range uploads (f32 and f16), growth
// past the initial capacity, overwrites, exact duplicates (ties), and removed rows.
bool BuildGallery(std::mt19937& rng, Gallery& g, int64_t n, int dim, cudaStream_t stream) {
  g.dim = dim;
  if (!Ok(maskface_cuda_gallery_create(dim, 64, &g.device), "gallery_create")) return false;
  if (n == 0) return true;
  std::uniform_int_distribution<int64_t> pick(0, n - 1);
  int64_t first = 0;
  int dtype = MASKFACE_CUDA_F32;
  while (first < n) {
    const int64_t count = std::min<int64_t>(n - first, 1 + pick(rng) % 5000);
    if (!UploadRange(g, first, RandomUnit(rng, count, dim), dtype, stream)) return false;
    first += count;
    dtype = dtype == MASKFACE_CUDA_F32 ? MASKFACE_CUDA_F16 : MASKFACE_CUDA_F32;
  }
  // Overwrite a few ranges (adds/updates without re-uploading the rest).
  for (int i = 0; i < 3; ++i) {
    const int64_t at = pick(rng);
    const int64_t count = std::min<int64_t>(n - at, 1 + pick(rng) % 50);
    if (!UploadRange(g, at, RandomUnit(rng, count, dim), i % 2 ? MASKFACE_CUDA_F16 : MASKFACE_CUDA_F32, stream)) return false;
  }
  // Exact duplicates: ties that must resolve to the lower row, across block boundaries too.
  // Each row takes part in one pair at most, so no copy goes stale.
  std::unordered_set<int64_t> paired;
  for (int i = 0; i < std::min<int64_t>(n / 4, 200); ++i) {
    int64_t a = pick(rng), b = pick(rng);
    if (a == b || paired.count(a) || paired.count(b)) continue;
    if (a > b) std::swap(a, b);
    paired.insert(a);
    paired.insert(b);
    std::vector<float> copy(g.rows.begin() + a * dim, g.rows.begin() + (a + 1) * dim);
    if (!UploadRange(g, b, copy, MASKFACE_CUDA_F32, stream)) return false;
    g.duplicate_of[b] = static_cast<int>(a);
  }
  // Removed rows: a range and scattered rows, some of them duplicates' originals.
  const int64_t dead_first = pick(rng);
  const int64_t dead_count = std::min<int64_t>(n - dead_first, std::max<int64_t>(1, n / 20));
  if (!Ok(maskface_cuda_gallery_set_live(g.device, dead_first, dead_count, 0, stream), "set_live range")) return false;
  for (int64_t r = dead_first; r < dead_first + dead_count; ++r) g.live[r] = 0;
  for (int i = 0; i < std::min<int64_t>(n / 10, 300); ++i) {
    const int64_t r = pick(rng);
    if (!Ok(maskface_cuda_gallery_set_live(g.device, r, 1, 0, stream), "set_live row")) return false;
    g.live[r] = 0;
  }
  HARNESS_CUDA(cudaStreamSynchronize(stream));
  return true;
}

struct TopKRun {
  std::vector<float> scores;
  std::vector<int32_t> rows;
  std::vector<uint32_t> counts;
};

bool RunTopK(const Gallery& g, const std::vector<float>& queries_f32, int query_dtype, int k, float threshold, int path,
             cudaStream_t stream, TopKRun* run, const std::string& label) {
  const int64_t nq = static_cast<int64_t>(queries_f32.size()) / g.dim;
  MaskfaceCudaTopKParams p{};
  if (!Ok(maskface_cuda_gallery_view(g.device, &p.gallery), label + ": gallery_view")) return false;
  std::unique_ptr<DeviceArray<float>> q32;
  std::unique_ptr<DeviceArray<__half>> q16;
  if (query_dtype == MASKFACE_CUDA_F32) {
    q32 = std::make_unique<DeviceArray<float>>(queries_f32);
    p.queries = q32->data;
  } else {
    std::vector<__half> h(queries_f32.size());
    for (size_t i = 0; i < h.size(); ++i) h[i] = FloatToHalf(queries_f32[i]);
    q16 = std::make_unique<DeviceArray<__half>>(h);
    p.queries = q16->data;
  }
  p.query_dtype = query_dtype;
  p.n_queries = nq;
  p.k = k;
  p.threshold = threshold;
  p.path = path;
  DeviceArray<float> scores(static_cast<size_t>(nq * k), 0x7f);
  DeviceArray<int32_t> rows(static_cast<size_t>(nq * k), 0x7f);
  DeviceArray<uint32_t> counts(static_cast<size_t>(nq), 0x7f);
  p.out_scores = scores.data;
  p.out_rows = rows.data;
  p.out_counts = counts.data;
  size_t workspace_bytes = 0;
  if (!Ok(maskface_cuda_topk_workspace_size(&p, &workspace_bytes), label + ": workspace_size")) return false;
  DeviceArray<uint8_t> workspace(workspace_bytes, 0x7f);  // stale garbage must not matter
  p.workspace = workspace.data;
  p.workspace_bytes = workspace_bytes;
  if (!Ok(maskface_cuda_topk(&p, stream), label)) return false;
  const cudaError_t status = cudaStreamSynchronize(stream);
  if (status != cudaSuccess) {
    Check(false, label + ": kernel fault: " + cudaGetErrorString(status));
    return false;
  }
  run->scores = scores.Read();
  run->rows = rows.Read();
  run->counts = counts.Read();
  return true;
}

// Tie-aware check against exact double scores over the values the device holds:
//  - counts: min(k, live rows with score >= threshold), up to rows within tol of the threshold;
//  - every returned row is valid, live, unique, and has (within tol) the score returned;
//  - returned scores are non-increasing and match the exact ranking position by position;
//  - no live row scoring more than tol above a returned one was left out;
//  - ties: a returned row's exact duplicates with lower rows (equal exact scores) are returned
//    too, i.e. equal scores resolve to the lower row;
//  - slots past the count hold row -1 and score -inf.
void CheckTopK(const Gallery& g, const std::vector<float>& queries_f32, int query_dtype, int k, float threshold,
               const TopKRun& run, const std::string& label) {
  const int dim = g.dim;
  const int64_t nq = static_cast<int64_t>(queries_f32.size()) / dim;
  const double tol = 1e-4;
  std::string problem;
  double worst = 0;
  for (int64_t q = 0; q < nq && problem.empty(); ++q) {
    std::vector<double> query(dim);
    for (int d = 0; d < dim; ++d) {
      const float v = queries_f32[q * dim + d];
      query[d] = query_dtype == MASKFACE_CUDA_F16 ? HalfToFloat(FloatToHalf(v)) : v;
    }
    std::vector<double> exact(g.n());
    std::vector<std::pair<double, int>> ranking;
    for (int64_t r = 0; r < g.n(); ++r) {
      double s = 0;
      for (int d = 0; d < dim; ++d) s += query[d] * g.rows[r * dim + d];
      exact[r] = s;
      if (g.live[r]) ranking.push_back({s, static_cast<int>(r)});
    }
    std::sort(ranking.begin(), ranking.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    int64_t sure = 0, maybe = 0;
    for (auto& [s, r] : ranking) {
      sure += s >= threshold + tol;
      maybe += s >= threshold - tol;
    }
    const int64_t count = run.counts[q];
    auto fail = [&](const std::string& why) {
      if (problem.empty()) problem = Fmt("query %ld: ", static_cast<long>(q)) + why;
    };
    if (count < std::min<int64_t>(k, sure) || count > std::min<int64_t>(k, maybe)) {
      fail(Fmt("count %ld, expected %ld (up to %ld)", static_cast<long>(count), static_cast<long>(std::min<int64_t>(k, sure)),
               static_cast<long>(std::min<int64_t>(k, maybe))));
      continue;
    }
    std::unordered_set<int> returned;
    for (int64_t i = 0; i < k; ++i) {
      const int32_t row = run.rows[q * k + i];
      const float score = run.scores[q * k + i];
      if (i >= count) {
        if (row != -1 || !(score == -INFINITY)) fail(Fmt("slot %ld past the count holds row %d score %g", static_cast<long>(i), row, score));
        continue;
      }
      if (row < 0 || row >= g.n()) { fail(Fmt("slot %ld: row %d out of range", static_cast<long>(i), row)); continue; }
      if (!g.live[row]) fail(Fmt("slot %ld: removed row %d returned", static_cast<long>(i), row));
      if (!returned.insert(row).second) fail(Fmt("row %d returned twice", row));
      const double error = std::abs(score - exact[row]);
      worst = std::max(worst, error);
      if (!(error <= tol)) fail(Fmt("row %d: score %.7f, exact %.7f", row, score, exact[row]));
      if (std::abs(score - ranking[i].first) > tol) fail(Fmt("slot %ld: score %.7f, exact rank value %.7f", static_cast<long>(i), score, ranking[i].first));
      if (i > 0) {
        const float previous = run.scores[q * k + i - 1];
        if (score > previous) fail(Fmt("slot %ld: scores not sorted", static_cast<long>(i)));
        if (score == previous && row < run.rows[q * k + i - 1]) fail(Fmt("slot %ld: equal scores not in row order", static_cast<long>(i)));
      }
    }
    if (count > 0) {
      const double last = exact[run.rows[q * k + count - 1]];
      for (auto& [s, r] : ranking) {
        if (s <= last + tol) break;
        if (!returned.count(r)) fail(Fmt("row %d (exact %.7f) left out above the last returned (%.7f)", r, s, last));
      }
      for (int row : returned) {
        for (int original = g.duplicate_of[row]; original >= 0; original = g.duplicate_of[original]) {
          if (g.live[original] && exact[original] == exact[row] && !returned.count(original))
            fail(Fmt("tie: row %d returned but its lower duplicate %d was not", row, original));
        }
      }
    }
  }
  Check(problem.empty(), label + (problem.empty() ? Fmt(" (max score error %.1e)", worst) : ": " + problem));
}

void TestTopK(std::mt19937& rng, cudaStream_t stream) {
  std::printf("cosine top-k\n");
  struct Config {
    int64_t n;
    int dim;
    std::vector<int> ks;
    std::vector<int64_t> query_counts;
  };
  // --quick keeps every shape that picks a code path (k buckets, padded rows, two batched passes,
  // a partial K stage) with fewer rows.
  const int64_t rows = g_quick ? 1200 : 20000;
  const std::vector<Config> configs = {
      {g_quick ? 1100 : 3000, 512, {1, 10, 32, 33, 128, 129, 1024}, {1, 3, 9}},
      {rows, 100, {1, 10, 100, 1024}, {1, 8, 70}},  // stride 104: padded rows
      {777, 7, {1, 5, 777, 1024}, {1, 2, 65}},       // k = size, k > size
      {1, 64, {1, 10}, {1, 9}},
      {0, 32, {1, 7}, {2, 9}},                       // empty gallery
      {2000, 64, {10, 200}, {1100}},                 // two batched passes (1024 + 76 queries)
      {g_quick ? 1300 : 5000, 136, {16}, {3, 130}},  // depth 192: a partial last K stage
  };
  const char* path_names[] = {"auto", "scan", "batched"};
  for (const Config& config : configs) {
    Gallery g;
    if (!BuildGallery(rng, g, config.n, config.dim, stream)) continue;
    for (int64_t nq : config.query_counts) {
      std::vector<float> queries = RandomUnit(rng, nq, config.dim);
      // Some queries equal gallery rows (a score of ~1 and its duplicates).
      for (int64_t q = 0; q < nq && config.n > 0; q += 2) {
        const int64_t r = static_cast<int64_t>(rng() % config.n);
        std::copy(g.rows.begin() + r * config.dim, g.rows.begin() + (r + 1) * config.dim, queries.begin() + q * config.dim);
      }
      for (int k : config.ks) {
        for (int path : {MASKFACE_CUDA_TOPK_SCAN, MASKFACE_CUDA_TOPK_BATCHED, MASKFACE_CUDA_TOPK_AUTO}) {
          if (path == MASKFACE_CUDA_TOPK_SCAN && nq > 200) continue;  // slow by design, covered smaller
          for (int dtype : {MASKFACE_CUDA_F32, MASKFACE_CUDA_F16}) {
            if (dtype == MASKFACE_CUDA_F16 && path == MASKFACE_CUDA_TOPK_AUTO) continue;
            const std::string label = Fmt("n=%ld dim=%d queries=%ld k=%d %s %s", static_cast<long>(config.n), config.dim,
                                          static_cast<long>(nq), k, path_names[path], dtype == MASKFACE_CUDA_F16 ? "fp16" : "fp32");
            TopKRun run;
            if (RunTopK(g, queries, dtype, k, -INFINITY, path, stream, &run, label))
              CheckTopK(g, queries, dtype, k, -INFINITY, run, label);
          }
        }
      }
    }
    // A threshold: only scores >= 0.05 come back (fewer than k for most queries).
    if (config.n > 0) {
      std::vector<float> queries = RandomUnit(rng, 12, config.dim);
      for (int path : {MASKFACE_CUDA_TOPK_SCAN, MASKFACE_CUDA_TOPK_BATCHED}) {
        const std::string label = Fmt("n=%ld dim=%d threshold 0.05 k=50 %s", static_cast<long>(config.n), config.dim, path_names[path]);
        TopKRun run;
        if (RunTopK(g, queries, MASKFACE_CUDA_F32, 50, 0.05f, path, stream, &run, label))
          CheckTopK(g, queries, MASKFACE_CUDA_F32, 50, 0.05f, run, label);
      }
    }
  }

  // Massive ties: 4096 rows, only 3 distinct vectors; every result must be the lowest rows.
  {
    Gallery g;
    const int dim = 48;
    if (BuildGallery(rng, g, 0, dim, stream)) {
      const std::vector<float> base = RandomUnit(rng, 3, dim);
      std::vector<float> rows(4096 * dim);
      for (int r = 0; r < 4096; ++r) std::copy(base.begin() + (r % 3) * dim, base.begin() + (r % 3 + 1) * dim, rows.begin() + r * dim);
      UploadRange(g, 0, rows, MASKFACE_CUDA_F32, stream);
      for (int r = 3; r < 4096; ++r) g.duplicate_of[r] = r - 3;
      maskface_cuda_gallery_set_live(g.device, 0, 5, 0, stream);  // the first duplicates are removed
      for (int r = 0; r < 5; ++r) g.live[r] = 0;
      HARNESS_CUDA(cudaStreamSynchronize(stream));
      const std::vector<float> queries(base.begin(), base.begin() + dim);
      for (int k : {1, 100, 1024}) {
        for (int path : {MASKFACE_CUDA_TOPK_SCAN, MASKFACE_CUDA_TOPK_BATCHED}) {
          const std::string label = Fmt("all ties (3 vectors x 1365 rows) k=%d %s", k, path_names[path]);
          TopKRun run;
          if (!RunTopK(g, queries, MASKFACE_CUDA_F32, k, -INFINITY, path, stream, &run, label)) continue;
          CheckTopK(g, queries, MASKFACE_CUDA_F32, k, -INFINITY, run, label);
          bool lowest = true;  // rows 6, 9, 12, ... exactly (row 0 and 3 removed)
          for (int i = 0; i < std::min(k, 1363); ++i) lowest &= run.rows[i] == 6 + 3 * i;
          Check(lowest, label + ": the lowest live rows, in order");
        }
      }
    }
  }

  // Bad calls are rejected on the host.
  {
    Gallery g;
    if (BuildGallery(rng, g, 10, 16, stream)) {
      MaskfaceCudaTopKParams p{};
      maskface_cuda_gallery_view(g.device, &p.gallery);
      p.n_queries = 1;
      p.k = 1025;
      size_t bytes = 0;
      Check(maskface_cuda_topk_workspace_size(&p, &bytes) == MASKFACE_CUDA_INVALID_ARGUMENT, "k = 1025 -> INVALID_ARGUMENT");
      p.k = 0;
      Check(maskface_cuda_topk(&p, stream) == MASKFACE_CUDA_INVALID_ARGUMENT, "k = 0 -> INVALID_ARGUMENT");
      p.k = 5;
      p.threshold = NAN;
      Check(maskface_cuda_topk(&p, stream) == MASKFACE_CUDA_INVALID_ARGUMENT, "NaN threshold -> INVALID_ARGUMENT");
      p.threshold = 0;
      DeviceArray<float> q(16), s(5);
      DeviceArray<int32_t> r(5);
      DeviceArray<uint32_t> c(1);
      p.queries = q.data;
      p.out_scores = s.data;
      p.out_rows = r.data;
      p.out_counts = c.data;
      p.workspace_bytes = 0;
      const int status = maskface_cuda_topk(&p, stream);
      Check(status == MASKFACE_CUDA_INVALID_ARGUMENT && std::strstr(maskface_cuda_last_error(), "workspace"),
            Fmt("too small a workspace -> INVALID_ARGUMENT (\"%s\")", maskface_cuda_last_error()));
      Check(maskface_cuda_gallery_set_live(g.device, 5, 10, 0, stream) == MASKFACE_CUDA_INVALID_ARGUMENT,
            "set_live past the rows -> INVALID_ARGUMENT");
    }
  }
}

// Copy bandwidth: bytes read + written per second by a device-to-device cudaMemcpyAsync.
double CopyBandwidthGBs(cudaStream_t stream, size_t bytes) {
  DeviceArray<uint8_t> a(bytes, 1), b(bytes, 2);
  const double ms = TimeMs(stream, 10, [&] { cudaMemcpyAsync(b.data, a.data, bytes, cudaMemcpyDeviceToDevice, stream); });
  return 2.0 * bytes / ms / 1e6;
}

void BenchTopK(std::mt19937& rng, cudaStream_t stream, int64_t n, int dim, bool full) {
  const double copy = CopyBandwidthGBs(stream, std::min<size_t>(size_t(1) << 30, static_cast<size_t>(n) * dim * 2));
  std::printf("  time device copy (D2D cudaMemcpyAsync): %.0f GB/s counting bytes read + written\n", copy);
  MaskfaceCudaGallery* gallery = nullptr;
  if (!Ok(maskface_cuda_gallery_create(dim, n, &gallery), "bench gallery_create")) return;
  // 16384 random unit rows, each upload of them rotated by a different number of dimensions:
  // distinct rows without generating n random vectors on the host.
  const int64_t base_rows = std::min<int64_t>(n, 16384);
  const std::vector<float> base = RandomUnit(rng, base_rows, dim);
  std::vector<__half> block(static_cast<size_t>(base_rows) * dim);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t first = 0, j = 0; first < n; first += base_rows, ++j) {
    const int64_t count = std::min(base_rows, n - first);
    for (int64_t r = 0; r < count; ++r)
      for (int d = 0; d < dim; ++d) block[r * dim + d] = FloatToHalf(base[r * dim + (d + j) % dim]);
    if (!Ok(maskface_cuda_gallery_upload_rows(gallery, first, count, block.data(), MASKFACE_CUDA_F16, stream), "bench upload")) return;
  }
  const double upload_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("  time gallery upload: %ld x %d fp16 rows in %.2f s (host conversion included)\n", static_cast<long>(n), dim, upload_s);

  MaskfaceCudaTopKParams p{};
  maskface_cuda_gallery_view(gallery, &p.gallery);
  const std::vector<float> queries = RandomUnit(rng, 1024, dim);
  DeviceArray<float> d_queries(queries);
  DeviceArray<float> scores(1024 * 1024);
  DeviceArray<int32_t> rows(1024 * 1024);
  DeviceArray<uint32_t> counts(1024);
  p.queries = d_queries.data;
  p.query_dtype = MASKFACE_CUDA_F32;
  p.threshold = -INFINITY;
  p.out_scores = scores.data;
  p.out_rows = rows.data;
  p.out_counts = counts.data;
  const double gallery_bytes = static_cast<double>(n) * p.gallery.row_stride * 2;
  auto run = [&](int64_t nq, int k, int path, int iterations) {
    p.n_queries = nq;
    p.k = k;
    p.path = path;
    size_t bytes = 0;
    if (!Ok(maskface_cuda_topk_workspace_size(&p, &bytes), "bench workspace")) return -1.0;
    DeviceArray<uint8_t> workspace(bytes);
    p.workspace = workspace.data;
    p.workspace_bytes = bytes;
    int status = MASKFACE_CUDA_OK;
    const double ms = TimeMs(stream, iterations, [&] { status |= maskface_cuda_topk(&p, stream); });
    if (!Ok(status, "bench topk")) return -1.0;
    p.workspace = nullptr;
    return ms;
  };
  for (int k : {1, 10, 100, 1024}) {
    const double ms = run(1, k, MASKFACE_CUDA_TOPK_SCAN, full ? 50 : 10);
    const double bandwidth = gallery_bytes / ms / 1e6;
    std::printf("  time top-%d, 1 query, %ld x %d fp16 (scan): %.4f ms/query, reads %.0f GB/s = %.0f%% of copy bandwidth\n",
                k, static_cast<long>(n), dim, ms, bandwidth, 100.0 * bandwidth / copy);
  }
  for (int64_t nq : {8, 64, 256, 1024}) {
    if (!full && nq > 256) continue;
    for (int k : {10, 100}) {
      const double ms = run(nq, k, MASKFACE_CUDA_TOPK_AUTO, full ? 5 : 2);
      std::printf("  time top-%d, %ld queries (auto: %s), %ld x %d fp16: %.3f ms/batch, %.0f queries/s, %.1f TFLOP/s effective\n",
                  k, static_cast<long>(nq), nq > 8 ? "batched" : "scan", static_cast<long>(n), dim, ms, nq / ms * 1e3,
                  2.0 * nq * n * dim / ms / 1e9);
    }
  }
  maskface_cuda_gallery_destroy(gallery);
}

}  // namespace

int main(int argc, char** argv) {
  const bool full = argc > 1 && std::strcmp(argv[1], "--bench") == 0;
  g_quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const bool check_only = g_quick || (argc > 1 && std::strcmp(argv[1], "--check-only") == 0);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int count = 0;
  if (maskface_cuda_device_count(&count) != MASKFACE_CUDA_OK || count == 0) {
    const std::string library_error = maskface_cuda_last_error();  // empty when it just found none
    const cudaError_t status = cudaGetDeviceCount(&count);
    std::printf("SKIP: no usable CUDA device (%s: %s)%s%s\n", cudaGetErrorName(status), cudaGetErrorString(status),
                library_error.empty() ? "" : "; libmaskface_cuda.so: ", library_error.c_str());
    return kSkip;
  }
  char name[256] = {};
  size_t memory = 0;
  int major = 0, minor = 0;
  if (!Ok(maskface_cuda_device_info(0, name, sizeof name, &memory, &major, &minor), "device_info")) return 1;
  std::printf("device 0: %s, sm_%d%d, %.1f GiB; library ABI %d\n", name, major, minor, memory / 1073741824.0,
              maskface_cuda_abi_version());
  HARNESS_CUDA(cudaSetDevice(0));
  cudaStream_t stream;
  HARNESS_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::mt19937 rng(20241128);

  TestAlign(rng, stream);
  std::printf("attention_mask\n");
  for (MaskfaceCudaGating gating : {MASKFACE_CUDA_GATING_FACE, MASKFACE_CUDA_GATING_NOT_MASK}) {
    CheckAttention<float>(rng, stream, 2, 5, 7, 9, gating, false, true);
    CheckAttention<float>(rng, stream, 3, 64, 28, 28, gating, true, true);
    CheckAttention<float>(rng, stream, 1, 531, 7, 7, gating, false, false);  // several channel slices
    CheckAttention<__half>(rng, stream, 2, 5, 7, 9, gating, false, true);
    CheckAttention<__half>(rng, stream, 4, 33, 14, 14, gating, true, true);
    CheckAttention<__half>(rng, stream, 1, 1, 1, 1, gating, false, true);
  }
  TestTopK(rng, stream);
  const int correctness_failures = g_failures;
  std::printf("%d of %d checks passed\n", g_checks - g_failures, g_checks);
  if (check_only) return g_failures == 0 ? 0 : 1;

  std::printf("timings (%s)\n", full ? "--bench" : "quick; --bench for the full set");
  BenchAlign(rng, stream, full ? 1024 : 128);
  BenchAttention<__half>(stream, 128, 128, 28, 28);
  BenchAttention<float>(stream, 128, 128, 28, 28);
  if (full) {
    BenchAttention<__half>(stream, 128, 256, 14, 14);
    BenchAttention<__half>(stream, 128, 512, 7, 7);
  }
  BenchTopK(rng, stream, full ? 1000000 : 100000, 512, full);
  HARNESS_CUDA(cudaStreamSynchronize(stream));
  cudaStreamDestroy(stream);
  std::printf("%s\n", correctness_failures == 0 && g_failures == 0 ? "all CUDA kernel checks passed" : "CUDA kernel checks FAILED");
  return g_failures == 0 ? 0 : 1;
}
