#include "ort/face_detector.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace maskface::ort {
namespace {

// A first-look face this tall or wide relative to the photo marks a close-up (checked again
// with a border). 0.3: LFW and RMFRD crops (faces of 35-60% of the side) are, group photos and
// portraits with background mostly are not.
constexpr float kCloseUpShare = 0.3f;
// A first-look face with this much of its area inside a second-look face is the same face, seen in part.
constexpr float kInside = 0.6f;

}  // namespace

std::unique_ptr<FaceDetector> FaceDetector::Create(const uint8_t* detector, size_t detector_size, const uint8_t* landmarks,
                                                   size_t landmarks_size, int intra_op_threads) {
  std::unique_ptr<FaceDetector> result(new FaceDetector());
  result->detector_ = TensorModel::Create(detector, detector_size, intra_op_threads, {"the face detector", 4, {"scores", "boxes"}});
  result->landmarks_ = TensorModel::Create(landmarks, landmarks_size, intra_op_threads, {"the landmark network", 4, {"output"}});
  const auto& in = result->detector_->input_shape();
  const auto& out = result->detector_->output_sizes();
  if (in[0] != 1 || in[1] != 3 || out[0] % 2 != 0 || out[1] != out[0] * 2) {
    throw Error(ErrorCode::kModelLoad, "the face detector must take [1,3,H,W] and give scores [1,A,2] and boxes [1,A,4]");
  }
  const auto& lin = result->landmarks_->input_shape();
  if (lin[0] != 1 || lin[1] != 1 || lin[2] != lin[3] || result->landmarks_->output_sizes()[0] != 136) {
    throw Error(ErrorCode::kModelLoad, "the landmark network must take a square grey crop [1,1,S,S] and give [1,136]");
  }
  result->input_height_ = static_cast<int>(in[2]);
  result->input_width_ = static_cast<int>(in[3]);
  result->landmark_size_ = static_cast<int>(lin[2]);
  return result;
}

std::vector<FaceBox> FaceDetector::Candidates(ImagePyramid& photo, double pad, const DetectOptions& options) const {
  const ImageView image = photo.base();
  const Affine frame_to_image = LetterboxMap(image.width, image.height, input_width_, input_height_, pad);
  TensorSpec spec;
  spec.width = input_width_;
  spec.height = input_height_;
  spec.channels = 3;
  for (int c = 0; c < 3; ++c) {
    spec.mean[c] = 127.0f;
    spec.std[c] = 128.0f;
  }
  std::vector<float> input(detector_->input_size());
  const auto source = photo.For(frame_to_image);
  WarpToTensor(source.image, source.out_to_src, spec, input.data());
  std::vector<std::vector<float>> outputs;
  detector_->Run(input.data(), &outputs);
  const std::vector<float>& scores = outputs[0];
  const std::vector<float>& boxes = outputs[1];

  const size_t anchors = scores.size() / 2;
  std::vector<FaceBox> candidates;
  for (size_t a = 0; a < anchors; ++a) {
    if (!(scores[2 * a + 1] >= options.min_score)) continue;
    // Fractions of the frame (edges) -> frame pixel centres -> image pixel centres -> edges.
    double x1, y1, x2, y2;
    MapPoint(frame_to_image, boxes[4 * a] * input_width_ - 0.5, boxes[4 * a + 1] * input_height_ - 0.5, &x1, &y1);
    MapPoint(frame_to_image, boxes[4 * a + 2] * input_width_ - 0.5, boxes[4 * a + 3] * input_height_ - 0.5, &x2, &y2);
    candidates.push_back(FaceBox{static_cast<float>(x1 + 0.5), static_cast<float>(y1 + 0.5), static_cast<float>(x2 + 0.5),
                                 static_cast<float>(y2 + 0.5), scores[2 * a + 1]});
  }
  std::vector<FaceBox> faces = SelectFaces(candidates, options.min_score, options.nms_iou, 0);
  faces.erase(std::remove_if(faces.begin(), faces.end(),
                             [&](const FaceBox& b) {
                               return std::min(b.x2 - b.x1, b.y2 - b.y1) < options.min_face_size ||
                                      // entirely outside the photo (in the added border)
                                      b.x2 <= 0 || b.y2 <= 0 || b.x1 >= image.width || b.y1 >= image.height;
                             }),
              faces.end());
  return faces;
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
    FaceBox box;
    bool padded;
  };
  std::vector<Found> found;
  for (const FaceBox& box : Candidates(photo, 0.0, options)) found.push_back({box, false});
  // A face that fills much of the picture may reach past its edges (a close-up crop): the
  // detector then sees part of it, or nothing. Such photos get a second look with an empty
  // border around them; its faces replace the first look's faces that lie inside them.
  const bool close_up = std::none_of(found.begin(), found.end(), [&](const Found& f) {
    return f.box.y2 - f.box.y1 < kCloseUpShare * image.height && f.box.x2 - f.box.x1 < kCloseUpShare * image.width;
  });
  if (options.retry_pad > 0 && close_up) {
    std::vector<Found> merged;
    const std::vector<FaceBox> padded = Candidates(photo, options.retry_pad, options);
    for (const FaceBox& box : padded) merged.push_back({box, true});
    for (const Found& f : found) {
      if (std::none_of(padded.begin(), padded.end(), [&](const FaceBox& p) { return AreaInside(f.box, p) > kInside; })) merged.push_back(f);
    }
    std::stable_sort(merged.begin(), merged.end(), [](const Found& a, const Found& b) { return a.box.score > b.box.score; });
    found = std::move(merged);
  }
  if (options.max_faces != 0 && found.size() > options.max_faces) found.resize(options.max_faces);

  std::vector<DetectedFace> faces(found.size());
  std::vector<FaceBox> boxes(found.size());
  for (size_t i = 0; i < found.size(); ++i) boxes[i] = found[i].box;
  for (size_t i = 0; i < boxes.size(); ++i) {
    DetectedFace& face = faces[i];
    face.padded = found[i].padded;
    Landmarks(photo, boxes[i], false, face.landmarks68);
    if (options.mirror_landmarks) {
      float mirrored[136];
      Landmarks(photo, boxes[i], true, mirrored);
      face.landmark_disagreement = LandmarkDisagreement(face.landmarks68, mirrored);
      for (int j = 0; j < 136; ++j) face.landmarks68[j] = (face.landmarks68[j] + mirrored[j]) / 2;
    }
    FivePointsFrom68(face.landmarks68, face.landmarks5);
    face.pose = PoseFromFivePoints(face.landmarks5);
    face.box = boxes[i];
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
