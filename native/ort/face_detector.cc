#include "ort/face_detector.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace maskface::ort {
namespace {

// A crop (no side longer than this) with a first-look face this tall or wide relative to it is
// a close-up, checked again with a border. 0.3: LFW and RMFRD crops (faces of 35-60% of the
// side) are, group photos are not. Larger pictures are photos, looked at again only when
// nothing is found: a second look costs a detector run (3 ms for UltraFace-320, 9 ms for
// BlazeFace-256 here), a third of the whole pipeline for a portrait.
constexpr float kCloseUpShare = 0.3f;
constexpr int kCropSide = 640;
// A first-look face with this much of its area inside a second-look face is the same face, seen in part.
constexpr float kInside = 0.6f;

}  // namespace

std::unique_ptr<FaceDetector> FaceDetector::Create(const uint8_t* detector, size_t detector_size, const uint8_t* landmarks,
                                                   size_t landmarks_size, int intra_op_threads) {
  std::unique_ptr<FaceDetector> result(new FaceDetector());
  result->detector_ = TensorModel::Create(detector, detector_size, intra_op_threads, {"the face detector", 4, {}});
  result->landmarks_ = TensorModel::Create(landmarks, landmarks_size, intra_op_threads, {"the landmark network", 4, {"output"}});
  const auto& in = result->detector_->input_shape();
  const auto& names = result->detector_->output_names();
  const auto& sizes = result->detector_->output_sizes();
  auto index = [&](const char* name) {
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return static_cast<int>(i);
    }
    return -1;
  };
  int* out = result->outputs_;
  if ((out[0] = index("scores")) >= 0 && (out[1] = index("boxes")) >= 0) {
    if (in[0] != 1 || in[1] != 3 || sizes[out[0]] % 2 != 0 || sizes[out[1]] != sizes[out[0]] * 2) {
      throw Error(ErrorCode::kModelLoad, "the face detector (UltraFace outputs) must take [1,3,H,W] and give scores [1,A,2] and boxes [1,A,4]");
    }
    result->input_height_ = static_cast<int>(in[2]);
    result->input_width_ = static_cast<int>(in[3]);
  } else if ((out[0] = index("Identity:0")) >= 0 && (out[1] = index("Identity_1:0")) >= 0 &&
             (out[2] = index("Identity_2:0")) >= 0 && (out[3] = index("Identity_3:0")) >= 0) {
    if (in[0] != 1 || in[1] != in[2] || in[3] != 3 || sizes[out[0]] != 16 * 16 * 2 || sizes[out[1]] != 8 * 8 * 6 ||
        sizes[out[2]] != sizes[out[0]] * 16 || sizes[out[3]] != sizes[out[1]] * 16) {
      throw Error(ErrorCode::kModelLoad, "the face detector (BlazeFace outputs) must take [1,S,S,3] and give 16x16x2 and 8x8x6 anchors of 16 values");
    }
    result->blazeface_ = true;
    result->input_height_ = result->input_width_ = static_cast<int>(in[1]);
  } else {
    throw Error(ErrorCode::kModelLoad,
                "the face detector's outputs are neither UltraFace's (scores, boxes) nor BlazeFace's (Identity:0 .. Identity_3:0)");
  }
  const auto& lin = result->landmarks_->input_shape();
  if (lin[0] != 1 || lin[1] != 1 || lin[2] != lin[3] || result->landmarks_->output_sizes()[0] != 136) {
    throw Error(ErrorCode::kModelLoad, "the landmark network must take a square grey crop [1,1,S,S] and give [1,136]");
  }
  result->landmark_size_ = static_cast<int>(lin[2]);
  return result;
}

std::vector<KeypointFace> FaceDetector::UltraFaceCandidates(const std::vector<std::vector<float>>& outputs, float min_score) const {
  const std::vector<float>& scores = outputs[outputs_[0]];
  const std::vector<float>& boxes = outputs[outputs_[1]];
  std::vector<KeypointFace> candidates;
  for (size_t a = 0; a < scores.size() / 2; ++a) {
    if (!(scores[2 * a + 1] >= min_score)) continue;
    KeypointFace face;
    face.box = FaceBox{boxes[4 * a] * input_width_, boxes[4 * a + 1] * input_height_, boxes[4 * a + 2] * input_width_,
                       boxes[4 * a + 3] * input_height_, scores[2 * a + 1]};
    candidates.push_back(face);
  }
  return candidates;
}

