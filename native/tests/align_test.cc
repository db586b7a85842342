// Tests for native/core/align and native/core/vector_math against independent float64 references.
// A plain executable: prints one line per check and exits non-zero when any check fails.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/align.h"
#include "core/error.h"
#include "core/vector_math.h"
#include "tests/test_check.h"

namespace {

using maskface::Affine;
using maskface::ImageView;
using maskface::TensorSpec;

using maskface::test::Check;
using maskface::test::Format;
using maskface::test::g_failures;


// An 8-bit interleaved image with optional row padding, filled with noise or a smooth pattern.
struct TestImage {
  int width = 0;
  int height = 0;
  int channels = 0;
  size_t row_stride = 0;
  std::vector<uint8_t> pixels;

  uint8_t At(int x, int y, int k) const { return pixels[y * row_stride + x * channels + k]; }
  ImageView View(bool bgr) const {
    ImageView view;
    view.data = pixels.data();
    view.width = width;
    view.height = height;
    view.channels = channels;
    view.bgr = bgr;
    view.row_stride = row_stride;
    return view;
  }
};

TestImage RandomImage(std::mt19937& rng, int width, int height, int channels, int padding) {
  TestImage image{width, height, channels, static_cast<size_t>(width * channels + padding), {}};
  image.pixels.resize(image.row_stride * height);
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& p : image.pixels) p = static_cast<uint8_t>(byte(rng));
  return image;
}

TestImage SmoothImage(int width, int height, int channels) {
  TestImage image{width, height, channels, static_cast<size_t>(width * channels), {}};
  image.pixels.resize(image.row_stride * height);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int k = 0; k < channels; ++k) {
        const double v = 128.0 + 60.0 * std::sin(x / (9.0 + k) + k) * std::cos(y / (11.0 - k));
        image.pixels[y * image.row_stride + x * channels + k] = static_cast<uint8_t>(std::lround(v));
      }
    }
  }
  return image;
}

// ---- float64 reference: per-pixel bilinear with explicit neighbour bounds checks ----------------

double ReferenceSample(const TestImage& image, double sx, double sy, int k) {
  const double x0 = std::floor(sx);
  const double y0 = std::floor(sy);
  const double fx = sx - x0;
  const double fy = sy - y0;
  auto read = [&](double x, double y) -> double {
    if (x < 0 || y < 0 || x >= image.width || y >= image.height) return 0.0;
    return image.At(static_cast<int>(x), static_cast<int>(y), k);
  };
  return (1 - fx) * (1 - fy) * read(x0, y0) + fx * (1 - fy) * read(x0 + 1, y0) +
         (1 - fx) * fy * read(x0, y0 + 1) + fx * fy * read(x0 + 1, y0 + 1);
}

std::vector<double> ReferenceWarp(const TestImage& image, bool src_bgr, const Affine& map,
                                  const TensorSpec& spec) {
  const size_t plane = static_cast<size_t>(spec.width) * spec.height;
  std::vector<double> out(plane * spec.channels);
  for (int y = 0; y < spec.height; ++y) {
    for (int x = 0; x < spec.width; ++x) {
      const double sx = map.m[0] * x + map.m[1] * y + map.m[2];
      const double sy = map.m[3] * x + map.m[4] * y + map.m[5];
      double rgb[3];
      if (image.channels == 1) {
        rgb[0] = rgb[1] = rgb[2] = ReferenceSample(image, sx, sy, 0);
      } else {
        rgb[0] = ReferenceSample(image, sx, sy, src_bgr ? 2 : 0);
        rgb[1] = ReferenceSample(image, sx, sy, 1);
        rgb[2] = ReferenceSample(image, sx, sy, src_bgr ? 0 : 2);
      }
      const size_t pixel = static_cast<size_t>(y) * spec.width + x;
      if (spec.channels == 1) {
        const double grey =
            image.channels == 1 ? rgb[0] : 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
        out[pixel] = (grey - spec.mean[0]) / spec.std[0];
      } else {
        for (int c = 0; c < 3; ++c) {
          const double colour = rgb[spec.bgr ? 2 - c : c];
          out[c * plane + pixel] = (colour - spec.mean[c]) / spec.std[c];
        }
      }
    }
  }
  return out;
}

