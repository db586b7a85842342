// The geometry of photo -> faces, without a network: selecting detector candidates (threshold,
// greedy non-maximum suppression), the frames the detector and the landmark network look
// through, the 68-point -> 5-point reduction, and cheap quality measures.
//
// Coordinates follow core/align.h: integer coordinates are pixel centres. Boxes are the
// exception: their corners are pixel edges, so a box (0, 0, width, height) is the whole image.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/align.h"

namespace maskface {

// A face box (corners, pixel edges) and its detector confidence.
struct FaceBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float score = 0;
};

float BoxIoU(const FaceBox& a, const FaceBox& b);

// Share of b's area that lies inside a (0 for an empty b).
float AreaInside(const FaceBox& b, const FaceBox& a);

// Candidates scoring >= min_score with a positive area, most confident first, without any box
// whose IoU with a more confident kept box exceeds max_iou (greedy NMS). Ties in score keep the
// lower index first. max_count 0 keeps all.
std::vector<FaceBox> SelectFaces(const std::vector<FaceBox>& candidates, float min_score, float max_iou, size_t max_count);

// A detection with keypoints (BlazeFace: 6 points, (x, y) pairs in the same frame as the box:
// the eye on the image's left, the other eye, the nose tip, the mouth centre, the ear tragions).
struct KeypointFace {
  FaceBox box;
  float keypoints[12] = {};
};

// MediaPipe's weighted non-maximum suppression: candidates scoring >= min_score, most confident
// first; each one absorbs the remaining candidates whose IoU with it is at least min_iou, and the
// group becomes one face whose box and keypoints are the score-weighted means of the group's and
// whose score is the group's best. Anchored detectors (BlazeFace) fire on many neighbouring
// anchors per face: averaging them steadies the box and points where plain NMS picks one.
std::vector<KeypointFace> BlendFaces(const std::vector<KeypointFace>& candidates, float min_score, float min_iou);

// The output-to-image map that shows a whole image inside a width x height frame, aspect ratio
// kept and centred (letterbox), with an empty border of `pad` times the image's larger side
// added on every side first (a square image with pad 0.4 fills 1 / 1.8 of the frame's height).
// Tight crops with no background need the border before a detector sees a face in them.
Affine LetterboxMap(int image_width, int image_height, int width, int height, double pad);

// Applies an affine map to a point.
void MapPoint(const Affine& a, double x, double y, double* out_x, double* out_y);

// The square a 68-point landmark network looks through: as tall as the box, centred on it.
FaceBox SquareAround(const FaceBox& box);

// The output-to-image map of a size x size crop of `square` (edges), mirrored left-right when
// `mirror` is set.
Affine CropMap(const FaceBox& square, int size, bool mirror);

// iBUG 68-point indices of the mirror image's points: point i of a mirrored face is point
// kMirror68[i] of the face itself.
extern const int kMirror68[68];

// 5 ArcFace points from 68 iBUG points ((x, y) pairs): the centre of each eye (the four eyelid
// points), the nose tip (30) and each mouth corner (the mean of the outer and inner corner).
void FivePointsFrom68(const float* points68, double* points5);

// Mean distance between two 68-point sets, in units of the interocular distance of the first.
double LandmarkDisagreement(const float* a, const float* b);

// Head pose, roughly, from 5 points: roll is the angle of the eye line (degrees, positive
// clockwise in the image); yaw comes from the nose tip's offset from the eyes' midpoint along the
// eye line, relative to the interocular distance (degrees, positive when the face turns to the
// image's left). Good to a few degrees near frontal, a coarse indicator beyond 30.
struct Pose {
  double yaw = 0;
  double roll = 0;
};
Pose PoseFromFivePoints(const double* points5);

// Variance of the 4-neighbour Laplacian over the interior of a grey image: low for blurred or
// upsampled faces. Compare values of crops of one size only.
double LaplacianVariance(const uint8_t* grey, int width, int height);

}  // namespace maskface
