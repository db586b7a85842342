// Tests for native/core/face_geometry and native/core/image_pyramid against hand-computed values
// and independent references. A plain executable: one line per check, non-zero exit on failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/align.h"
#include "core/error.h"
#include "core/face_geometry.h"
#include "core/image_pyramid.h"
#include "tests/test_check.h"

namespace {

using maskface::Affine;
using maskface::FaceBox;
using maskface::ImageView;
using maskface::kMirror68;
using maskface::MapPoint;
using maskface::test::Check;
using maskface::test::Format;
using maskface::test::g_failures;


bool Near(double a, double b, double tolerance = 1e-9) { return std::abs(a - b) <= tolerance; }

bool MapsTo(const Affine& map, double x, double y, double want_x, double want_y) {
  double got_x, got_y;
  MapPoint(map, x, y, &got_x, &got_y);
  return Near(got_x, want_x) && Near(got_y, want_y);
}

bool SameBoxes(const std::vector<FaceBox>& got, const std::vector<FaceBox>& want) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i) {
    const FaceBox &g = got[i], &w = want[i];
    if (g.x1 != w.x1 || g.y1 != w.y1 || g.x2 != w.x2 || g.y2 != w.y2 || g.score != w.score) return false;
  }
  return true;
}

void TestSelectFaces() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  // IoU by hand: (0,0,10,10) vs (5,0,15,10) overlap 50, union 150; (0,0,4,4) vs (2,2,6,8): 4 / 36.
  Check(Near(maskface::BoxIoU({0, 0, 10, 10, 1}, {5, 0, 15, 10, 1}), 1.0 / 3, 1e-7), "BoxIoU half-shifted squares = 1/3");
  Check(Near(maskface::BoxIoU({0, 0, 4, 4, 1}, {2, 2, 6, 8, 1}), 1.0 / 9, 1e-7), "BoxIoU unequal boxes = 4/36");
  Check(maskface::BoxIoU({0, 0, 1, 1, 1}, {2, 2, 3, 3, 1}) == 0 && maskface::BoxIoU({0, 0, 1, 1, 1}, {1, 0, 2, 1, 1}) == 0,
        "BoxIoU 0 for disjoint and edge-touching boxes");

  const FaceBox a{0, 0, 10, 10, 0.9f}, b{1, 1, 11, 11, 0.8f};  // IoU 81 / 119 = 0.68
  // Below the threshold, b, zero width, negative width, NaN score, NaN and infinite corners, a,
  // and a box exactly at the threshold (kept).
  const std::vector<FaceBox> mixed = {{100, 100, 110, 110, 0.3f}, b, {20, 20, 20, 30, 0.95f}, {30, 30, 25, 35, 0.95f},
                                      {40, 40, 50, 50, nan}, {nan, 0, 10, 10, 0.95f}, {0, 0, inf, 10, 0.95f},
                                      {-inf, 0, 10, 10, 0.95f}, a, {60, 60, 70, 70, 0.5f}};
  Check(SameBoxes(maskface::SelectFaces(mixed, 0.5f, 0.5f, 0), {a, {60, 60, 70, 70, 0.5f}}),
        "SelectFaces drops low, NaN-score, empty, negative and non-finite boxes; NMS keeps the more confident of an "
        "overlapping pair (IoU 0.68 > 0.5) even when it comes later");
  Check(SameBoxes(maskface::SelectFaces(mixed, 0.5f, 0.7f, 0), {a, b, {60, 60, 70, 70, 0.5f}}),
        "SelectFaces keeps both overlapping boxes when their IoU (0.68) is below max_iou (0.7), most confident first");

  const std::vector<FaceBox> ties = {{0, 0, 10, 10, 0.7f}, {50, 0, 60, 10, 0.7f}, {1, 0, 11, 10, 0.7f}, {100, 0, 110, 10, 0.7f}};
  Check(SameBoxes(maskface::SelectFaces(ties, 0.5f, 0.5f, 0), {ties[0], ties[1], ties[3]}),
        "SelectFaces with equal scores keeps input order and, of an overlapping pair, the lower index");
  std::vector<FaceBox> many;
  for (int i = 0; i < 6; ++i) many.push_back({30.0f * i, 0, 30.0f * i + 10, 10, 0.1f * (i + 1)});
  Check(SameBoxes(maskface::SelectFaces(many, 0.0f, 0.5f, 2), {many[5], many[4]}),
        "SelectFaces max_count 2 keeps the two most confident of 6 disjoint boxes");

  const FaceBox square = maskface::SquareAround({10, 20, 30, 60, 0.4f});
  Check(square.x1 == 0 && square.y1 == 20 && square.x2 == 40 && square.y2 == 60 && square.score == 0.4f,
        "SquareAround (10,20)-(30,60) is (0,20)-(40,60), score kept");
}