// Output-to-source similarity: the output centre lands on (centre_x, centre_y) in the source.
Affine SimilarityAround(double scale, double angle, double out_cx, double out_cy, double centre_x,
                        double centre_y) {
  const double a = scale * std::cos(angle);
  const double b = scale * std::sin(angle);
  return Affine{{a, -b, centre_x - (a * out_cx - b * out_cy), b, a, centre_y - (b * out_cx + a * out_cy)}};
}

Affine Compose(const Affine& outer, const Affine& inner) {  // outer(inner(p))
  const double* o = outer.m;
  const double* i = inner.m;
  return Affine{{o[0] * i[0] + o[1] * i[3], o[0] * i[1] + o[1] * i[4], o[0] * i[2] + o[1] * i[5] + o[2],
                 o[3] * i[0] + o[4] * i[3], o[3] * i[1] + o[4] * i[4], o[3] * i[2] + o[4] * i[5] + o[5]}};
}

void Apply(const Affine& a, double x, double y, double* out_x, double* out_y) {
  *out_x = a.m[0] * x + a.m[1] * y + a.m[2];
  *out_y = a.m[3] * x + a.m[4] * y + a.m[5];
}

double MaxAbsDifference(const Affine& a, const Affine& b) {
  double worst = 0.0;
  for (int i = 0; i < 6; ++i) worst = std::max(worst, std::abs(a.m[i] - b.m[i]));
  return worst;
}

// ---- (a) WarpToTensor against the reference ------------------------------------------------------

void TestWarpMatchesReference(std::mt19937& rng) {
  struct Size { int width, height, padding; };
  const Size sources[] = {{37, 29, 0}, {53, 41, 5}, {101, 77, 3}, {2, 1, 1}};
  const Size outputs[] = {{31, 27, 0}, {112, 112, 0}, {1, 1, 0}};
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  double worst = 0.0;
  int cases = 0;
  for (const Size& source : sources) {
    for (int src_channels : {1, 3, 4}) {
      const TestImage image = RandomImage(rng, source.width, source.height, src_channels, source.padding);
      for (int combo = 0; combo < 8; ++combo) {
        const bool src_bgr = combo & 1;
        TensorSpec spec;
        spec.channels = combo & 2 ? 1 : 3;
        spec.bgr = combo & 4;
        const Size& output = outputs[(combo + src_channels) % 3];
        spec.width = output.width;
        spec.height = output.height;
        if (combo % 3 == 1) {  // ImageNet-style per-channel values alongside the ArcFace default
          const float mean[3] = {123.675f, 116.28f, 103.53f};
          const float std[3] = {58.395f, 57.12f, 57.375f};
          std::copy(mean, mean + 3, spec.mean);
          std::copy(std, std + 3, spec.std);
        }
        // Random similarities whose output centre lands anywhere from well outside to inside the
        // image; then a general affine map and the identity (samples exactly on pixel centres).
        std::vector<Affine> maps;
        for (int t = 0; t < 4; ++t) {
          maps.push_back(SimilarityAround(0.2 + 2.8 * unit(rng), (unit(rng) - 0.5) * 2 * M_PI,
                                          spec.width / 2.0, spec.height / 2.0,
                                          (unit(rng) * 1.6 - 0.3) * source.width,
                                          (unit(rng) * 1.6 - 0.3) * source.height));
        }
        maps.push_back(Affine{{0.7, 0.3, -1.5, -0.2, 1.1, 2.25}});
        maps.push_back(Affine{{1, 0, 0, 0, 1, 0}});
        for (const Affine& map : maps) {
          std::vector<float> got(static_cast<size_t>(spec.width) * spec.height * spec.channels);
          maskface::WarpToTensor(image.View(src_bgr), map, spec, got.data());
          const std::vector<double> want = ReferenceWarp(image, src_bgr, map, spec);
          for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
          ++cases;
        }
      }
    }
  }
  Check(worst < 1e-4, "(a) WarpToTensor matches the float64 reference over " + std::to_string(cases) +
                          " cases (channels 1/3/4 -> 1/3, rgb/bgr in and out, strides, partly outside): max abs error " +
                          Format("%.3g", worst));
}

// ---- (b) EstimateSimilarity ----------------------------------------------------------------------

