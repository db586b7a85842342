// Attention masking (DESIGN.md §1), the CPU reference of the fused CUDA kernel and the body of the
// ONNX Runtime custom op maskface::AttentionMask (native/ort/attention_op.h): per pixel,
// P = softmax over the 3 region logits (face, mask, background); A = P[face] (gating face) or
// 1 - P[mask] (gating not_mask); out = F * A broadcast over the channels.
//
// RegionSoftmax is inline and host/device so that native/cuda computes exactly these formulas.
#pragma once
#include <cmath>
#include <cstddef>

#if defined(__CUDACC__)
#define MF_HOST_DEVICE __host__ __device__
#else
#define MF_HOST_DEVICE
#endif

namespace maskface {

constexpr int kRegionClasses = 3;
constexpr int kFaceRegion = 0;
constexpr int kMaskRegion = 1;
constexpr int kBackgroundRegion = 2;

enum class AttentionGating {
  kFace = 0,     // A = P[face]: removes mask and background
  kNotMask = 1,  // A = 1 - P[mask]: removes only the mask
};

struct RegionProbabilities {
  float p[kRegionClasses];
  float attention;
};

// Max-subtracted softmax. For not_mask, 1 - P[mask] is computed as (e_face + e_background) / sum,
// the same number without the cancellation of 1 - p when P[mask] is close to 1. A NaN or +inf
// logit (or three -inf) gives NaN, which shows in the output instead of a plausible value.
MF_HOST_DEVICE inline RegionProbabilities RegionSoftmax(float face, float mask, float background,
                                                        AttentionGating gating) {
  const float top = fmaxf(face, fmaxf(mask, background));
  const float e_face = expf(face - top);
  const float e_mask = expf(mask - top);
  const float e_background = expf(background - top);
  const float inverse_sum = 1.0f / (e_face + e_mask + e_background);
  RegionProbabilities out;
  out.p[kFaceRegion] = e_face * inverse_sum;
  out.p[kMaskRegion] = e_mask * inverse_sum;
  out.p[kBackgroundRegion] = e_background * inverse_sum;
  out.attention = gating == AttentionGating::kFace ? out.p[kFaceRegion]
                                                   : (e_face + e_background) * inverse_sum;
  return out;
}

struct AttentionMaskShape {
  size_t batch = 0;
  size_t channels = 0;
  size_t height = 0;
  size_t width = 0;
};

// features [batch, channels, height, width], logits [batch, 3, height, width], both NCHW float.
// Writes out_features (same shape as features; may be features itself, for in place) and
// out_probabilities ([batch, 3, height, width]); either output may be null to skip it.
// Throws maskface::Error (kInvalidArgument) on null inputs or sizes that overflow.
void ApplyAttentionMask(const float* features, const float* logits, const AttentionMaskShape& shape,
                        AttentionGating gating, float* out_features, float* out_probabilities);

}  // namespace maskface