// The fraction of the frame's limiting side that the image itself (without border) fills.
double FilledFraction(const Affine& map, int image_width, int image_height, int width, int height) {
  return std::max(image_width / map.m[0] / width, image_height / map.m[4] / height);
}

void TestLetterboxAndCrop() {
  // Pixel centres as in core/align.h: with scale 2, frame pixel 0 covers image pixels 0 and 1, so
  // its centre lands on 0.5; the frame's edges (-0.5, 319.5) land on the image's (-0.5, 639.5).
  const Affine wide = maskface::LetterboxMap(640, 480, 320, 240, 0.0);
  Check(Near(wide.m[0], 2) && Near(wide.m[4], 2) && wide.m[1] == 0 && wide.m[3] == 0 &&
            MapsTo(wide, 0, 0, 0.5, 0.5) && MapsTo(wide, 319, 239, 638.5, 478.5) &&
            MapsTo(wide, -0.5, -0.5, -0.5, -0.5) && MapsTo(wide, 319.5, 239.5, 639.5, 479.5),
        "LetterboxMap 640x480 -> 320x240, pad 0: scale 2, frame corners -> image corners (edges; centres -> 0.5, 638.5)");
  const Affine resize = maskface::ResizeMap(640, 480, 320, 240);
  Check(std::equal(wide.m, wide.m + 6, resize.m, [](double p, double q) { return Near(p, q); }),
        "LetterboxMap with the frame's aspect ratio equals ResizeMap");
  // 100x200 into 320x240: height limits (scale 200/240); the image is 120 frame pixels wide,
  // frame columns 100..220 (edges), and spans the frame's full height.
  const Affine tall = maskface::LetterboxMap(100, 200, 320, 240, 0.0);
  Check(MapsTo(tall, 99.5, -0.5, -0.5, -0.5) && MapsTo(tall, 219.5, 239.5, 99.5, 199.5),
        "LetterboxMap 100x200 -> 320x240: centred horizontally (columns 100..220), full height");

  const Affine tall_padded = maskface::LetterboxMap(100, 200, 320, 240, 0.4);
  const double tall_fraction = FilledFraction(tall_padded, 100, 200, 320, 240);
  Check(Near(tall_fraction, 1 / 1.8, 1e-9), "LetterboxMap 100x200 pad 0.4: image fills 1/1.8 of the limiting side: " +
                                                  Format("%.4f", tall_fraction));
  // The border is the same on every side (0.4 x the larger side, 256 px here): the padded
  // 1152x992 canvas fits the frame by its height, so the image fills 480 / 992 of it.
  const Affine wide_padded = maskface::LetterboxMap(640, 480, 320, 240, 0.4);
  const double wide_fraction = FilledFraction(wide_padded, 640, 480, 320, 240);
  Check(Near(wide_fraction, 480.0 / 992.0, 1e-9), "LetterboxMap 640x480 pad 0.4: an equal 256-px border, image fills 480/992: " +
                                                   Format("%.4f", wide_fraction));
  const bool centred = MapsTo(wide, 159.5, 119.5, 319.5, 239.5) && MapsTo(wide_padded, 159.5, 119.5, 319.5, 239.5) &&
            MapsTo(tall, 159.5, 119.5, 49.5, 99.5) && MapsTo(tall_padded, 159.5, 119.5, 49.5, 99.5);
  Check(centred, "LetterboxMap maps the frame centre to the image centre (pad 0 and 0.4, wide and tall)");

  // One source pixel per output pixel: output centre u lands on 10 + (u + 0.5) - 0.5.
  const FaceBox crop{10, 20, 74, 84, 1};
  const Affine plain = maskface::CropMap(crop, 64, false);
  Check(MapsTo(plain, 0, 0, 10, 20) && MapsTo(plain, 63, 63, 73, 83), "CropMap (10,20)-(74,84) at 64: (0,0) -> (10,20), (63,63) -> (73,83)");
  bool mirrored = true;
  for (const FaceBox& square : {crop, FaceBox{10, 20, 138, 148, 1}, FaceBox{-3.25f, 7.5f, 41.75f, 52.5f, 1}}) {
    const Affine unflipped = maskface::CropMap(square, 64, false), flipped = maskface::CropMap(square, 64, true);
    for (int u = 0; u < 64; u += 7) {
      for (int v : {0, 31, 63}) {
        double fx, fy, ux, uy;
        MapPoint(flipped, u, v, &fx, &fy);
        MapPoint(unflipped, 63 - u, v, &ux, &uy);
        mirrored &= Near(fx, ux) && Near(fy, uy);
      }
    }
  }
  Check(mirrored, "CropMap mirrored maps (u, v) where unmirrored maps (63 - u, v) (scales 1, 2, 0.7)");
}