double Residual(const double* src, const double* dst, int n, const double p[4]) {  // p = a, b, tx, ty
  double sum = 0.0;
  for (int i = 0; i < n; ++i) {
    const double dx = p[0] * src[2 * i] - p[1] * src[2 * i + 1] + p[2] - dst[2 * i];
    const double dy = p[1] * src[2 * i] + p[0] * src[2 * i + 1] + p[3] - dst[2 * i + 1];
    sum += dx * dx + dy * dy;
  }
  return sum;
}

// Independent least squares: normal equations of the linear model in (a, b, tx, ty), solved by
// Gaussian elimination with partial pivoting.
void NormalEquationsSimilarity(const double* src, const double* dst, int n, double p[4]) {
  double ata[4][5] = {};
  for (int i = 0; i < n; ++i) {
    const double x = src[2 * i], y = src[2 * i + 1];
    const double rows[2][5] = {{x, -y, 1, 0, dst[2 * i]}, {y, x, 0, 1, dst[2 * i + 1]}};
    for (const auto& row : rows) {
      for (int r = 0; r < 4; ++r) {
        for (int c = 0; c < 5; ++c) ata[r][c] += row[r] * row[c];
      }
    }
  }
  for (int col = 0; col < 4; ++col) {
    int pivot = col;
    for (int r = col + 1; r < 4; ++r) {
      if (std::abs(ata[r][col]) > std::abs(ata[pivot][col])) pivot = r;
    }
    for (int c = 0; c < 5; ++c) std::swap(ata[col][c], ata[pivot][c]);
    for (int r = 0; r < 4; ++r) {
      if (r == col) continue;
      const double factor = ata[r][col] / ata[col][col];
      for (int c = col; c < 5; ++c) ata[r][c] -= factor * ata[col][c];
    }
  }
  for (int r = 0; r < 4; ++r) p[r] = ata[r][4] / ata[r][r];
}

void TestEstimateSimilarity(std::mt19937& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double* face = maskface::kArcFaceTemplate112;

  // Exact round trip: landmarks = S^-1(template), so landmarks -> template must give S back.
  double worst_exact = 0.0;
  bool all_ok = true;
  for (int trial = 0; trial < 200; ++trial) {
    const Affine s = SimilarityAround(0.05 + 5 * unit(rng), (unit(rng) - 0.5) * 2 * M_PI, 56, 56,
                                      (unit(rng) - 0.5) * 1000, (unit(rng) - 0.5) * 1000);
    Affine s_inverse;
    all_ok &= maskface::InvertAffine(s, &s_inverse);
    const int n = trial % 2 == 0 ? 5 : 2;  // five points, and the minimal two
    double landmarks[10];
    for (int i = 0; i < n; ++i) Apply(s_inverse, face[2 * i], face[2 * i + 1], &landmarks[2 * i], &landmarks[2 * i + 1]);
    Affine estimate;
    all_ok &= maskface::EstimateSimilarity(landmarks, face, n, &estimate);
    worst_exact = std::max(worst_exact, MaxAbsDifference(estimate, s));
  }
  Check(all_ok && worst_exact < 1e-9,
        "(b) exact landmarks recover the similarity (n = 5 and 2): max abs error " + Format("%.3g", worst_exact));

  // Noisy landmarks, including mirrored ones: the estimate is the least-squares optimum among
  // similarities (no reflection).
  double worst_vs_normal_equations = 0.0;
  bool is_minimum = true;
  bool no_reflection = true;
  std::normal_distribution<double> noise(0.0, 3.0);
  for (int trial = 0; trial < 200; ++trial) {
    const bool mirrored = trial % 4 == 3;
    const int n = 3 + trial % 6;
    std::vector<double> src(2 * n), dst(2 * n);
    for (int i = 0; i < n; ++i) {
      src[2 * i] = unit(rng) * 640;
      src[2 * i + 1] = unit(rng) * 480;
      dst[2 * i] = (mirrored ? -0.3 : 0.3) * src[2 * i] + 0.1 * src[2 * i + 1] + 20 + noise(rng);
      dst[2 * i + 1] = -0.1 * src[2 * i] + 0.3 * src[2 * i + 1] - 15 + noise(rng);
    }
    Affine estimate;
    if (!maskface::EstimateSimilarity(src.data(), dst.data(), n, &estimate)) {
      is_minimum = false;
      continue;
    }
    const double* m = estimate.m;
    no_reflection &= m[0] == m[4] && m[1] == -m[3] && m[0] * m[4] - m[1] * m[3] > 0;
    const double p[4] = {m[0], m[3], m[2], m[5]};
    double reference[4];
    NormalEquationsSimilarity(src.data(), dst.data(), n, reference);
    for (int k = 0; k < 4; ++k) {
      worst_vs_normal_equations = std::max(worst_vs_normal_equations,
                                           std::abs(p[k] - reference[k]) / std::max(1.0, std::abs(reference[k])));
    }
    // The residual is a convex quadratic: any step away from the optimum must not lower it.
    const double best = Residual(src.data(), dst.data(), n, p);
    for (int k = 0; k < 4; ++k) {
      for (double step : {1e-5, -1e-5, 1e-3, -1e-3}) {
        double moved[4] = {p[0], p[1], p[2], p[3]};
        moved[k] += k < 2 ? step : step * 100;
        is_minimum &= Residual(src.data(), dst.data(), n, moved) >= best;
      }
    }
  }
  Check(worst_vs_normal_equations < 1e-9,
        "(b) noisy landmarks: estimate equals the normal-equations solution, max rel error " +
            Format("%.3g", worst_vs_normal_equations));
  Check(is_minimum, "(b) noisy landmarks: no small parameter perturbation lowers the residual");
  Check(no_reflection, "(b) estimates are rotation * scale (no reflection), even for mirrored landmarks");
}

