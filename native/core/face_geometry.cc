#include "core/face_geometry.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace maskface {
namespace {

constexpr double kDegrees = 180.0 / 3.14159265358979323846;

float Area(const FaceBox& b) { return std::max(0.0f, b.x2 - b.x1) * std::max(0.0f, b.y2 - b.y1); }

void Mean(const float* points, std::initializer_list<int> ids, double* x, double* y) {
  double sx = 0, sy = 0;
  for (int i : ids) {
    sx += points[2 * i];
    sy += points[2 * i + 1];
  }
  *x = sx / static_cast<double>(ids.size());
  *y = sy / static_cast<double>(ids.size());
}

}  // namespace

const int kMirror68[68] = {
    16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,  // jaw
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17,                    // eyebrows
    27, 28, 29, 30,                                            // nose bridge
    35, 34, 33, 32, 31,                                        // nostrils
    45, 44, 43, 42, 47, 46,                                    // left eye <- right eye
    39, 38, 37, 36, 41, 40,                                    // right eye <- left eye
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,            // outer lips
    64, 63, 62, 61, 60, 67, 66, 65,                            // inner lips
};

float BoxIoU(const FaceBox& a, const FaceBox& b) {
  const float w = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  const float h = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  if (w <= 0 || h <= 0) return 0.0f;
  const float overlap = w * h;
  const float joint = Area(a) + Area(b) - overlap;
  // Boxes of denormal size have areas that underflow to 0: no share to speak of (not 0 / 0).
  return joint > 0.0f ? overlap / joint : 0.0f;
}

float AreaInside(const FaceBox& b, const FaceBox& a) {
  const float w = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  const float h = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  const float area = Area(b);
  if (w <= 0 || h <= 0 || area <= 0) return 0.0f;
  return w * h / area;
}

std::vector<FaceBox> SelectFaces(const std::vector<FaceBox>& candidates, float min_score, float max_iou, size_t max_count) {
  std::vector<size_t> order;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const FaceBox& c = candidates[i];
    if (c.score >= min_score && c.x2 > c.x1 && c.y2 > c.y1 && std::isfinite(c.x1) && std::isfinite(c.y1) &&
        std::isfinite(c.x2) && std::isfinite(c.y2)) {
      order.push_back(i);
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return candidates[a].score > candidates[b].score; });
  std::vector<FaceBox> kept;
  for (size_t i : order) {
    if (max_count != 0 && kept.size() == max_count) break;
    const FaceBox& c = candidates[i];
    if (std::all_of(kept.begin(), kept.end(), [&](const FaceBox& k) { return BoxIoU(k, c) <= max_iou; })) kept.push_back(c);
  }
  return kept;
}

std::vector<KeypointFace> BlendFaces(const std::vector<KeypointFace>& candidates, float min_score, float min_iou) {
  std::vector<KeypointFace> remaining;
  for (const KeypointFace& c : candidates) {
    const FaceBox& b = c.box;
    if (c.box.score >= min_score && b.x2 > b.x1 && b.y2 > b.y1 && std::isfinite(b.x1) && std::isfinite(b.y1) &&
        std::isfinite(b.x2) && std::isfinite(b.y2)) {
      remaining.push_back(c);
    }
  }
  std::stable_sort(remaining.begin(), remaining.end(),
                   [](const KeypointFace& a, const KeypointFace& b) { return a.box.score > b.box.score; });
  std::vector<bool> taken(remaining.size(), false);
  std::vector<KeypointFace> faces;
  for (size_t i = 0; i < remaining.size(); ++i) {
    if (taken[i]) continue;
    const KeypointFace& best = remaining[i];
    double weight = 0, box[4] = {}, points[12] = {};
    for (size_t j = i; j < remaining.size(); ++j) {
      if (taken[j] || (j != i && BoxIoU(best.box, remaining[j].box) < min_iou)) continue;
      taken[j] = true;
      const KeypointFace& c = remaining[j];
      const double w = c.box.score;
      weight += w;
      box[0] += w * c.box.x1;
      box[1] += w * c.box.y1;
      box[2] += w * c.box.x2;
      box[3] += w * c.box.y2;
      for (int k = 0; k < 12; ++k) points[k] += w * c.keypoints[k];
    }
    if (!(weight > 0)) {
      faces.push_back(best);  // scores of 0 (min_score 0): nothing to weigh by, keep the best as it is
      continue;
    }
    KeypointFace face;
    face.box = FaceBox{static_cast<float>(box[0] / weight), static_cast<float>(box[1] / weight), static_cast<float>(box[2] / weight),
                       static_cast<float>(box[3] / weight), best.box.score};
    for (int k = 0; k < 12; ++k) face.keypoints[k] = static_cast<float>(points[k] / weight);
    faces.push_back(face);
  }
  return faces;
}