// A rough synthetic face (jaw arc, brows, nose, eyes, lips) with random jitter so that it is not
// symmetric: a swapped pair in a table would then move points.
std::vector<float> SyntheticFace(std::mt19937& rng) {
  std::uniform_real_distribution<float> jitter(-2.0f, 2.0f);
  std::vector<float> p(136);
  auto set = [&](int i, double x, double y) { p[2 * i] = static_cast<float>(x) + jitter(rng); p[2 * i + 1] = static_cast<float>(y) + jitter(rng); };
  for (int i = 0; i <= 16; ++i) set(i, 100 - 60 * std::cos(M_PI * i / 16), 90 + 70 * std::sin(M_PI * i / 16));
  for (int i = 17; i <= 26; ++i) set(i, 55 + 10 * (i - 17) + (i >= 22 ? 10 : 0), 60);
  for (int i = 27; i <= 30; ++i) set(i, 100, 75 + 10 * (i - 27));
  for (int i = 31; i <= 35; ++i) set(i, 88 + 6 * (i - 31), 110);
  for (int e = 0; e < 2; ++e) {
    const double cx = e == 0 ? 75 : 125;
    for (int k = 0; k < 6; ++k) set(36 + 6 * e + k, cx + 12 * std::cos(M_PI - M_PI * k / 3), 80 - 5 * std::sin(M_PI - M_PI * k / 3));
  }
  for (int k = 0; k < 12; ++k) set(48 + k, 100 + 25 * std::cos(M_PI - M_PI * k / 6), 135 - 10 * std::sin(M_PI - M_PI * k / 6));
  for (int k = 0; k < 8; ++k) set(60 + k, 100 + 18 * std::cos(M_PI - M_PI * k / 4), 135 - 4 * std::sin(M_PI - M_PI * k / 4));
  return p;
}

void Mean(const std::vector<float>& p, std::vector<int> ids, double* x, double* y) {
  *x = *y = 0;
  for (int i : ids) *x += p[2 * i] / static_cast<double>(ids.size()), *y += p[2 * i + 1] / static_cast<double>(ids.size());
}