// ---- (c) warp there and back ---------------------------------------------------------------------

void TestRoundTrip() {
  const TestImage image = SmoothImage(161, 121, 3);
  const Affine there = SimilarityAround(0.9, 0.35, 80, 60, 80, 60);
  Affine back;
  Check(maskface::InvertAffine(there, &back), "(c) the warp's inverse exists");
  TestImage warped{image.width, image.height, 3, image.row_stride, std::vector<uint8_t>(image.pixels.size())};
  maskface::WarpToImage(image.View(false), there, image.width, image.height, 3, false, warped.pixels.data());

  TensorSpec spec;
  spec.width = image.width;
  spec.height = image.height;
  for (int c = 0; c < 3; ++c) spec.mean[c] = 0.0f, spec.std[c] = 1.0f;
  std::vector<float> restored(static_cast<size_t>(3) * image.width * image.height);
  maskface::WarpToTensor(warped.View(false), back, spec, restored.data());

  // Interior: output pixel p reads the warped image at q = back(p), whose neighbours must lie
  // well inside the warped frame (their own samples then come from inside the source).
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  double worst = 0.0;
  int compared = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      double qx, qy;
      Apply(back, x, y, &qx, &qy);
      if (qx < 2 || qy < 2 || qx > image.width - 3 || qy > image.height - 3) continue;
      if (x < 3 || y < 3 || x > image.width - 4 || y > image.height - 4) continue;
      for (int c = 0; c < 3; ++c) {
        const double diff = std::abs(restored[c * plane + y * image.width + x] - image.At(x, y, c));
        worst = std::max(worst, diff);
      }
      ++compared;
    }
  }
  Check(compared > image.width * image.height / 2 && worst <= 2.0,
        "(c) warp and inverse warp reproduce the interior (" + std::to_string(compared) +
            " pixels), max abs error " + Format("%.3g", worst) + " grey levels");
}

// ---- (d) WarpToImage is the rounded tensor -------------------------------------------------------

