// Face alignment: similarity transform onto a landmark template, bilinear warp, fused with
// normalisation and HWC -> NCHW in one pass.
//
// Pixel convention (the same as OpenCV's warpAffine and insightface's templates): integer
// coordinates are pixel centres; an output pixel (x, y) samples the source at M * (x, y, 1)
// where M maps output coordinates to source coordinates. Bilinear interpolation; source pixels
// outside the image read as 0 (zero border), before normalisation.
#pragma once
#include <cstddef>
#include <cstdint>

namespace maskface {

// ArcFace 5-point template for a 112x112 crop: left eye, right eye, nose tip, left and right
// mouth corners, as (x, y) pairs.
extern const double kArcFaceTemplate112[10];

// A 2x3 affine map: (x', y') = (m[0] x + m[1] y + m[2], m[3] x + m[4] y + m[5]).
struct Affine {
  double m[6];
};

// Least-squares similarity transform (rotation, uniform scale, translation; no reflection) that
// maps src[i] onto dst[i] (Umeyama 1991). Points are n (x, y) pairs, n >= 2. Returns false when
// the source points are degenerate (all equal, or not finite).
bool EstimateSimilarity(const double* src, const double* dst, int n, Affine* out);

// Inverse of an invertible affine map. Returns false when the map is singular.
bool InvertAffine(const Affine& a, Affine* out);

// A borrowed 8-bit image, interleaved (HWC). channels: 1 (grey), 3 or 4 (the 4th is ignored).
struct ImageView {
  const uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  int channels = 3;
  bool bgr = false;       // channel order of the colour channels
  size_t row_stride = 0;  // bytes per row; 0 means width * channels
};

// What the network wants: output size, channels (1 = grey, 3 = colour), colour order, and
// per-channel normalisation value' = (value - mean[c]) / std[c] applied to 0..255 values.
struct TensorSpec {
  int width = 112;
  int height = 112;
  int channels = 3;
  bool bgr = false;
  float mean[3] = {127.5f, 127.5f, 127.5f};
  float std[3] = {127.5f, 127.5f, 127.5f};
};

// Warps, normalises and writes one planar CHW tensor (spec.channels x height x width floats).
// out_to_src maps output pixel coordinates to source pixel coordinates. Grey sources are
// replicated to colour outputs; colour sources become grey outputs with BT.601 luma weights.
void WarpToTensor(const ImageView& image, const Affine& out_to_src, const TensorSpec& spec, float* out);

// The map that samples the mirror image of what out_to_src samples: output pixel (x, y) reads
// where out_to_src reads for (width - 1 - x, y). Flip test-time augmentation warps with it.
Affine MirrorOutput(const Affine& out_to_src, int width);

// The same sampling into an interleaved 8-bit image (rounded to nearest), out_channels 1 or 3.
void WarpToImage(const ImageView& image, const Affine& out_to_src, int out_width, int out_height,
                 int out_channels, bool out_bgr, uint8_t* out);

// The map that stretches a whole image onto an out_width x out_height frame (a plain bilinear
// resize, used for crops that are already aligned), with pixel centres aligned as OpenCV's resize
// does: src = (dst + 0.5) * scale - 0.5.
Affine ResizeMap(int src_width, int src_height, int out_width, int out_height);

}  // namespace maskface
