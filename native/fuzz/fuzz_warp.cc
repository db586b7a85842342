// libFuzzer target: face alignment (core/align.h) on inputs the TypeScript layer passes through
// from outside: landmark points, transforms, image geometry and normalisation values. Images
// sit in buffers of exactly their size (ASan sees a read past either end); transforms and
// normalisation values are arbitrary doubles and floats, NaN, infinities, extremes and denormals
// included. maskface::Error is an expected outcome; a crash, a sanitizer report, another
// exception, or an invalid argument that is not rejected is a finding.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "core/align.h"
#include "fuzz/fuzz_input.h"

namespace {

using maskface::Affine;
using maskface::ImageView;
using maskface::TensorSpec;
using maskface::fuzz::FuzzImage;
using maskface::fuzz::Reader;

Affine ReadAffine(Reader& in) {
  Affine a;
  for (double& v : a.m) v = in.Double();
  return a;
}

bool Finite(const Affine& a) {
  for (double v : a.m) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

TensorSpec ReadSpec(Reader& in) {
  TensorSpec spec;
  spec.width = in.Int(1, 64);
  spec.height = in.Int(1, 64);
  spec.channels = in.Bool() ? 3 : 1;
  spec.bgr = in.Bool();
  if (in.Bool()) {  // arbitrary normalisation; otherwise the default 127.5 / 127.5
    for (int c = 0; c < 3; ++c) {
      spec.mean[c] = in.Float();
      spec.std[c] = in.Float();
    }
  }
  return spec;
}

// Every normalisation value is moderate: the outputs of a finite transform must be finite then
// (samples lie in [0, 255]; outside the image they are 0).
bool ModerateSpec(const TensorSpec& spec) {
  for (int c = 0; c < spec.channels; ++c) {
    if (!(std::fabs(spec.mean[c]) <= 1e6f) || !(std::fabs(spec.std[c]) >= 1e-3f && std::fabs(spec.std[c]) <= 1e6f)) return false;
  }
  return true;
}

void Tensor(const ImageView& image, const Affine& map, const TensorSpec& spec) {
  std::vector<float> out(static_cast<size_t>(spec.channels) * spec.width * spec.height);
  try {
    maskface::WarpToTensor(image, map, spec, out.data());
  } catch (const maskface::Error& e) {
    // A map within bounds and finite, non-zero normalisation must be accepted.
    bool finite_spec = true;
    for (int c = 0; c < spec.channels; ++c) {
      finite_spec = finite_spec && std::isfinite(spec.mean[c]) && std::isfinite(spec.std[c]) && std::isfinite(1.0f / spec.std[c]);
    }
    const bool must_accept = maskface::fuzz::WarpAccepts(map, spec.width, spec.height) && finite_spec;
    if (must_accept) std::fprintf(stderr, "WarpToTensor refused: %s\n", e.what());
    FUZZ_CHECK(!must_accept);
    return;
  }
  FUZZ_CHECK(Finite(map));
  if (ModerateSpec(spec)) {
    for (float v : out) FUZZ_CHECK(std::isfinite(v));
  }
  // Bilinear samples of 0..255 (0 outside the image) stay in 0..255: with the default
  // normalisation, every value lies in [-1, 1].
  bool default_norm = true;
  for (int c = 0; c < 3; ++c) default_norm = default_norm && spec.mean[c] == 127.5f && spec.std[c] == 127.5f;
  if (default_norm) {
    for (float v : out) FUZZ_CHECK(v >= -1.0001f && v <= 1.0001f);
  }
}

void Image(const ImageView& image, const Affine& map, int out_width, int out_height, int out_channels, bool out_bgr) {
  std::vector<uint8_t> out(static_cast<size_t>(out_width) * out_height * out_channels);
  try {
    maskface::WarpToImage(image, map, out_width, out_height, out_channels, out_bgr, out.data());
  } catch (const maskface::Error& e) {
    const bool must_accept = maskface::fuzz::WarpAccepts(map, out_width, out_height);
    if (must_accept) std::fprintf(stderr, "WarpToImage refused: %s\n", e.what());
    FUZZ_CHECK(!must_accept);
    return;
  }
  FUZZ_CHECK(Finite(map));
}

// One invalid field at a time: each must be rejected, never read through.
void Invalid(Reader& in, const FuzzImage& image, const Affine& map) {
  ImageView bad = image.view;
  TensorSpec spec;
  spec.width = spec.height = 4;
  std::vector<float> tensor(3 * 4 * 4);
  std::vector<uint8_t> pixels(3 * 4 * 4);
  switch (in.Int(0, 7)) {
    case 0: bad.width = -in.Int(0, 64); break;
    case 1: bad.height = -in.Int(0, 64); break;
    case 2: bad.channels = in.Bool() ? 2 : in.Int(5, 255); break;
    case 3: {
      // 1 .. width * channels - 1 (0 would mean width * channels).
      const int row_bytes = bad.width * bad.channels;
      if (row_bytes < 2) {
        bad.data = nullptr;
      } else {
        bad.row_stride = static_cast<size_t>(in.Int(1, row_bytes - 1));
      }
      break;
    }
    case 4: bad.data = nullptr; break;
    case 5:
      spec.channels = in.Bool() ? 2 : 4;
      FUZZ_EXPECT_ERROR(maskface::WarpToTensor(bad, map, spec, tensor.data()));
      FUZZ_EXPECT_ERROR(maskface::WarpToImage(bad, map, 4, 4, spec.channels, false, pixels.data()));
      return;
    case 6:
      spec.width = -in.Int(0, 64);
      FUZZ_EXPECT_ERROR(maskface::WarpToTensor(bad, map, spec, tensor.data()));
      FUZZ_EXPECT_ERROR(maskface::WarpToImage(bad, map, spec.width, 4, 3, false, pixels.data()));
      return;
    default:
      spec.std[in.Int(0, 2)] = in.Bool() ? 0.0f : 1e-40f;  // 1 / std is not finite
      FUZZ_EXPECT_ERROR(maskface::WarpToTensor(bad, map, spec, tensor.data()));
      FUZZ_EXPECT_ERROR(maskface::WarpToImage(bad, map, 4, 4, 3, false, nullptr));
      return;
  }
  FUZZ_EXPECT_ERROR(maskface::WarpToTensor(bad, map, spec, tensor.data()));
  FUZZ_EXPECT_ERROR(maskface::WarpToImage(bad, map, 4, 4, 3, false, pixels.data()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  const FuzzImage image = ReadImage(in);
  const Affine arbitrary = ReadAffine(in);
  const TensorSpec spec = ReadSpec(in);

  // Landmarks onto a template: the ArcFace one or arbitrary points.
  const int n = in.Int(2, 6);
  std::vector<double> src(2 * n), dst(2 * n);
  for (double& v : src) v = in.Double();
  const bool arcface = n == 5 && in.Bool();
  if (arcface) {
    dst.assign(maskface::kArcFaceTemplate112, maskface::kArcFaceTemplate112 + 10);
  } else {
    for (double& v : dst) v = in.Double();
  }
  Affine to_template, to_source;
  bool have_map = false;
  if (maskface::EstimateSimilarity(src.data(), dst.data(), n, &to_template)) {
    FUZZ_CHECK(Finite(to_template));
    // A similarity: [[a, -b], [b, a]].
    FUZZ_CHECK(to_template.m[0] == to_template.m[4] && to_template.m[1] == -to_template.m[3]);
    if (maskface::InvertAffine(to_template, &to_source)) {
      FUZZ_CHECK(Finite(to_source));
      have_map = true;
    }
  }
  Affine inverse;
  if (maskface::InvertAffine(arbitrary, &inverse)) FUZZ_CHECK(Finite(inverse) && Finite(arbitrary));

  Tensor(image.view, arbitrary, spec);
  if (have_map) Tensor(image.view, to_source, spec);

  const int out_width = in.Int(1, 64), out_height = in.Int(1, 64);
  const int out_channels = in.Bool() ? 3 : 1;
  const bool out_bgr = in.Bool();
  Image(image.view, arbitrary, out_width, out_height, out_channels, out_bgr);
  if (have_map) Image(image.view, to_source, out_width, out_height, out_channels, out_bgr);

  // ResizeMap on arbitrary sizes; the map of the real image warps it.
  const int rw = in.AnyInt(), rh = in.AnyInt(), ow = in.AnyInt(), oh = in.AnyInt();
  try {
    const Affine resize = maskface::ResizeMap(rw, rh, ow, oh);
    FUZZ_CHECK(rw > 0 && rh > 0 && ow > 0 && oh > 0 && Finite(resize));
  } catch (const maskface::Error&) {
    FUZZ_CHECK(!(rw > 0 && rh > 0 && ow > 0 && oh > 0));
  }
  const Affine resize = maskface::ResizeMap(image.view.width, image.view.height, out_width, out_height);
  Image(image.view, resize, out_width, out_height, out_channels, out_bgr);

  if (in.Int(0, 3) == 0) Invalid(in, image, arbitrary);
  return 0;
}