void TestImageMatchesTensor(std::mt19937& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  size_t compared = 0, exact = 0;
  int worst = 0;
  for (int src_channels : {1, 3, 4}) {
    const TestImage image = RandomImage(rng, 67, 59, src_channels, 2);
    for (int out_channels : {1, 3}) {
      for (bool bgr : {false, true}) {
        const Affine map = SimilarityAround(0.3 + 2 * unit(rng), unit(rng) * 6, 56, 56, 33, 29);
        TensorSpec spec;
        spec.channels = out_channels;
        spec.bgr = bgr;
        for (int c = 0; c < 3; ++c) spec.mean[c] = 0.0f, spec.std[c] = 1.0f;
        std::vector<float> tensor(static_cast<size_t>(112) * 112 * out_channels);
        std::vector<uint8_t> pixels(tensor.size());
        maskface::WarpToTensor(image.View(!bgr), map, spec, tensor.data());
        maskface::WarpToImage(image.View(!bgr), map, 112, 112, out_channels, bgr, pixels.data());
        const size_t plane = 112 * 112;
        for (size_t i = 0; i < plane; ++i) {
          for (int c = 0; c < out_channels; ++c) {
            const double rounded = std::clamp(std::round(static_cast<double>(tensor[c * plane + i])), 0.0, 255.0);
            const int diff = std::abs(static_cast<int>(rounded) - pixels[i * out_channels + c]);
            worst = std::max(worst, diff);
            exact += diff == 0;
            ++compared;
          }
        }
      }
    }
  }
  Check(worst <= 1 && exact >= compared - compared / 1000,
        "(d) WarpToImage == round(WarpToTensor, mean 0 std 1): max diff " + std::to_string(worst) + ", " +
            std::to_string(compared - exact) + " of " + std::to_string(compared) + " values differ");
}

// ---- (e) ResizeMap -------------------------------------------------------------------------------

void TestResizeMap(std::mt19937& rng) {
  bool identical = true;
  for (int channels : {1, 3, 4}) {
    const TestImage image = RandomImage(rng, 45, 33, channels, 3);
    const Affine map = maskface::ResizeMap(image.width, image.height, image.width, image.height);
    TensorSpec spec;
    spec.width = image.width;
    spec.height = image.height;
    spec.channels = channels == 1 ? 1 : 3;
    for (int c = 0; c < 3; ++c) spec.mean[c] = 0.0f, spec.std[c] = 1.0f;
    std::vector<float> out(static_cast<size_t>(spec.channels) * image.width * image.height);
    maskface::WarpToTensor(image.View(false), map, spec, out.data());
    const size_t plane = static_cast<size_t>(image.width) * image.height;
    for (int y = 0; y < image.height; ++y) {
      for (int x = 0; x < image.width; ++x) {
        for (int c = 0; c < spec.channels; ++c) {
          identical &= out[c * plane + y * image.width + x] == image.At(x, y, c);
        }
      }
    }
  }
  Check(identical, "(e) ResizeMap to the same size reproduces the image exactly (1, 3, 4 channels, padded rows)");
  const Affine half = maskface::ResizeMap(640, 480, 320, 240);
  Check(MaxAbsDifference(half, Affine{{2, 0, 0.5, 0, 2, 0.5}}) == 0.0,
        "(e) ResizeMap 640x480 -> 320x240 is src = (dst + 0.5) * 2 - 0.5");
}

// MirrorOutput: the tensor it warps is the plain warp's, each row reversed; twice is the identity.
void TestMirrorOutput(std::mt19937& rng) {
  const TestImage image = RandomImage(rng, 160, 140, 3, 0);
  const Affine map = SimilarityAround(1.3, 0.2, 56, 56, 80, 70);
  TensorSpec spec;
  const size_t plane = static_cast<size_t>(spec.width) * spec.height;
  std::vector<float> plain(3 * plane), mirror(3 * plane);
  maskface::WarpToTensor(image.View(false), map, spec, plain.data());
  maskface::WarpToTensor(image.View(false), maskface::MirrorOutput(map, spec.width), spec, mirror.data());
  double worst = 0.0;
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < spec.height; ++y) {
      for (int x = 0; x < spec.width; ++x) {
        const float a = plain[c * plane + y * spec.width + x];
        const float b = mirror[c * plane + y * spec.width + (spec.width - 1 - x)];
        worst = std::max(worst, static_cast<double>(std::abs(a - b)));
      }
    }
  }
  // The mirrored map's coordinates are the same values computed in another order: equal to
  // float rounding of the sample position, not to the bit.
  Check(worst < 1e-5, "(e) MirrorOutput warps each tensor row reversed, max difference " + Format("%.3g", worst));
  const Affine twice = maskface::MirrorOutput(maskface::MirrorOutput(map, 112), 112);
  Check(MaxAbsDifference(twice, map) < 1e-12, "(e) MirrorOutput twice is the original map");
}

// ---- (f) degenerate and invalid input ------------------------------------------------------------