void TestLandmarks(std::mt19937& rng) {
  bool involution = true;
  for (int i = 0; i < 68; ++i) involution &= kMirror68[i] >= 0 && kMirror68[i] < 68 && kMirror68[kMirror68[i]] == i;
  Check(involution, "kMirror68 is an involution");
  Check(kMirror68[36] == 45 && kMirror68[45] == 36 && kMirror68[48] == 54 && kMirror68[54] == 48 && kMirror68[30] == 30 &&
            kMirror68[8] == 8 && kMirror68[0] == 16 && kMirror68[39] == 42 && kMirror68[60] == 64,
        "kMirror68: eye corners 36<->45, 39<->42, mouth corners 48<->54, 60<->64, jaw 0<->16; 30 and 8 fixed");

  const std::vector<float> face = SyntheticFace(rng);
  double five[10], want[10];
  maskface::FivePointsFrom68(face.data(), five);
  Mean(face, {37, 38, 40, 41}, &want[0], &want[1]);
  Mean(face, {43, 44, 46, 47}, &want[2], &want[3]);
  want[4] = face[60], want[5] = face[61];
  Mean(face, {48, 60}, &want[6], &want[7]);
  Mean(face, {54, 64}, &want[8], &want[9]);
  bool same = true;
  for (int k = 0; k < 10; ++k) same &= Near(five[k], want[k], 1e-5);
  Check(same, "FivePointsFrom68: eye centres = mean(37,38,40,41) / mean(43,44,46,47), nose = 30, mouth = mean(48,60) / mean(54,64)");

  // Mirror about x = W - 1 - x (W = 200) and renumber: the mirrored face's 5 points must be the
  // original's, mirrored, with left and right swapped.
  constexpr double kW = 200;
  std::vector<float> mirror(136);
  for (int i = 0; i < 68; ++i) {
    mirror[2 * i] = static_cast<float>(kW - 1 - face[2 * kMirror68[i]]);
    mirror[2 * i + 1] = face[2 * kMirror68[i] + 1];
  }
  double mirrored_five[10];
  maskface::FivePointsFrom68(mirror.data(), mirrored_five);
  const int swap[5] = {1, 0, 2, 4, 3};
  double worst = 0;
  for (int k = 0; k < 5; ++k) {
    worst = std::max(worst, std::abs(mirrored_five[2 * k] - (kW - 1 - five[2 * swap[k]])));
    worst = std::max(worst, std::abs(mirrored_five[2 * k + 1] - five[2 * swap[k] + 1]));
  }
  Check(worst < 1e-4, "FivePointsFrom68 of the mirrored face = mirrored 5 points, left/right swapped: max error " + Format("%.3g", worst));

  Check(maskface::LandmarkDisagreement(face.data(), face.data()) == 0, "LandmarkDisagreement of identical sets is 0");
  std::vector<float> shifted = face;
  for (int i = 0; i < 68; ++i) shifted[2 * i] += 3, shifted[2 * i + 1] += 4;  // 5 pixels
  const double interocular = std::hypot(want[2] - want[0], want[3] - want[1]);
  const double disagreement = maskface::LandmarkDisagreement(face.data(), shifted.data());
  Check(Near(disagreement, 5 / interocular, 1e-5), "LandmarkDisagreement of a 5-pixel shift = 5 / interocular (" +
                                                         Format("%.5f", 5 / interocular) + "): " + Format("%.5f", disagreement));
}

void TestPose() {
  const double frontal[10] = {38, 50, 74, 50, 56, 70, 42, 90, 70, 90};
  const maskface::Pose straight = maskface::PoseFromFivePoints(frontal);
  Check(Near(straight.yaw, 0, 1e-9) && Near(straight.roll, 0, 1e-9), "PoseFromFivePoints frontal: yaw 0, roll 0");
  // Rotation by +10 degrees about the nose, y down: (x, y) -> (c x - s y, s x + c y) turns clockwise on screen.
  const double c = std::cos(10 * M_PI / 180), s = std::sin(10 * M_PI / 180);
  double rotated[10];
  for (int k = 0; k < 5; ++k) {
    const double x = frontal[2 * k] - 56, y = frontal[2 * k + 1] - 70;
    rotated[2 * k] = 56 + c * x - s * y;
    rotated[2 * k + 1] = 70 + s * x + c * y;
  }
  const maskface::Pose tilted = maskface::PoseFromFivePoints(rotated);
  Check(Near(tilted.roll, 10, 1e-6) && Near(tilted.yaw, 0, 1e-6),
        "PoseFromFivePoints rotated +10 deg clockwise: roll " + Format("%.4f", tilted.roll) + ", yaw " + Format("%.4f", tilted.yaw));
  double left[10] = {38, 50, 74, 50, 56 - 6, 70, 42, 90, 70, 90}, right[10] = {38, 50, 74, 50, 56 + 6, 70, 42, 90, 70, 90};
  const double yaw_left = maskface::PoseFromFivePoints(left).yaw, yaw_right = maskface::PoseFromFivePoints(right).yaw;
  Check(yaw_left > 5 && Near(yaw_right, -yaw_left, 1e-9),
        "PoseFromFivePoints nose toward the image's left: yaw " + Format("%.2f", yaw_left) + " > 0, opposite for the right");
}

