// Photo -> faces: a detector network and a 68-point landmark network (a [1,1,64,64] grey crop /
// 256 -> `output` [1,136], fractions of the crop). Two detector contracts, told apart by their
// outputs:
// - UltraFace: [1,3,H,W] RGB (x - 127) / 128 -> `scores` [1,A,2] and `boxes` [1,A,4], corners as
//   fractions of the input;
// - BlazeFace (MediaPipe's, as converted for Barracuda): [1,S,S,3] RGB x / 127.5 - 1 ->
//   `Identity:0` [1,16*16*2,1] and `Identity_1:0` [1,8*8*6,1] logits, `Identity_2:0` and
//   `Identity_3:0` [1,A,16] offsets from each anchor's centre in input pixels: box centre and
//   size, then 6 keypoints.
// Plain C++: no napi.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/face_geometry.h"
#include "core/image_pyramid.h"
#include "ort/tensor_model.h"

namespace maskface::ort {

struct DetectOptions {
  float min_score = 0.6f;
  float nms_iou = 0.4f;
  size_t max_faces = 0;        // 0: all
  float min_face_size = 0;     // shorter side of the box, in image pixels
  // When nothing is found, look again with this much empty border around the image (a fraction
  // of its larger side): tight crops with no background around the face. 0: no second look.
  float retry_pad = 0.4f;
  // Also run the landmark network on the mirrored crop, and average the two (mirrored back).
  // Twice the landmark cost (about 1 ms a face); steadier points, and their disagreement is a
  // confidence measure.
  bool mirror_landmarks = true;
};

struct DetectedFace {
  FaceBox box;                 // image pixels, corners on pixel edges, clipped to the image
  float landmarks68[136];      // image pixels, (x, y) pairs, pixel centres
  double landmarks5[10];       // ArcFace order: eyes, nose tip, mouth corners
  double landmark_disagreement = -1;  // mirrored vs direct points / interocular; -1 when not measured
  Pose pose;
  double sharpness = 0;        // LaplacianVariance of the 112x112 grey crop on the ArcFace template
  bool padded = false;         // found by the second look, with a border added
  bool has_keypoints = false;  // BlazeFace: its 6 keypoints below
  float keypoints[12] = {};    // image pixels: eyes (image left, right), nose tip, mouth centre, ears
};

class FaceDetector {
 public:
  // Throws Error(kModelLoad) when either model does not have the shapes above.
  static std::unique_ptr<FaceDetector> Create(const uint8_t* detector, size_t detector_size, const uint8_t* landmarks,
                                              size_t landmarks_size, int intra_op_threads);

  // The faces of a photo, most confident first. Thread-safe. Throws Error(kInference).
  std::vector<DetectedFace> Detect(ImagePyramid& photo, const DetectOptions& options) const;

  int input_width() const { return input_width_; }
  int input_height() const { return input_height_; }
  // "ultraface" or "blazeface"
  const char* kind() const { return blazeface_ ? "blazeface" : "ultraface"; }

 private:
  FaceDetector() = default;
  std::vector<KeypointFace> Candidates(ImagePyramid& photo, double pad, const DetectOptions& options) const;
  // The detector's raw faces in frame pixels (edges for boxes, centres for keypoints).
  std::vector<KeypointFace> UltraFaceCandidates(const std::vector<std::vector<float>>& outputs, float min_score) const;
  std::vector<KeypointFace> BlazeFaceCandidates(const std::vector<std::vector<float>>& outputs, float min_score) const;
  void Landmarks(ImagePyramid& photo, const FaceBox& box, bool mirror, float* points68) const;

  std::unique_ptr<TensorModel> detector_;
  std::unique_ptr<TensorModel> landmarks_;
  int input_width_ = 0, input_height_ = 0, landmark_size_ = 0;
  bool blazeface_ = false;
  int outputs_[4] = {};  // indices into the detector's outputs: UltraFace scores, boxes; BlazeFace Identity..Identity_3
};

}  // namespace maskface::ort