void ExpectInvalidArgument(const std::function<void()>& call, const std::string& what) {
  bool thrown = false;
  try {
    call();
  } catch (const maskface::Error& error) {
    thrown = error.code() == maskface::ErrorCode::kInvalidArgument;
  }
  Check(thrown, "(f) throws kInvalidArgument: " + what);
}

void TestDegenerateAndInvalid() {
  const double same[10] = {0.1, 0.7, 0.1, 0.7, 0.1, 0.7, 0.1, 0.7, 0.1, 0.7};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const double* face = maskface::kArcFaceTemplate112;
  const double with_nan[4] = {1, 2, nan, 4};
  const double with_inf[4] = {1, 2, 3, inf};
  Affine unused;
  Check(!maskface::EstimateSimilarity(same, face, 5, &unused), "(f) EstimateSimilarity: identical source points -> false");
  Check(!maskface::EstimateSimilarity(face, same, 5, &unused), "(f) EstimateSimilarity: identical destination points -> false");
  Check(!maskface::EstimateSimilarity(face, face, 1, &unused), "(f) EstimateSimilarity: one point -> false");
  Check(!maskface::EstimateSimilarity(with_nan, face, 2, &unused), "(f) EstimateSimilarity: NaN -> false");
  Check(!maskface::EstimateSimilarity(face, with_inf, 2, &unused), "(f) EstimateSimilarity: Inf -> false");
  Check(!maskface::EstimateSimilarity(nullptr, face, 5, &unused), "(f) EstimateSimilarity: null points -> false");
  const double square[8] = {0, 0, 1, 0, 1, 1, 0, 1};
  const double mirrored[8] = {0, 0, -1, 0, -1, 1, 0, 1};  // no scaled rotation fits better than zero
  Check(!maskface::EstimateSimilarity(square, mirrored, 4, &unused),
        "(f) EstimateSimilarity: exact mirror image (zero-scale fit) -> false");

  Check(!maskface::InvertAffine(Affine{{1, 2, 3, 2, 4, 5}}, &unused), "(f) InvertAffine: singular -> false");
  Check(!maskface::InvertAffine(Affine{{1, 0, nan, 0, 1, 0}}, &unused), "(f) InvertAffine: NaN -> false");
  const Affine map{{0.7, 0.3, -1.5, -0.2, 1.1, 2.25}};
  Affine inverse;
  Check(maskface::InvertAffine(map, &inverse) &&
            MaxAbsDifference(Compose(map, inverse), Affine{{1, 0, 0, 0, 1, 0}}) < 1e-14,
        "(f) InvertAffine: map * inverse = identity");

  std::vector<uint8_t> pixels(64 * 64 * 4, 0);
  std::vector<float> tensor(3 * 112 * 112);
  const Affine identity{{1, 0, 0, 0, 1, 0}};
  auto view = [&](int width, int height, int channels) {
    ImageView v;
    v.data = pixels.data();
    v.width = width;
    v.height = height;
    v.channels = channels;
    return v;
  };
  TensorSpec spec;
  ExpectInvalidArgument([&] { ImageView v = view(64, 64, 3); v.data = nullptr; maskface::WarpToTensor(v, identity, spec, tensor.data()); }, "null image data");
  ExpectInvalidArgument([&] { maskface::WarpToTensor(view(0, 64, 3), identity, spec, tensor.data()); }, "zero width");
  ExpectInvalidArgument([&] { maskface::WarpToTensor(view(64, -1, 3), identity, spec, tensor.data()); }, "negative height");
  ExpectInvalidArgument([&] { maskface::WarpToTensor(view(64, 64, 2), identity, spec, tensor.data()); }, "2 image channels");
  ExpectInvalidArgument([&] { ImageView v = view(64, 64, 3); v.row_stride = 100; maskface::WarpToTensor(v, identity, spec, tensor.data()); }, "row_stride < width * channels");
  ExpectInvalidArgument([&] { maskface::WarpToTensor(view(64, 64, 3), identity, spec, nullptr); }, "null output");
  ExpectInvalidArgument([&] { maskface::WarpToTensor(view(64, 64, 3), Affine{{1, 0, nan, 0, 1, 0}}, spec, tensor.data()); }, "NaN in the transform");
  ExpectInvalidArgument([&] { maskface::WarpToTensor(view(64, 64, 3), Affine{{inf, 0, 0, 0, 1, 0}}, spec, tensor.data()); }, "Inf in the transform");
  ExpectInvalidArgument([&] { TensorSpec s; s.channels = 2; maskface::WarpToTensor(view(64, 64, 3), identity, s, tensor.data()); }, "spec.channels 2");
  ExpectInvalidArgument([&] { TensorSpec s; s.width = 0; maskface::WarpToTensor(view(64, 64, 3), identity, s, tensor.data()); }, "spec.width 0");
  ExpectInvalidArgument([&] { TensorSpec s; s.std[1] = 0.0f; maskface::WarpToTensor(view(64, 64, 3), identity, s, tensor.data()); }, "std 0");
  ExpectInvalidArgument([&] { TensorSpec s; s.mean[2] = NAN; maskface::WarpToTensor(view(64, 64, 3), identity, s, tensor.data()); }, "NaN mean");
  std::vector<uint8_t> out(112 * 112 * 3);
  ExpectInvalidArgument([&] { maskface::WarpToImage(view(64, 64, 3), identity, 112, 112, 4, false, out.data()); }, "WarpToImage with 4 output channels");
  ExpectInvalidArgument([&] { maskface::WarpToImage(view(64, 64, 5), identity, 112, 112, 3, false, out.data()); }, "WarpToImage with 5 image channels");
  ExpectInvalidArgument([&] { maskface::WarpToImage(view(64, 64, 3), identity, 0, 112, 3, false, out.data()); }, "WarpToImage with width 0");
  ExpectInvalidArgument([&] { maskface::ResizeMap(0, 10, 10, 10); }, "ResizeMap with a zero source width");
}