std::vector<uint8_t> Checkerboard(int width, int height, int cell) {
  std::vector<uint8_t> image(static_cast<size_t>(width) * height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) image[y * width + x] = ((x / cell + y / cell) % 2) ? 255 : 0;
  return image;
}

void TestLaplacianVariance() {
  const std::vector<uint8_t> flat(32 * 32, 77);
  Check(maskface::LaplacianVariance(flat.data(), 32, 32) == 0, "LaplacianVariance of a constant image is 0");
  // 4x4, a 4 at (1,1): the interior Laplacians are -16, 4, 4, 0; mean -2, mean square 72, variance 68.
  std::vector<uint8_t> tiny(16, 0);
  tiny[1 * 4 + 1] = 4;
  const double tiny_variance = maskface::LaplacianVariance(tiny.data(), 4, 4);
  Check(Near(tiny_variance, 68, 1e-9), "LaplacianVariance of the 4x4 spike = 68: " + Format("%.6g", tiny_variance));
  const int n = 32;
  const std::vector<uint8_t> sharp = Checkerboard(n, n, 2);
  std::vector<uint8_t> blurred(sharp.size());
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) {  // 3x3 box blur, edges clamped
      int sum = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) sum += sharp[std::clamp(y + dy, 0, n - 1) * n + std::clamp(x + dx, 0, n - 1)];
      blurred[y * n + x] = static_cast<uint8_t>((sum + 4) / 9);
    }
  }
  const double v_sharp = maskface::LaplacianVariance(sharp.data(), n, n), v_blur = maskface::LaplacianVariance(blurred.data(), n, n);
  Check(v_sharp > 2 * v_blur && v_blur > 0, "LaplacianVariance checkerboard " + Format("%.0f", v_sharp) + " > box-blurred " + Format("%.0f", v_blur));
}

void TestHalveImage(std::mt19937& rng) {
  std::uniform_int_distribution<int> byte(0, 255);
  struct Case { int width, height, channels, padding; };
  for (const Case& k : {Case{5, 3, 1, 3}, Case{7, 5, 3, 4}, Case{6, 4, 3, 0}, Case{2, 2, 1, 0}}) {
    const size_t stride = static_cast<size_t>(k.width) * k.channels + k.padding;
    std::vector<uint8_t> pixels(stride * k.height);
    for (uint8_t& p : pixels) p = static_cast<uint8_t>(byte(rng));
    if (k.width == 2) pixels = {1, 2, 1, 2};  // mean 1.5: rounds up to 2
    ImageView view;
    view.data = pixels.data(), view.width = k.width, view.height = k.height, view.channels = k.channels;
    view.row_stride = k.padding ? stride : 0;
    int width = -1, height = -1;
    const std::vector<uint8_t> half = maskface::HalveImage(view, &width, &height);
    bool ok = width == k.width / 2 && height == k.height / 2 && half.size() == static_cast<size_t>(width) * height * k.channels;
    for (int y = 0; ok && y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        for (int c = 0; c < k.channels; ++c) {
          double sum = 0;
          for (int dy = 0; dy < 2; ++dy)
            for (int dx = 0; dx < 2; ++dx) sum += pixels[(2 * y + dy) * stride + (2 * x + dx) * k.channels + c];
          ok &= half[(y * width + x) * k.channels + c] == std::floor(sum / 4 + 0.5);  // halves round up
        }
      }
    }
    Check(ok, "HalveImage " + std::to_string(k.width) + "x" + std::to_string(k.height) + "x" + std::to_string(k.channels) +
                  " (row padding " + std::to_string(k.padding) + ") -> " + std::to_string(width) + "x" + std::to_string(height) +
                  ", rounded 2x2 means");
  }
}

