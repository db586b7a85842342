// Fused attention masking: softmax over the 3 region logits, the gate, the probabilities and
// F * A in one pass over memory. Each thread owns one pixel of one image and a slice of its
// channels; the softmax (three exps) is recomputed per slice, which costs less than a second
// pass over A. The maths is native/core/attention_mask.h's RegionSoftmax, shared verbatim.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "core/attention_mask.h"
#include "cuda/cuda_check.h"
#include "cuda/launchers.h"

namespace maskface::cuda {
namespace {

constexpr int kThreads = 256;
// Channels per thread: enough work to hide the softmax, few enough that small maps (7x7) at
// batch 1 still fill the GPU through gridDim.y.
constexpr int kChannelsPerSlice = 16;

// Logits are never written here: the read-only cache path is safe for them.
__device__ __forceinline__ float LoadReadOnly(const float* p, int64_t i) { return __ldg(p + i); }
__device__ __forceinline__ float LoadReadOnly(const __half* p, int64_t i) { return __half2float(__ldg(p + i)); }
// Features may be the output too (in place): plain loads.
__device__ __forceinline__ float Load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float Load(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void Store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void Store(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }

struct AttentionArgs {
  const void* features;
  const void* logits;
  void* out_features;
  void* out_probabilities;
  int64_t pixels;    // batch * plane
  int64_t plane;     // height * width
  int64_t channels;
  int channels_per_slice;
  AttentionGating gating;
};

// grid.x: pixels of all images; grid.y: channel slices. Probabilities come from slice 0 only.
// Consecutive threads take consecutive pixels, so every load and store is coalesced per plane.
// In place (out_features == features) is safe: each element is read, then written, by one thread.
template <typename T>
__global__ void __launch_bounds__(kThreads) attention_mask_kernel(const AttentionArgs a) {
  const int64_t pixel = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (pixel >= a.pixels) return;
  const int64_t image = pixel / a.plane;
  const int64_t at = pixel - image * a.plane;
  const T* logits = static_cast<const T*>(a.logits) + image * kRegionClasses * a.plane + at;
  const RegionProbabilities r =
      RegionSoftmax(LoadReadOnly(logits, 0), LoadReadOnly(logits, a.plane), LoadReadOnly(logits, 2 * a.plane), a.gating);
  if (a.out_probabilities != nullptr && blockIdx.y == 0) {
    T* probabilities = static_cast<T*>(a.out_probabilities) + image * kRegionClasses * a.plane + at;
#pragma unroll
    for (int c = 0; c < kRegionClasses; ++c) Store(probabilities, c * a.plane, r.p[c]);
  }
  if (a.out_features == nullptr) return;
  const int64_t first = static_cast<int64_t>(blockIdx.y) * a.channels_per_slice;
  const int64_t last = min(a.channels, first + a.channels_per_slice);
  const int64_t base = (image * a.channels) * a.plane + at;
  const T* in = static_cast<const T*>(a.features) + base;
  T* out = static_cast<T*>(a.out_features) + base;
  // Four loads go out before their stores: the compiler may not reorder them itself, since in
  // and out may alias (they do only element for element, so this is safe).
  constexpr int kBatch = 4;
  int64_t c = first;
  for (; c + kBatch <= last; c += kBatch) {
    float f[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) f[j] = Load(in, (c + j) * a.plane);
#pragma unroll
    for (int j = 0; j < kBatch; ++j) Store(out, (c + j) * a.plane, f[j] * r.attention);
  }
  for (; c < last; ++c) Store(out, c * a.plane, Load(in, c * a.plane) * r.attention);
}

}  // namespace

void LaunchAttentionMask(const AttentionMaskParams& p, cudaStream_t stream) {
  MF_CHECK_ARG(p.batch >= 0 && p.channels >= 0 && p.height >= 0 && p.width >= 0,
               "attention_mask: sizes must be >= 0");
  MF_CHECK_ARG(p.gating == MASKFACE_CUDA_GATING_FACE || p.gating == MASKFACE_CUDA_GATING_NOT_MASK,
               "attention_mask: gating must be face or not_mask");
  MF_CHECK_ARG(p.dtype == MASKFACE_CUDA_F32 || p.dtype == MASKFACE_CUDA_F16,
               "attention_mask: dtype must be f32 or f16");
  const int64_t kMax = std::numeric_limits<int64_t>::max() / 4;
  MF_CHECK_ARG(p.height == 0 || p.width <= kMax / p.height, "attention_mask: height * width overflows");
  const int64_t plane = p.height * p.width;
  MF_CHECK_ARG(plane == 0 || p.batch <= kMax / plane / std::max<int64_t>(p.channels, kRegionClasses),
               "attention_mask: tensor size overflows");
  const int64_t pixels = p.batch * plane;
  if (pixels == 0 || (p.out_features == nullptr && p.out_probabilities == nullptr)) return;
  MF_CHECK_ARG(p.logits != nullptr, "attention_mask: logits is null");
  MF_CHECK_ARG(p.out_features == nullptr || p.channels == 0 || p.features != nullptr,
               "attention_mask: features is null");

  AttentionArgs a;
  a.features = p.features;
  a.logits = p.logits;
  a.out_features = p.channels > 0 ? p.out_features : nullptr;
  a.out_probabilities = p.out_probabilities;
  a.pixels = pixels;
  a.plane = plane;
  a.channels = p.channels;
  a.gating = p.gating == MASKFACE_CUDA_GATING_FACE ? AttentionGating::kFace : AttentionGating::kNotMask;
  constexpr int64_t kMaxSlices = 65535;  // gridDim.y limit
  a.channels_per_slice = static_cast<int>(
      std::max<int64_t>(kChannelsPerSlice, (p.channels + kMaxSlices - 1) / kMaxSlices));
  const int64_t slices = a.out_features ? (p.channels + a.channels_per_slice - 1) / a.channels_per_slice : 1;
  const int64_t blocks = (pixels + kThreads - 1) / kThreads;
  MF_CHECK_ARG(blocks <= std::numeric_limits<int32_t>::max(), "attention_mask: too many pixels for one launch");
  // ONNX Runtime calls custom-op kernels from its own threads, whose current device need not be
  // the session's: launch on the device that holds the tensors (and owns the stream).
  cudaPointerAttributes attributes{};
  MF_CUDA_CHECK(cudaPointerGetAttributes(&attributes, p.logits));
  int current = -1;
  MF_CUDA_CHECK(cudaGetDevice(&current));
  if (attributes.type == cudaMemoryTypeDevice && attributes.device != current) MF_CUDA_CHECK(cudaSetDevice(attributes.device));
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(std::max<int64_t>(slices, 1)));
  if (p.dtype == MASKFACE_CUDA_F16) {
    attention_mask_kernel<__half><<<grid, kThreads, 0, stream>>>(a);
    MF_CUDA_CHECK_LAST("attention_mask_kernel<half>");
  } else {
    attention_mask_kernel<float><<<grid, kThreads, 0, stream>>>(a);
    MF_CUDA_CHECK_LAST("attention_mask_kernel<float>");
  }
}

}  // namespace maskface::cuda