// ---- (g) vector math -----------------------------------------------------------------------------

void TestVectorMath(std::mt19937& rng) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const float finite[3] = {1.0f, -2.0f, 3e38f};
  const float with_nan[3] = {1.0f, nan, 3.0f};
  const float with_inf[3] = {1.0f, 2.0f, -inf};
  Check(maskface::AllFinite(finite, 3) && maskface::AllFinite(nullptr, 0), "(g) AllFinite: finite values and the empty vector");
  Check(!maskface::AllFinite(with_nan, 3) && !maskface::AllFinite(with_inf, 3), "(g) AllFinite: NaN and -Inf are not finite");

  auto unchanged_after_refusal = [](std::vector<float> v) {
    const std::vector<float> before = v;
    const bool refused = !maskface::L2Normalize(v.data(), v.size());
    return refused && (v.empty() || std::memcmp(v.data(), before.data(), v.size() * sizeof(float)) == 0);
  };
  Check(unchanged_after_refusal(std::vector<float>(512, 0.0f)), "(g) L2Normalize: zero vector -> false, unchanged");
  Check(unchanged_after_refusal({1.0f, nan, 2.0f}), "(g) L2Normalize: NaN -> false, unchanged");
  Check(unchanged_after_refusal({1.0f, 2.0f, inf, 4.0f, 5.0f}), "(g) L2Normalize: Inf -> false, unchanged");
  Check(unchanged_after_refusal({}), "(g) L2Normalize: empty vector -> false");

  auto norm = [](const std::vector<float>& v) {
    double sum = 0.0;
    for (float x : v) sum += static_cast<double>(x) * x;
    return std::sqrt(sum);
  };
  std::vector<float> huge(512, 3e38f);  // a float sum of squares would overflow at the first term
  huge[7] = -3e38f;
  const bool huge_ok = maskface::L2Normalize(huge.data(), huge.size());
  Check(huge_ok && std::abs(norm(huge) - 1.0) < 1e-6 && std::abs(huge[0] - 1.0f / std::sqrt(512.0f)) < 1e-7f &&
            huge[7] == -huge[0],
        "(g) L2Normalize: values near FLT_MAX normalise correctly");
  std::vector<float> tiny(513, 1e-40f);  // subnormal: a float sum of squares would underflow to 0
  const bool tiny_ok = maskface::L2Normalize(tiny.data(), tiny.size());
  Check(tiny_ok && std::abs(norm(tiny) - 1.0) < 1e-6, "(g) L2Normalize: subnormal values normalise correctly");

  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> v(509);
  for (float& x : v) x = gauss(rng);
  const std::vector<float> original = v;
  const double original_norm = norm(v);
  Check(maskface::L2Normalize(v.data(), v.size()), "(g) L2Normalize: random vector accepted");
  double worst = 0.0;
  for (size_t i = 0; i < v.size(); ++i) worst = std::max(worst, std::abs(v[i] - original[i] / original_norm));
  Check(std::abs(norm(v) - 1.0) < 1e-6 && worst < 1e-7,
        "(g) L2Normalize: unit norm, direction kept, max error " + Format("%.3g", worst));

  // MergeMirroredRows: rows i and n + i (unit vectors) -> unit (a + b) in row i.
  const size_t n = 3, dim = 67;
  std::vector<float> rows(2 * n * dim);
  for (float& x : rows) x = gauss(rng);
  for (size_t r = 0; r < 2 * n; ++r) maskface::L2Normalize(rows.data() + r * dim, dim);
  const std::vector<float> before = rows;
  bool merged = maskface::MergeMirroredRows(rows.data(), n, dim);
  double merge_error = 0.0;
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> sum(dim);
    double sum_norm = 0.0;
    for (size_t k = 0; k < dim; ++k) {
      sum[k] = static_cast<double>(before[i * dim + k]) + before[(n + i) * dim + k];
      sum_norm += sum[k] * sum[k];
    }
    for (size_t k = 0; k < dim; ++k) merge_error = std::max(merge_error, std::abs(rows[i * dim + k] - sum[k] / std::sqrt(sum_norm)));
  }
  Check(merged && merge_error < 1e-6, "(g) MergeMirroredRows: unit sum of each pair, max error " + Format("%.3g", merge_error));
  std::vector<float> opposite = {1.0f, 0.0f, -1.0f, 0.0f};  // one face (n = 1, dim 2) and its exact opposite
  Check(!maskface::MergeMirroredRows(opposite.data(), 1, 2), "(g) MergeMirroredRows: a pair that cancels out -> false");
}