void TestPyramid() {
  constexpr int kSide = 400;
  std::vector<uint8_t> gradient(kSide * kSide);
  for (int y = 0; y < kSide; ++y)
    for (int x = 0; x < kSide; ++x) gradient[y * kSide + x] = static_cast<uint8_t>(std::lround((x + y) * 255.0 / (2 * (kSide - 1))));
  ImageView base;
  base.data = gradient.data(), base.width = kSide, base.height = kSide, base.channels = 1;
  maskface::ImagePyramid pyramid(base);

  const Affine gentle{{1.2, -0.5, 30, 0.5, 1.2, 10}};  // scale 1.3
  const auto near_base = pyramid.For(gentle);
  Check(near_base.image.data == base.data && std::equal(gentle.m, gentle.m + 6, near_base.out_to_src.m),
        "ImagePyramid::For scale 1.3: the base image and the same map");

  const double a = 5 * std::cos(0.3), b = 5 * std::sin(0.3);  // scale 5, rotated
  const Affine shrink{{a, -b, 150, b, a, 20}};
  const auto level2 = pyramid.For(shrink);
  bool coordinates = level2.image.width == kSide / 4 && level2.image.height == kSide / 4 && level2.image.data != base.data;
  for (double x : {0.0, 17.0, 63.5}) {
    for (double y : {0.0, 40.0, 71.0}) {
      double bx, by, ux, uy;
      MapPoint(shrink, x, y, &bx, &by);
      MapPoint(level2.out_to_src, x, y, &ux, &uy);
      coordinates &= Near((ux + 0.5) * 4 - 0.5, bx) && Near((uy + 0.5) * 4 - 0.5, by);
    }
  }
  Check(coordinates, "ImagePyramid::For scale 5: level 2 (100x100), base = (u + 0.5) * 4 - 0.5 at 9 points");
  Check(std::abs(maskface::AffineScale(level2.out_to_src) - 1.25) < 1e-12, "ImagePyramid::For scale 5: remaining scale 1.25");

  // Straight shrink by 5: output u samples base 5u + 2, inside the image for u < 80.
  const Affine by5{{5, 0, 2, 0, 5, 2}};
  constexpr int kOut = 80;
  std::vector<uint8_t> direct(kOut * kOut), through(kOut * kOut);
  maskface::WarpToImage(base, by5, kOut, kOut, 1, false, direct.data());
  const auto source = pyramid.For(by5);
  maskface::WarpToImage(source.image, source.out_to_src, kOut, kOut, 1, false, through.data());
  int worst = 0;
  for (int i = 0; i < kOut * kOut; ++i) worst = std::max(worst, std::abs(direct[i] - through[i]));
  Check(worst <= 2, "gradient warped by 1/5 through the pyramid = direct warp: max diff " + std::to_string(worst));

  // A one-pixel checkerboard: direct sampling at 5u + 2 hits pure black or white (aliasing); the
  // pyramid's 2x2 means are grey.
  const std::vector<uint8_t> checker = Checkerboard(kSide, kSide, 1);
  ImageView checker_view = base;
  checker_view.data = checker.data();
  maskface::ImagePyramid checker_pyramid(checker_view);
  maskface::WarpToImage(checker_view, by5, kOut, kOut, 1, false, direct.data());
  const auto checker_source = checker_pyramid.For(by5);
  maskface::WarpToImage(checker_source.image, checker_source.out_to_src, kOut, kOut, 1, false, through.data());
  int pyramid_off = 0;
  double direct_off = 0;
  for (int i = 0; i < kOut * kOut; ++i) {
    pyramid_off = std::max(pyramid_off, std::abs(through[i] - 128));
    direct_off += std::abs(direct[i] - 128.0) / (kOut * kOut);
  }
  Check(pyramid_off <= 10 && direct_off > 100, "checkerboard warped by 1/5: pyramid within " + std::to_string(pyramid_off) +
                                                   " of grey 128, direct sampling off by " + Format("%.1f", direct_off) + " on average");
}

}  // namespace

