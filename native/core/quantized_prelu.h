// PReLU on uint8-quantised tensors, per channel: the body of the ONNX Runtime custom op
// maskface::QLinearPRelu (native/ort/quantized_prelu_op.h). It stands for the QDQ chain
// DequantizeLinear -> PRelu -> QuantizeLinear without leaving uint8:
//   y = saturate(round_half_even((x - x_zero) * m) + y_zero),
//   m = x_scale / y_scale where x >= x_zero, x_scale * slope[c] / y_scale below it.
// The multiplier is folded into one float per channel, so y can differ from the unfolded
// float32 chain by one step where that chain lands within a rounding error of a half.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace maskface {

struct QuantizedPreluParams {
  float input_scale = 1.0f;
  uint8_t input_zero_point = 0;
  float output_scale = 1.0f;
  uint8_t output_zero_point = 0;
};

// Per-channel multipliers of one node, made once from its slopes and quantisation parameters.
struct QuantizedPrelu {
  QuantizedPrelu(const float* slopes, size_t channels, const QuantizedPreluParams& params);

  size_t channels() const { return below_.size(); }

  // x laid out [outer, channels, inner] (NCHW: inner = H*W): rows [first, first + count) of the
  // outer * channels rows.
  void ApplyRows(const uint8_t* x, size_t inner, size_t first, size_t count, uint8_t* y) const;
  // x laid out [pixels, channels] (NHWC): pixels [first, first + count).
  void ApplyPixels(const uint8_t* x, size_t first, size_t count, uint8_t* y) const;

 private:
  QuantizedPreluParams params_;
  float above_;               // x_scale / y_scale
  std::vector<float> below_;  // x_scale * slope[c] / y_scale
};

}  // namespace maskface
