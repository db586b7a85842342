// Tests for native/core/attention_mask against a naive float64 loop written from DESIGN.md §1
// (softmax over the 3 logits, A = P[face] or 1 - P[mask], F * A). Prints one line per check and
// exits non-zero when any fails.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/attention_mask.h"
#include "core/error.h"
#include "tests/test_check.h"

namespace {

using maskface::AttentionGating;
using maskface::AttentionMaskShape;

using maskface::test::Check;
using maskface::test::g_failures;

struct Reference {
  std::vector<double> features;
  std::vector<double> probabilities;
};

// Straight from the definition: exp / sum of exp (logits are kept small enough not to overflow),
// 1 - P[mask] computed literally.
Reference Naive(const std::vector<float>& f, const std::vector<float>& logits, const AttentionMaskShape& s,
                AttentionGating gating) {
  const size_t plane = s.height * s.width;
  Reference r{std::vector<double>(f.size()), std::vector<double>(logits.size())};
  for (size_t n = 0; n < s.batch; ++n) {
    for (size_t i = 0; i < plane; ++i) {
      double e[3];
      double sum = 0;
      for (int c = 0; c < 3; ++c) sum += e[c] = std::exp(static_cast<double>(logits[(n * 3 + c) * plane + i]));
      double p[3];
      for (int c = 0; c < 3; ++c) r.probabilities[(n * 3 + c) * plane + i] = p[c] = e[c] / sum;
      const double a = gating == AttentionGating::kFace ? p[0] : 1.0 - p[1];
      for (size_t c = 0; c < s.channels; ++c) {
        const size_t at = (n * s.channels + c) * plane + i;
        r.features[at] = f[at] * a;
      }
    }
  }
  return r;
}

double MaxError(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double error = std::abs(got[i] - want[i]) / std::max(1.0, std::abs(want[i]));
    if (!(error <= worst)) worst = error;  // NaN stays
  }
  return worst;
}

void CheckShape(std::mt19937& rng, const AttentionMaskShape& s, AttentionGating gating, bool in_place,
                const char* name) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> features(s.batch * s.channels * s.height * s.width);
  std::vector<float> logits(s.batch * 3 * s.height * s.width);
  for (float& v : features) v = normal(rng);
  for (float& v : logits) v = normal(rng);
  const Reference want = Naive(features, logits, s, gating);

  const float poison = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> out = in_place ? features : std::vector<float>(features.size(), poison);
  std::vector<float> probabilities(logits.size(), poison);
  maskface::ApplyAttentionMask(in_place ? out.data() : features.data(), logits.data(), s, gating, out.data(),
                               probabilities.data());
  const std::string label = std::string(name) + (gating == AttentionGating::kFace ? " face" : " not_mask") +
                            (in_place ? " in place" : "");
  const double feature_error = MaxError(out, want.features);
  const double probability_error = MaxError(probabilities, want.probabilities);
  Check(feature_error < 1e-5, label + ": features match the naive loop (max rel error " +
                                  std::to_string(feature_error) + ")");
  Check(probability_error < 1e-6, label + ": probabilities match (max error " + std::to_string(probability_error) + ")");
}

}  // namespace

int main() {
  std::mt19937 rng(20240613);
  for (AttentionGating gating : {AttentionGating::kFace, AttentionGating::kNotMask}) {
    CheckShape(rng, {2, 5, 7, 9}, gating, false, "2x5x7x9");
    CheckShape(rng, {1, 64, 28, 28}, gating, false, "1x64x28x28");
    CheckShape(rng, {3, 1, 1, 1}, gating, true, "3x1x1x1");
    CheckShape(rng, {2, 16, 14, 14}, gating, true, "2x16x14x14");
  }

  // Large logits: max subtraction keeps exp finite, and A = 1 - P[mask] stays accurate when
  // P[mask] is almost 1 (the naive 1 - p would lose everything below 1e-7 here).
  {
    const AttentionMaskShape s{1, 1, 1, 3};
    const std::vector<float> f = {2.0f, 2.0f, 2.0f};
    const std::vector<float> logits = {1000.0f, 0.0f, 0.0f,    // face
                                       -5.0f, 30.0f, 1000.0f,  // mask
                                       -1000.0f, 0.0f, 0.0f};  // background
    std::vector<float> out(3), p(9);
    maskface::ApplyAttentionMask(f.data(), logits.data(), s, AttentionGating::kNotMask, out.data(), p.data());
    const double a1 = (std::exp(-30.0) + std::exp(-30.0)) / (1 + std::exp(-30.0) + std::exp(-30.0));
    Check(out[0] == 2.0f && p[0] == 1.0f, "huge face logit: A = 1, P[face] = 1, no overflow");
    Check(std::abs(out[1] / 2.0 - a1) < 1e-6 * a1, "P[mask] ~ 1 - 2e-13: not_mask A keeps its relative precision");
    Check(out[2] == 0.0f && p[5] == 1.0f, "huge mask logit: A = 0");
    std::vector<float> face_out(3);
    maskface::ApplyAttentionMask(f.data(), logits.data(), s, AttentionGating::kFace, face_out.data(), nullptr);
    Check(face_out[0] == 2.0f && face_out[2] == 0.0f, "face gating with no probability output");
  }

  // Non-finite logits are not hidden.
  {
    const AttentionMaskShape s{1, 1, 1, 2};
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> f = {1.0f, 1.0f};
    const std::vector<float> logits = {std::nanf(""), inf, 0.0f, 0.0f, 0.0f, inf};
    std::vector<float> out(2);
    maskface::ApplyAttentionMask(f.data(), logits.data(), s, AttentionGating::kFace, out.data(), nullptr);
    Check(std::isnan(out[0]) && std::isnan(out[1]), "NaN or +inf logits give NaN, not a plausible value");
  }

  // Empty shapes do nothing; null inputs are rejected.
  {
    maskface::ApplyAttentionMask(nullptr, nullptr, {0, 4, 7, 7}, AttentionGating::kFace, nullptr, nullptr);
    Check(true, "empty batch is a no-op");
    bool threw = false;
    std::vector<float> out(4);
    try {
      maskface::ApplyAttentionMask(out.data(), nullptr, {1, 1, 2, 2}, AttentionGating::kFace, out.data(), nullptr);
    } catch (const maskface::Error& e) {
      threw = e.code() == maskface::ErrorCode::kInvalidArgument;
    }
    Check(threw, "null logits -> kInvalidArgument");
  }

  std::printf("%s\n", g_failures == 0 ? "all attention mask checks passed" : "attention mask checks FAILED");
  return g_failures == 0 ? 0 : 1;
}