// BlazeFace's anchors fire in clusters: a cluster becomes one face, the score-weighted mean of its
// boxes and keypoints, scored as its best member.
void TestBlendFaces() {
  using maskface::KeypointFace;
  auto make = [](float x1, float y1, float x2, float y2, float score, float point) {
    KeypointFace f;
    f.box = FaceBox{x1, y1, x2, y2, score};
    for (float& k : f.keypoints) k = point;
    return f;
  };
  // Two overlapping (IoU 0.68) detections of one face, one far away, one below the threshold.
  const std::vector<KeypointFace> candidates = {make(0, 0, 10, 10, 0.6f, 2), make(1, 1, 11, 11, 0.9f, 4),
                                                make(50, 50, 60, 60, 0.7f, 9), make(2, 2, 12, 12, 0.1f, 100)};
  const auto faces = maskface::BlendFaces(candidates, 0.5f, 0.3f);
  Check(faces.size() == 2, "BlendFaces: two faces from four candidates");
  if (faces.size() == 2) {
    const KeypointFace& a = faces[0];
    // Weights 0.9 and 0.6: x1 = (0.9 * 1 + 0.6 * 0) / 1.5 = 0.6; keypoints (0.9 * 4 + 0.6 * 2) / 1.5 = 3.2.
    Check(Near(a.box.x1, 0.6, 1e-5) && Near(a.box.x2, 10.6, 1e-5) && Near(a.keypoints[7], 3.2, 1e-5),
          "BlendFaces: box and keypoints are score-weighted means");
    Check(Near(a.box.score, 0.9, 1e-7), "BlendFaces: the blend keeps the best score, and comes first");
    Check(Near(faces[1].box.x1, 50, 1e-7) && Near(faces[1].keypoints[0], 9, 1e-7), "BlendFaces: a lone face is kept as it is");
  }
  Check(maskface::BlendFaces(candidates, 0.95f, 0.3f).empty(), "BlendFaces: nothing above the threshold, nothing out");
  const auto zero = maskface::BlendFaces({make(0, 0, 10, 10, 0.0f, 1), make(1, 1, 11, 11, 0.0f, 2)}, 0.0f, 0.3f);
  Check(zero.size() == 1 && zero[0].box.x2 == 10 && std::isfinite(zero[0].keypoints[0]),
        "BlendFaces: scores of 0 at min_score 0 give the first face as it is, not a 0/0 blend");
  Check(maskface::BlendFaces({make(0, 0, 10, 10, 0.9f, 0), make(1, 1, 11, 11, 0.8f, 0)}, 0.5f, 0.7f).size() == 2,
        "BlendFaces: IoU below the blend limit stays apart");
  Check(maskface::AreaInside(FaceBox{2, 2, 4, 4, 0}, FaceBox{0, 0, 10, 10, 0}) == 1.0f &&
            Near(maskface::AreaInside(FaceBox{8, 0, 12, 10, 0}, FaceBox{0, 0, 10, 10, 0}), 0.5, 1e-6) &&
            maskface::AreaInside(FaceBox{20, 20, 30, 30, 0}, FaceBox{0, 0, 10, 10, 0}) == 0.0f,
        "AreaInside: all, half, none");
}

// Two inputs the fuzzers found (test/fuzz-corpus/*/crash-*), as regression checks.
void TestFuzzFindings() {
  const float tiny = 1.4e-45f;  // a denormal: the areas underflow to 0
  const float iou = maskface::BoxIoU(FaceBox{0, 0, tiny, tiny, 1}, FaceBox{0, 0, tiny, tiny, 1});
  Check(iou == 0.0f, "BoxIoU of boxes whose areas underflow: 0, not 0/0 = NaN (" + std::to_string(iou) + ")");
  uint8_t pixels[4 * 4 * 3] = {};
  ImageView image;
  image.data = pixels;
  image.width = image.height = 4;
  image.channels = 3;
  std::vector<uint8_t> out(8 * 8 * 3);
  bool refused = false;
  try {
    // Terms of 1e300 and -1e300 in one source position: finite, but its sum overflows or rounds away.
    maskface::WarpToImage(image, Affine{{1e300, 0, -1e300, 0, 1, 0}}, 8, 8, 3, false, out.data());
  } catch (const maskface::Error& e) {
    refused = e.code() == maskface::ErrorCode::kInvalidArgument;
  }
  Check(refused, "a map sending output pixels beyond 2^40 pixels is refused, not sampled with undefined behaviour");
}

int main() {
  std::mt19937 rng(20240612);
  TestSelectFaces();
  TestLetterboxAndCrop();
  TestLandmarks(rng);
  TestPose();
  TestLaplacianVariance();
  TestHalveImage(rng);
  TestPyramid();
  TestBlendFaces();
  TestFuzzFindings();
  std::printf("%s: %d of %d check(s) failed\n", g_failures == 0 ? "PASS" : "FAIL", g_failures, maskface::test::g_checks);
  return g_failures == 0 ? 0 : 1;
}
