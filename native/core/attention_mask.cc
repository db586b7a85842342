#include "core/attention_mask.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "core/error.h"

namespace maskface {

void ApplyAttentionMask(const float* features, const float* logits, const AttentionMaskShape& shape,
                        AttentionGating gating, float* out_features, float* out_probabilities) {
  MF_CHECK_ARG(gating == AttentionGating::kFace || gating == AttentionGating::kNotMask,
               "ApplyAttentionMask: unknown gating");
  const size_t max = std::numeric_limits<size_t>::max();
  const size_t plane = shape.height * shape.width;
  MF_CHECK_ARG(shape.height == 0 || plane / shape.height == shape.width,
               "ApplyAttentionMask: height * width overflows");
  MF_CHECK_ARG(plane == 0 || shape.channels <= max / plane / std::max<size_t>(shape.batch, 1),
               "ApplyAttentionMask: the feature tensor's size overflows");
  if (shape.batch == 0 || plane == 0) return;
  MF_CHECK_ARG(logits != nullptr, "ApplyAttentionMask: logits is null");
  MF_CHECK_ARG(out_features == nullptr || features != nullptr || shape.channels == 0,
               "ApplyAttentionMask: features is null");

  // One attention plane per image, then each channel scales by it: the channel loops run over
  // contiguous memory and vectorise.
  std::vector<float> attention(plane);
  for (size_t n = 0; n < shape.batch; ++n) {
    const float* image_logits = logits + n * kRegionClasses * plane;
    for (size_t i = 0; i < plane; ++i) {
      const RegionProbabilities r =
          RegionSoftmax(image_logits[i], image_logits[plane + i], image_logits[2 * plane + i], gating);
      attention[i] = r.attention;
      if (out_probabilities != nullptr) {
        for (int c = 0; c < kRegionClasses; ++c) out_probabilities[(n * kRegionClasses + c) * plane + i] = r.p[c];
      }
    }
    if (out_features == nullptr) continue;
    for (size_t c = 0; c < shape.channels; ++c) {
      const float* in = features + (n * shape.channels + c) * plane;
      float* out = out_features + (n * shape.channels + c) * plane;
      for (size_t i = 0; i < plane; ++i) out[i] = in[i] * attention[i];
    }
  }
}

}  // namespace maskface