std::vector<KeypointFace> FaceDetector::BlazeFaceCandidates(const std::vector<std::vector<float>>& outputs, float min_score) const {
  // MediaPipe's face detection IoU for blending overlapping anchors.
  constexpr float kBlendIoU = 0.3f;
  const float size = static_cast<float>(input_width_);
  std::vector<KeypointFace> candidates;
  const struct {
    int scores, boxes, cells, anchors;
  } layers[2] = {{outputs_[0], outputs_[2], 16, 2}, {outputs_[1], outputs_[3], 8, 6}};
  for (const auto& layer : layers) {
    const std::vector<float>& logits = outputs[layer.scores];
    const std::vector<float>& values = outputs[layer.boxes];
    for (int cy = 0; cy < layer.cells; ++cy) {
      for (int cx = 0; cx < layer.cells; ++cx) {
        for (int a = 0; a < layer.anchors; ++a) {
          const size_t i = (static_cast<size_t>(cy) * layer.cells + cx) * layer.anchors + a;
          const float score = 1.0f / (1.0f + std::exp(-logits[i]));
          if (!(score >= min_score)) continue;
          // Anchor centres in input pixels; offsets are input pixels too.
          const float ax = (cx + 0.5f) * size / layer.cells;
          const float ay = (cy + 0.5f) * size / layer.cells;
          const float* v = values.data() + i * 16;
          KeypointFace face;
          face.box = FaceBox{ax + v[0] - v[2] / 2, ay + v[1] - v[3] / 2, ax + v[0] + v[2] / 2, ay + v[1] + v[3] / 2, score};
          // Points are positions (edge coordinates of the input, as the box): centres are 0.5 less.
          for (int k = 0; k < 6; ++k) {
            face.keypoints[2 * k] = ax + v[4 + 2 * k] - 0.5f;
            face.keypoints[2 * k + 1] = ay + v[5 + 2 * k] - 0.5f;
          }
          candidates.push_back(face);
        }
      }
    }
  }
  return BlendFaces(candidates, min_score, kBlendIoU);
}

std::vector<KeypointFace> FaceDetector::Candidates(ImagePyramid& photo, double pad, const DetectOptions& options) const {
  const ImageView image = photo.base();
  const Affine frame_to_image = LetterboxMap(image.width, image.height, input_width_, input_height_, pad);
  std::vector<float> input(detector_->input_size());
  const auto source = photo.For(frame_to_image);
  if (blazeface_) {
    // NHWC, x / 127.5 - 1.
    std::vector<uint8_t> pixels(input.size());
    WarpToImage(source.image, source.out_to_src, input_width_, input_height_, 3, false, pixels.data());
    for (size_t i = 0; i < pixels.size(); ++i) input[i] = pixels[i] / 127.5f - 1.0f;
  } else {
    TensorSpec spec;
    spec.width = input_width_;
    spec.height = input_height_;
    spec.channels = 3;
    for (int c = 0; c < 3; ++c) {
      spec.mean[c] = 127.0f;
      spec.std[c] = 128.0f;
    }
    WarpToTensor(source.image, source.out_to_src, spec, input.data());
  }
  std::vector<std::vector<float>> outputs;
  detector_->Run(input.data(), &outputs);
  std::vector<KeypointFace> found =
      blazeface_ ? BlazeFaceCandidates(outputs, options.min_score) : UltraFaceCandidates(outputs, options.min_score);

  // Frame pixels -> image pixels: box corners are edges (centre = edge - 0.5), keypoints centres.
  for (KeypointFace& face : found) {
    double x1, y1, x2, y2;
    MapPoint(frame_to_image, face.box.x1 - 0.5, face.box.y1 - 0.5, &x1, &y1);
    MapPoint(frame_to_image, face.box.x2 - 0.5, face.box.y2 - 0.5, &x2, &y2);
    face.box = FaceBox{static_cast<float>(x1 + 0.5), static_cast<float>(y1 + 0.5), static_cast<float>(x2 + 0.5),
                       static_cast<float>(y2 + 0.5), face.box.score};
    for (int k = 0; k < 6; ++k) {
      double x, y;
      MapPoint(frame_to_image, face.keypoints[2 * k], face.keypoints[2 * k + 1], &x, &y);
      face.keypoints[2 * k] = static_cast<float>(x);
      face.keypoints[2 * k + 1] = static_cast<float>(y);
    }
  }
  if (!blazeface_) {
    std::vector<FaceBox> boxes;
    for (const KeypointFace& f : found) boxes.push_back(f.box);
    boxes = SelectFaces(boxes, options.min_score, options.nms_iou, 0);
    found.clear();
    for (const FaceBox& b : boxes) {
      KeypointFace face;
      face.box = b;
      found.push_back(face);
    }
  }
  found.erase(std::remove_if(found.begin(), found.end(),
                             [&](const KeypointFace& f) {
                               const FaceBox& b = f.box;
                               return std::min(b.x2 - b.x1, b.y2 - b.y1) < options.min_face_size ||
                                      // entirely outside the photo (in the added border)
                                      b.x2 <= 0 || b.y2 <= 0 || b.x1 >= image.width || b.y1 >= image.height;
                             }),
              found.end());
  return found;
}

