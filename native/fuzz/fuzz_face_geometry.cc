// libFuzzer target: the geometry from a photo to face crops (core/face_geometry.h,
// core/image_pyramid.h) on what a detector or landmark network may output (any float: NaN,
// infinities, extremes, denormals) and on arbitrary frame sizes. maskface::Error is an expected
// outcome; a crash, a sanitizer report, another exception or a broken invariant is a finding.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "core/align.h"
#include "core/face_geometry.h"
#include "core/image_pyramid.h"
#include "fuzz/fuzz_input.h"

namespace {

using maskface::Affine;
using maskface::FaceBox;
using maskface::ImageView;
using maskface::KeypointFace;
using maskface::fuzz::FuzzImage;
using maskface::fuzz::Reader;

bool Finite(const Affine& a) {
  for (double v : a.m) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

FaceBox ReadBox(Reader& in) {
  FaceBox b;
  b.x1 = in.Float();
  b.y1 = in.Float();
  // Often a proper box near the first corner, so that overlaps happen.
  if (in.Bool()) {
    b.x2 = b.x1 + std::fabs(in.Float());
    b.y2 = b.y1 + std::fabs(in.Float());
  } else {
    b.x2 = in.Float();
    b.y2 = in.Float();
  }
  b.score = in.Float();
  return b;
}

bool Moderate(const FaceBox& b) {
  return std::fabs(b.x1) <= 1e6f && std::fabs(b.y1) <= 1e6f && std::fabs(b.x2) <= 1e6f && std::fabs(b.y2) <= 1e6f;
}

bool Eligible(const FaceBox& c, float min_score) {
  return c.score >= min_score && c.x2 > c.x1 && c.y2 > c.y1 && std::isfinite(c.x1) && std::isfinite(c.y1) &&
         std::isfinite(c.x2) && std::isfinite(c.y2);
}

void CheckBoxMeasures(const FaceBox& a, const FaceBox& b) {
  const float iou = maskface::BoxIoU(a, b);
  const float inside = maskface::AreaInside(b, a);
  if (Moderate(a) && Moderate(b)) {
    // 1e6 corners keep areas far from overflow: both shares lie in [0, 1] up to rounding, boxes
    // of denormal size included (crash-iou-underflow-nan: their IoU was 0 / 0).
    FUZZ_CHECK(iou >= 0.0f && iou <= 1.0f + 1e-5f);
    FUZZ_CHECK(inside >= 0.0f && inside <= 1.0f + 1e-5f);
  }
}

void FuzzSelect(Reader& in) {
  std::vector<FaceBox> candidates(in.Int(0, 24));
  for (FaceBox& c : candidates) c = ReadBox(in);
  const float min_score = in.Float();
  const float max_iou = in.Float();
  const size_t max_count = in.Int(0, 30);
  const std::vector<FaceBox> kept = maskface::SelectFaces(candidates, min_score, max_iou, max_count);
  size_t eligible = 0;
  for (const FaceBox& c : candidates) eligible += Eligible(c, min_score);
  FUZZ_CHECK(kept.size() <= eligible);
  if (max_count != 0) FUZZ_CHECK(kept.size() <= max_count);
  for (size_t i = 0; i < kept.size(); ++i) {
    FUZZ_CHECK(Eligible(kept[i], min_score));
    if (i > 0) FUZZ_CHECK(!(kept[i].score > kept[i - 1].score));
    for (size_t j = 0; j < i; ++j) FUZZ_CHECK(maskface::BoxIoU(kept[j], kept[i]) <= max_iou);
  }
  // Nothing eligible is lost without a reason: the best one is always kept.
  if (eligible > 0 && !(max_iou != max_iou)) FUZZ_CHECK(!kept.empty());
  for (size_t i = 0; i + 1 < candidates.size(); ++i) CheckBoxMeasures(candidates[i], candidates[i + 1]);
}

void FuzzBlend(Reader& in) {
  std::vector<KeypointFace> candidates(in.Int(0, 16));
  for (KeypointFace& c : candidates) {
    c.box = ReadBox(in);
    for (float& k : c.keypoints) k = in.Bool() ? c.box.x1 + in.Int(0, 64) : in.Float();
  }
  const float min_score = in.Float();
  const float min_iou = in.Float();
  const std::vector<KeypointFace> faces = maskface::BlendFaces(candidates, min_score, min_iou);
  size_t eligible = 0;
  bool all_finite = true;
  for (const KeypointFace& c : candidates) {
    if (!Eligible(c.box, min_score)) continue;
    ++eligible;
    all_finite = all_finite && std::isfinite(c.box.score);
    for (float k : c.keypoints) all_finite = all_finite && std::isfinite(k);
  }
  FUZZ_CHECK(faces.size() <= eligible);
  if (eligible > 0) FUZZ_CHECK(!faces.empty());
  for (size_t i = 0; i < faces.size(); ++i) {
    if (i > 0) FUZZ_CHECK(!(faces[i].box.score > faces[i - 1].box.score));
    // Positive weights over finite members: score-weighted means are finite.
    if (min_score > 0 && all_finite) {
      const FaceBox& b = faces[i].box;
      FUZZ_CHECK(std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) && std::isfinite(b.y2));
      for (float k : faces[i].keypoints) FUZZ_CHECK(std::isfinite(k));
    }
  }
}

void Warp(const ImageView& image, const Affine& map, int size) {
  std::vector<uint8_t> out(static_cast<size_t>(size) * size * 3);
  try {
    maskface::WarpToImage(image, map, size, size, 3, false, out.data());
  } catch (const maskface::Error& e) {
    const bool must_accept = maskface::fuzz::WarpAccepts(map, size, size);
    if (must_accept) std::fprintf(stderr, "WarpToImage refused: %s\n", e.what());
    FUZZ_CHECK(!must_accept);
    return;
  }
  FUZZ_CHECK(Finite(map));
}

void FuzzFrames(Reader& in, const FuzzImage& image) {
  // Arbitrary sizes and pad: either a map or an Error.
  const int iw = in.AnyInt(), ih = in.AnyInt(), w = in.AnyInt(), h = in.AnyInt();
  const double pad = in.Double();
  try {
    maskface::LetterboxMap(iw, ih, w, h, pad);
    FUZZ_CHECK(iw > 0 && ih > 0 && w > 0 && h > 0 && pad >= 0 && std::isfinite(pad));
  } catch (const maskface::Error&) {
    FUZZ_CHECK(!(iw > 0 && ih > 0 && w > 0 && h > 0 && pad >= 0 && std::isfinite(pad)));
  }
  // The real image into a detector frame.
  const int frame = in.Int(1, 64);
  const double frame_pad = in.Bool() ? in.Int(0, 8) / 10.0 : in.Double();
  try {
    const Affine letterbox = maskface::LetterboxMap(image.view.width, image.view.height, frame, frame, frame_pad);
    Warp(image.view, letterbox, frame);
  } catch (const maskface::Error&) {
    FUZZ_CHECK(!(frame_pad >= 0 && std::isfinite(frame_pad)));
  }
  // A detected box -> the landmark network's square crop.
  const FaceBox square = maskface::SquareAround(ReadBox(in));
  const int size = in.Bool() ? in.Int(1, 64) : in.AnyInt();
  const bool mirror = in.Bool();
  try {
    const Affine crop = maskface::CropMap(square, size, mirror);
    FUZZ_CHECK(size > 0);
    if (size <= 64) Warp(image.view, crop, size);
  } catch (const maskface::Error&) {
    FUZZ_CHECK(size <= 0);
  }
  double x, y;
  maskface::MapPoint(maskface::ResizeMap(image.view.width, image.view.height, frame, frame), in.Double(), in.Double(), &x, &y);
}

void FuzzLandmarks(Reader& in) {
  float a[136], b[136];
  const float base_x = in.Float(), base_y = in.Float();
  for (int i = 0; i < 68; ++i) {
    if (in.Bool()) {  // a plausible face: points near a centre
      a[2 * i] = base_x + in.Int(-64, 64);
      a[2 * i + 1] = base_y + in.Int(-64, 64);
    } else {
      a[2 * i] = in.Float();
      a[2 * i + 1] = in.Float();
    }
  }
  for (int i = 0; i < 136; ++i) b[i] = in.Bool() ? a[i] : in.Float();
  double five[10];
  maskface::FivePointsFrom68(a, five);
  const double disagreement = maskface::LandmarkDisagreement(a, b);
  FUZZ_CHECK(!(disagreement < 0));
  const maskface::Pose pose = maskface::PoseFromFivePoints(five);
  bool moderate = true;
  for (double v : five) moderate = moderate && std::fabs(v) <= 1e6;
  if (moderate) FUZZ_CHECK(std::isfinite(pose.yaw) && std::isfinite(pose.roll));
  FUZZ_CHECK(!(std::fabs(pose.roll) > 180.0) && !(std::fabs(pose.yaw) > 90.0));
  double points[10];
  for (double& v : points) v = in.Double();
  const maskface::Pose any = maskface::PoseFromFivePoints(points);
  FUZZ_CHECK(!(std::fabs(any.roll) > 180.0) && !(std::fabs(any.yaw) > 90.0));
}

void FuzzQuality(Reader& in) {
  const int width = in.Int(1, 32), height = in.Int(1, 32);
  std::vector<uint8_t> grey(static_cast<size_t>(width) * height);  // exactly the image
  const uint8_t seed = in.Byte(), step = in.Byte();
  for (size_t i = 0; i < grey.size(); ++i) grey[i] = static_cast<uint8_t>(seed + step * i + (i % 7 == 0 ? in.Byte() : 0));
  const double variance = maskface::LaplacianVariance(grey.data(), width, height);
  FUZZ_CHECK(std::isfinite(variance) && variance >= -1e-6);
}

void FuzzPyramid(Reader& in, const FuzzImage& image) {
  int half_width = 0, half_height = 0;
  if (image.view.width >= 2 && image.view.height >= 2) {
    const std::vector<uint8_t> half = maskface::HalveImage(image.view, &half_width, &half_height);
    FUZZ_CHECK(half_width == image.view.width / 2 && half_height == image.view.height / 2);
    FUZZ_CHECK(half.size() == static_cast<size_t>(half_width) * half_height * image.view.channels);
  } else {
    FUZZ_EXPECT_ERROR(maskface::HalveImage(image.view, &half_width, &half_height));
  }
  maskface::ImagePyramid pyramid(image.view);
  // Several warps through one pyramid: levels are built on first use and must stay valid.
  const int warps = in.Int(1, 4);
  for (int i = 0; i < warps; ++i) {
    Affine map;
    if (in.Bool()) {
      // A plausible shrinking map: scale 1/16 .. 16, arbitrary translation.
      const double scale = std::ldexp(1.0, in.Int(-4, 4)) * (1.0 + in.Byte() / 256.0);
      map = Affine{{scale, 0.0, in.Double(), 0.0, scale, in.Double()}};
    } else {
      for (double& v : map.m) v = in.Double();
    }
    const maskface::ImagePyramid::Source source = pyramid.For(map);
    FUZZ_CHECK(source.image.data != nullptr && source.image.width >= 1 && source.image.height >= 1);
    FUZZ_CHECK(source.image.width <= image.view.width && source.image.height <= image.view.height);
    FUZZ_CHECK(source.image.channels == image.view.channels);
    Warp(source.image, source.out_to_src, in.Int(1, 16));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  const FuzzImage image = ReadImage(in);
  // Every part runs on every input, each from its own stretch of the bytes, in an order chosen by
  // the first of them, so that the fuzzer can reach each part with short inputs.
  const int first = in.Int(0, 5);
  for (int step = 0; step < 6; ++step) {
    switch ((first + step) % 6) {
      case 0: FuzzSelect(in); break;
      case 1: FuzzBlend(in); break;
      case 2: FuzzFrames(in, image); break;
      case 3: FuzzLandmarks(in); break;
      case 4: FuzzQuality(in); break;
      default: FuzzPyramid(in, image); break;
    }
  }
  return 0;
}
