#include "core/quantized_prelu.h"

namespace maskface {
namespace {

// Round half to even for |v| < 2^22 by adding and removing 1.5 * 2^23 (the float unit in the last
// place becomes 1 there): branch-free, so the loops below vectorise. The clamp keeps |v| in range;
// anything past +-512 saturates to 0 or 255 after the zero point anyway.
inline uint8_t Requantize(int centred, float multiplier, int zero_point) {
  constexpr float kMagic = 12582912.0f;
  float v = static_cast<float>(centred) * multiplier;
  v = v < -512.0f ? -512.0f : v > 512.0f ? 512.0f : v;
  const int rounded = static_cast<int>((v + kMagic) - kMagic) + zero_point;
  return static_cast<uint8_t>(rounded < 0 ? 0 : rounded > 255 ? 255 : rounded);
}

// Compiled for AVX-512, AVX2 and baseline x86-64 and picked when the library loads (GCC function
// multiversioning): the shipped binary targets baseline x86-64.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define MF_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MF_CLONES
#endif

MF_CLONES void RequantizeSpan(const uint8_t* x, size_t n, int x_zero, float above, float below, int y_zero, uint8_t* y) {
  for (size_t i = 0; i < n; ++i) {
    const int centred = static_cast<int>(x[i]) - x_zero;
    y[i] = Requantize(centred, centred < 0 ? below : above, y_zero);
  }
}

MF_CLONES void RequantizePixel(const uint8_t* x, size_t channels, int x_zero, float above, const float* below,
                               int y_zero, uint8_t* y) {
  for (size_t c = 0; c < channels; ++c) {
    const int centred = static_cast<int>(x[c]) - x_zero;
    y[c] = Requantize(centred, centred < 0 ? below[c] : above, y_zero);
  }
}

}  // namespace

QuantizedPrelu::QuantizedPrelu(const float* slopes, size_t channels, const QuantizedPreluParams& params)
    : params_(params), above_(params.input_scale / params.output_scale), below_(channels) {
  for (size_t c = 0; c < channels; ++c) below_[c] = params.input_scale * slopes[c] / params.output_scale;
}

void QuantizedPrelu::ApplyRows(const uint8_t* x, size_t inner, size_t first, size_t count, uint8_t* y) const {
  for (size_t row = first; row < first + count; ++row) {
    RequantizeSpan(x + row * inner, inner, params_.input_zero_point, above_, below_[row % below_.size()],
                   params_.output_zero_point, y + row * inner);
  }
}

void QuantizedPrelu::ApplyPixels(const uint8_t* x, size_t first, size_t count, uint8_t* y) const {
  const size_t channels = below_.size();
  for (size_t pixel = first; pixel < first + count; ++pixel) {
    RequantizePixel(x + pixel * channels, channels, params_.input_zero_point, above_, below_.data(),
                    params_.output_zero_point, y + pixel * channels);
  }
}

}  // namespace maskface