void FaceDetector::Landmarks(ImagePyramid& photo, const FaceBox& box, bool mirror, float* points68) const {
  const FaceBox square = SquareAround(box);
  const int size = landmark_size_;
  const Affine crop_to_image = CropMap(square, size, mirror);
  TensorSpec spec;
  spec.width = spec.height = size;
  spec.channels = 1;
  spec.mean[0] = 0.0f;
  spec.std[0] = 256.0f;
  std::vector<float> input(landmarks_->input_size());
  const auto source = photo.For(crop_to_image);
  WarpToTensor(source.image, source.out_to_src, spec, input.data());
  std::vector<std::vector<float>> outputs;
  landmarks_->Run(input.data(), &outputs);
  const std::vector<float>& out = outputs[0];
  // Fractions of the crop (edges) -> crop pixel centres -> image pixel centres.
  for (int i = 0; i < 68; ++i) {
    const int from = mirror ? kMirror68[i] : i;
    double x, y;
    MapPoint(crop_to_image, out[2 * from] * size - 0.5, out[2 * from + 1] * size - 0.5, &x, &y);
    points68[2 * i] = static_cast<float>(x);
    points68[2 * i + 1] = static_cast<float>(y);
  }
}

std::vector<DetectedFace> FaceDetector::Detect(ImagePyramid& photo, const DetectOptions& options) const {
  const ImageView image = photo.base();
  struct Found {
    KeypointFace face;
    bool padded;
  };
  std::vector<Found> found;
  for (const KeypointFace& face : Candidates(photo, 0.0, options)) found.push_back({face, false});
  // A face that fills much of the picture may reach past its edges (a close-up crop): the
  // detector then sees part of it, or nothing. Such pictures get a second look with an empty
  // border around them; its faces replace the first look's faces that lie inside them.
  const bool crop = std::max(image.width, image.height) <= kCropSide;
  const bool close_up = found.empty() || (crop && std::any_of(found.begin(), found.end(), [&](const Found& f) {
                                            const FaceBox& b = f.face.box;
                                            return b.y2 - b.y1 >= kCloseUpShare * image.height || b.x2 - b.x1 >= kCloseUpShare * image.width;
                                          }));
  if (options.retry_pad > 0 && close_up) {
    std::vector<Found> merged;
    const std::vector<KeypointFace> padded = Candidates(photo, options.retry_pad, options);
    for (const KeypointFace& face : padded) merged.push_back({face, true});
    for (const Found& f : found) {
      if (std::none_of(padded.begin(), padded.end(), [&](const KeypointFace& p) { return AreaInside(f.face.box, p.box) > kInside; })) {
        merged.push_back(f);
      }
    }
    std::stable_sort(merged.begin(), merged.end(), [](const Found& a, const Found& b) { return a.face.box.score > b.face.box.score; });
    found = std::move(merged);
  }
  if (options.max_faces != 0 && found.size() > options.max_faces) found.resize(options.max_faces);

  std::vector<DetectedFace> faces(found.size());
  for (size_t i = 0; i < found.size(); ++i) {
    const FaceBox& box = found[i].face.box;
    DetectedFace& face = faces[i];
    face.padded = found[i].padded;
    face.has_keypoints = blazeface_;
    std::copy(found[i].face.keypoints, found[i].face.keypoints + 12, face.keypoints);
    Landmarks(photo, box, false, face.landmarks68);
    if (options.mirror_landmarks) {
      float mirrored[136];
      Landmarks(photo, box, true, mirrored);
      face.landmark_disagreement = LandmarkDisagreement(face.landmarks68, mirrored);
      for (int j = 0; j < 136; ++j) face.landmarks68[j] = (face.landmarks68[j] + mirrored[j]) / 2;
    }
    FivePointsFrom68(face.landmarks68, face.landmarks5);
    face.pose = PoseFromFivePoints(face.landmarks5);
    face.box = box;
    face.box.x1 = std::max(0.0f, face.box.x1);
    face.box.y1 = std::max(0.0f, face.box.y1);
    face.box.x2 = std::min(static_cast<float>(image.width), face.box.x2);
    face.box.y2 = std::min(static_cast<float>(image.height), face.box.y2);
    // Sharpness of the face as the recognizer will see it (112x112 on the ArcFace template).
    Affine to_template, crop_to_image;
    if (EstimateSimilarity(face.landmarks5, kArcFaceTemplate112, 5, &to_template) && InvertAffine(to_template, &crop_to_image)) {
      std::vector<uint8_t> grey(112 * 112);
      const auto source = photo.For(crop_to_image);
      WarpToImage(source.image, source.out_to_src, 112, 112, 1, false, grey.data());
      face.sharpness = LaplacianVariance(grey.data(), 112, 112);
    }
  }
  return faces;
}

}  // namespace maskface::ort
