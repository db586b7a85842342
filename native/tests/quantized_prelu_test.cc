// Tests for native/core/quantized_prelu against the unfolded QDQ chain in float64:
// dequantise, PReLU, quantise (round half to even, saturate). The kernel folds the scales into
// one multiplier per channel, so it may differ by one step where the exact value lies within a
// float rounding error of a half; anywhere else it must agree exactly.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "core/quantized_prelu.h"
#include "tests/test_check.h"

namespace {

using maskface::QuantizedPrelu;
using maskface::QuantizedPreluParams;
using maskface::test::Check;
using maskface::test::Format;
using maskface::test::g_failures;

// (exact result, whether the exact value is within `slack` of a rounding tie)
std::pair<int, bool> Reference(int q, float slope, const QuantizedPreluParams& p) {
  const double v = (q - static_cast<int>(p.input_zero_point)) * static_cast<double>(p.input_scale);
  const double activated = v < 0 ? v * slope : v;
  const double scaled = activated / p.output_scale;
  const double rounded = std::nearbyint(scaled);
  const bool near_tie = std::fabs(std::fabs(scaled - std::floor(scaled)) - 0.5) < 1e-4;
  const double y = rounded + p.output_zero_point;
  return {static_cast<int>(y < 0 ? 0 : y > 255 ? 255 : y), near_tie};
}

void CheckAgainstReference(const std::vector<float>& slopes, const QuantizedPreluParams& params, const char* what) {
  const size_t channels = slopes.size();
  const QuantizedPrelu prelu(slopes.data(), channels, params);
  // Every input value in every channel, as rows (NCHW, inner 256) and as pixels (NHWC).
  std::vector<uint8_t> rows(channels * 256), pixels(256 * channels);
  for (size_t c = 0; c < channels; ++c) {
    for (int q = 0; q < 256; ++q) rows[c * 256 + q] = pixels[q * channels + c] = static_cast<uint8_t>(q);
  }
  std::vector<uint8_t> out_rows(rows.size()), out_pixels(pixels.size());
  prelu.ApplyRows(rows.data(), 256, 0, channels, out_rows.data());
  prelu.ApplyPixels(pixels.data(), 0, 256, out_pixels.data());
  int wrong = 0, off_by_one_at_tie = 0, layouts_differ = 0;
  for (size_t c = 0; c < channels; ++c) {
    for (int q = 0; q < 256; ++q) {
      const auto [expected, near_tie] = Reference(q, slopes[c], params);
      const int got = out_rows[c * 256 + q];
      if (got != out_pixels[q * channels + c]) ++layouts_differ;
      if (got == expected) continue;
      if (near_tie && std::abs(got - expected) == 1) {
        ++off_by_one_at_tie;
      } else {
        ++wrong;
      }
    }
  }
  Check(wrong == 0, std::string(what) + ": every value equals the QDQ chain (one step apart only at ties: " +
                        Format("%.0f", off_by_one_at_tie) + " of " + Format("%.0f", channels * 256.0) + ")");
  Check(layouts_differ == 0, std::string(what) + ": rows (NCHW) and pixels (NHWC) give the same values");
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> slope(-1.4f, 1.3f);
  std::vector<float> slopes(37);
  for (float& s : slopes) s = slope(rng);
  slopes[0] = 0.0f;  // ReLU
  slopes[1] = 1.0f;  // identity
  slopes[2] = -1.0f; // |x|

  CheckAgainstReference(slopes, {0.05f, 128, 0.04f, 20}, "zero point in the middle");
  CheckAgainstReference(slopes, {0.013f, 0, 0.013f, 0}, "zero point 0 (no negative inputs)");
  CheckAgainstReference(slopes, {0.2f, 255, 0.01f, 7}, "saturating at both ends");
  CheckAgainstReference(slopes, {1e-3f, 100, 0.5f, 128}, "everything within one step of the zero point");

  // Work split: any range of rows or pixels writes exactly its own part.
  {
    const QuantizedPreluParams params{0.05f, 128, 0.04f, 20};
    const QuantizedPrelu prelu(slopes.data(), slopes.size(), params);
    std::vector<uint8_t> x(3 * slopes.size() * 5);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<uint8_t>(i * 37 + 11);
    std::vector<uint8_t> whole(x.size()), split(x.size(), 0xAB);
    prelu.ApplyRows(x.data(), 5, 0, 3 * slopes.size(), whole.data());
    prelu.ApplyRows(x.data(), 5, 0, 40, split.data());
    prelu.ApplyRows(x.data(), 5, 40, 3 * slopes.size() - 40, split.data());
    Check(whole == split, "rows applied in two ranges equal one pass");
  }

  std::printf("%s\n", g_failures == 0 ? "all quantized prelu checks passed" : "quantized prelu checks FAILED");
  return g_failures == 0 ? 0 : 1;
}