Affine LetterboxMap(int image_width, int image_height, int width, int height, double pad) {
  MF_CHECK_ARG(image_width > 0 && image_height > 0 && width > 0 && height > 0, "LetterboxMap: sizes must be positive");
  MF_CHECK_ARG(pad >= 0 && std::isfinite(pad), "LetterboxMap: pad must be >= 0");
  const double border = pad * std::max(image_width, image_height);
  const double scale = std::max((image_width + 2 * border) / width, (image_height + 2 * border) / height);
  // Centre on centre: x_image = scale * (x - (width - 1) / 2) + (image_width - 1) / 2.
  return Affine{{scale, 0.0, (image_width - 1) / 2.0 - scale * (width - 1) / 2.0, 0.0, scale,
                 (image_height - 1) / 2.0 - scale * (height - 1) / 2.0}};
}

void MapPoint(const Affine& a, double x, double y, double* out_x, double* out_y) {
  *out_x = a.m[0] * x + a.m[1] * y + a.m[2];
  *out_y = a.m[3] * x + a.m[4] * y + a.m[5];
}

FaceBox SquareAround(const FaceBox& box) {
  const float side = box.y2 - box.y1;
  const float cx = (box.x1 + box.x2) / 2;
  const float cy = (box.y1 + box.y2) / 2;
  return FaceBox{cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, box.score};
}

Affine CropMap(const FaceBox& square, int size, bool mirror) {
  MF_CHECK_ARG(size > 0, "CropMap: size must be positive");
  const double sx = (square.x2 - square.x1) / static_cast<double>(size);
  const double sy = (square.y2 - square.y1) / static_cast<double>(size);
  // Output pixel u covers [x1 + u sx, x1 + (u + 1) sx) in edge coordinates; its centre, in
  // centre coordinates, is x1 + (u + 0.5) sx - 0.5. Mirrored: u -> size - 1 - u.
  if (mirror) return Affine{{-sx, 0.0, square.x1 + (size - 0.5) * sx - 0.5, 0.0, sy, square.y1 + 0.5 * sy - 0.5}};
  return Affine{{sx, 0.0, square.x1 + 0.5 * sx - 0.5, 0.0, sy, square.y1 + 0.5 * sy - 0.5}};
}

void FivePointsFrom68(const float* p, double* out) {
  Mean(p, {37, 38, 40, 41}, &out[0], &out[1]);
  Mean(p, {43, 44, 46, 47}, &out[2], &out[3]);
  out[4] = p[60];
  out[5] = p[61];
  Mean(p, {48, 60}, &out[6], &out[7]);
  Mean(p, {54, 64}, &out[8], &out[9]);
}

double LandmarkDisagreement(const float* a, const float* b) {
  double five[10];
  FivePointsFrom68(a, five);
  const double interocular = std::hypot(five[2] - five[0], five[3] - five[1]);
  double sum = 0;
  for (int i = 0; i < 68; ++i) sum += std::hypot(a[2 * i] - b[2 * i], a[2 * i + 1] - b[2 * i + 1]);
  return interocular > 0 ? sum / 68 / interocular : INFINITY;
}

Pose PoseFromFivePoints(const double* p) {
  const double ex = p[2] - p[0], ey = p[3] - p[1];
  const double interocular = std::hypot(ex, ey);
  Pose pose;
  if (!(interocular > 0)) return pose;
  pose.roll = std::atan2(ey, ex) * kDegrees;
  // Along the eye line, a frontal nose tip sits at the eyes' midpoint; turned by yaw, it moves by
  // about depth * sin(yaw) while the eyes close up by cos(yaw). The nose tip stands out about
  // 0.6 interocular distances in front of the eye plane (a typical adult face).
  const double offset = ((p[4] - (p[0] + p[2]) / 2) * ex + (p[5] - (p[1] + p[3]) / 2) * ey) / (interocular * interocular);
  constexpr double kNoseDepth = 0.6;
  pose.yaw = -std::atan(offset / kNoseDepth) * kDegrees;
  return pose;
}

double LaplacianVariance(const uint8_t* grey, int width, int height) {
  if (width < 3 || height < 3) return 0;
  double sum = 0, sum_sq = 0;
  for (int y = 1; y < height - 1; ++y) {
    const uint8_t* row = grey + static_cast<size_t>(y) * width;
    for (int x = 1; x < width - 1; ++x) {
      const double v = row[x - 1] + row[x + 1] + row[x - width] + row[x + width] - 4.0 * row[x];
      sum += v;
      sum_sq += v * v;
    }
  }
  const double n = static_cast<double>(width - 2) * (height - 2);
  return sum_sq / n - (sum / n) * (sum / n);
}

}  // namespace maskface
