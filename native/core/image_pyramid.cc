#include "core/image_pyramid.h"

#include <cmath>

#include "core/error.h"

namespace maskface {

double AffineScale(const Affine& a) { return std::sqrt(std::fabs(a.m[0] * a.m[4] - a.m[1] * a.m[3])); }

std::vector<uint8_t> HalveImage(const ImageView& image, int* out_width, int* out_height) {
  MF_CHECK_ARG(image.data != nullptr && image.width >= 2 && image.height >= 2, "HalveImage: image smaller than 2x2");
  const int channels = image.channels;
  const size_t stride = image.row_stride != 0 ? image.row_stride : static_cast<size_t>(image.width) * channels;
  const int width = image.width / 2;
  const int height = image.height / 2;
  std::vector<uint8_t> out(static_cast<size_t>(width) * height * channels);
  for (int y = 0; y < height; ++y) {
    const uint8_t* top = image.data + static_cast<size_t>(2 * y) * stride;
    const uint8_t* bottom = top + stride;
    uint8_t* row = out.data() + static_cast<size_t>(y) * width * channels;
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        const int i = 2 * x * channels + c;
        row[x * channels + c] = static_cast<uint8_t>((top[i] + top[i + channels] + bottom[i] + bottom[i + channels] + 2) >> 2);
      }
    }
  }
  *out_width = width;
  *out_height = height;
  return out;
}

ImagePyramid::ImagePyramid(const ImageView& base) {
  MF_CHECK_ARG(base.data != nullptr && base.width > 0 && base.height > 0, "ImagePyramid: empty image");
  // Room for every level a 2^15-pixel side can have: views into levels_ stay valid as levels are added.
  levels_.reserve(17);
  levels_.push_back(Level{{}, base});
}

const ImageView& ImagePyramid::LevelAt(int level) {
  MF_CHECK_ARG(level < static_cast<int>(levels_.capacity()), "ImagePyramid: too many levels");
  while (static_cast<int>(levels_.size()) <= level) {
    const ImageView& finer = levels_.back().view;
    Level next;
    int width = 0, height = 0;
    next.pixels = HalveImage(finer, &width, &height);
    next.view = finer;
    next.view.data = next.pixels.data();
    next.view.width = width;
    next.view.height = height;
    next.view.row_stride = static_cast<size_t>(width) * finer.channels;
    levels_.push_back(std::move(next));
  }
  return levels_[level].view;
}

ImagePyramid::Source ImagePyramid::For(const Affine& out_to_src) {
  // Halve while a level's pixel stays no larger than an output step, and the level stays at
  // least 2x2 (a bilinear neighbourhood).
  const double scale = AffineScale(out_to_src);
  int level = 0;
  const ImageView base = levels_.front().view;
  while (scale >= std::ldexp(2.0, level) && (base.width >> (level + 1)) >= 2 && (base.height >> (level + 1)) >= 2) ++level;
  if (level == 0) return Source{base, out_to_src};
  // A level-L pixel u covers base pixels [u 2^L, (u + 1) 2^L): base x = (u + 0.5) 2^L - 0.5.
  const double factor = std::ldexp(1.0, -level);
  const double* m = out_to_src.m;
  Affine map{{m[0] * factor, m[1] * factor, (m[2] + 0.5) * factor - 0.5, m[3] * factor, m[4] * factor,
              (m[5] + 0.5) * factor - 0.5}};
  return Source{LevelAt(level), map};
}

}  // namespace maskface