// ---- timing (printed, not asserted) --------------------------------------------------------------

void PrintTiming(std::mt19937& rng) {
  const TestImage frame = RandomImage(rng, 640, 480, 3, 0);
  // A face about 1.8x the template's size, tilted by 10 degrees, in the middle of the frame.
  const Affine template_to_frame = SimilarityAround(1.8, 0.17, 56, 56, 320, 240);
  double landmarks[10];
  for (int i = 0; i < 5; ++i) {
    Apply(template_to_frame, maskface::kArcFaceTemplate112[2 * i], maskface::kArcFaceTemplate112[2 * i + 1],
          &landmarks[2 * i], &landmarks[2 * i + 1]);
  }
  TensorSpec spec;
  std::vector<float> tensor(3 * 112 * 112);
  constexpr int kRuns = 2000;
  double best_us = 1e300, total_us = 0.0;
  for (int run = -100; run < kRuns; ++run) {  // the first 100 warm up
    const auto start = std::chrono::steady_clock::now();
    Affine frame_to_template, out_to_src;
    maskface::EstimateSimilarity(landmarks, maskface::kArcFaceTemplate112, 5, &frame_to_template);
    maskface::InvertAffine(frame_to_template, &out_to_src);
    maskface::WarpToTensor(frame.View(false), out_to_src, spec, tensor.data());
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    if (run >= 0) {
      best_us = std::min(best_us, us);
      total_us += us;
    }
  }
  std::printf("timing: estimate + invert + WarpToTensor 640x480x3 -> 3x112x112: mean %.1f us, best %.1f us\n",
              total_us / kRuns, best_us);
}

}  // namespace

int main() {
  std::mt19937 rng(20240611);
  TestWarpMatchesReference(rng);
  TestEstimateSimilarity(rng);
  TestRoundTrip();
  TestImageMatchesTensor(rng);
  TestResizeMap(rng);
  TestMirrorOutput(rng);
  TestDegenerateAndInvalid();
  TestVectorMath(rng);
  PrintTiming(rng);
  std::printf("%s: %d check(s) failed\n", g_failures == 0 ? "PASS" : "FAIL", g_failures);
  return g_failures == 0 ? 0 : 1;
}
