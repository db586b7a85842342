// Halved copies of an image (2x2 box averages), so that a warp that shrinks a lot samples a level
// close to its output scale instead of skipping source pixels (bilinear sampling alone aliases
// once a step exceeds two source pixels: a 4000-pixel photo squeezed into a 320-pixel detector
// input, or a 600-pixel face into a 112-pixel crop).
#pragma once
#include <cstdint>
#include <vector>

#include "core/align.h"

namespace maskface {

class ImagePyramid {
 public:
  // Borrows `base` (kept alive and unchanged by the caller); levels are built on first use.
  // Not thread-safe: one pyramid per photo and thread.
  explicit ImagePyramid(const ImageView& base);

  // A warp from `out_to_src` (output pixels to base pixels), rewritten for the coarsest level
  // whose pixels are still no larger than one output step: the remaining scale is in [1, 2).
  struct Source {
    ImageView image;
    Affine out_to_src;
  };
  Source For(const Affine& out_to_src);

  ImageView base() const { return levels_.front().view; }

 private:
  struct Level {
    std::vector<uint8_t> pixels;  // empty for the base level (borrowed)
    ImageView view;
  };
  const ImageView& LevelAt(int level);
  std::vector<Level> levels_;
};

// The output-step size of an affine map: source pixels per output pixel (sqrt of |det|).
double AffineScale(const Affine& a);

// A 2x2 box average: floor(width / 2) x floor(height / 2), same channels and order; row_stride
// of the result is width * channels. The source must be at least 2x2.
std::vector<uint8_t> HalveImage(const ImageView& image, int* out_width, int* out_height);

}  // namespace maskface
