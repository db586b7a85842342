#include "gpu/gpu_preprocess.h"

#include <cstring>
#include <string>

#include "core/error.h"

namespace maskface::gpu {

void GpuPreprocessor::Check(int status, const char* call) const {
  ThrowIfFailed(library_, status, kOwner, call);
}

GpuPreprocessor::GpuPreprocessor(const KernelLibrary& library, int device) : library_(library), device_(device) {
  MF_CHECK_ARG(library.loaded, "GPU preprocessing: libmaskface_cuda.so is not loaded");
  Check(library_.set_device(device_), "set_device");
  Check(library_.stream_create(&stream_), "stream_create");
}

GpuPreprocessor::~GpuPreprocessor() {
  library_.set_device(device_);
  library_.stream_synchronize(stream_);
  library_.stream_destroy(stream_);
}

const float* GpuPreprocessor::Prepare(const std::vector<ImageView>& images, const std::vector<Affine>& out_to_src,
                                      const TensorSpec& spec) {
  MF_CHECK_ARG(images.size() == out_to_src.size(), "GPU preprocessing: one matrix per image");
  Check(library_.set_device(device_), "set_device");
  // Pixels are packed row by row (source row padding is dropped), each image 16-byte aligned.
  std::vector<size_t> offsets(images.size());
  size_t total = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    offsets[i] = total;
    total += (static_cast<size_t>(images[i].width) * images[i].channels * images[i].height + 15) / 16 * 16;
  }
  pixels_.Reserve(total);
  const size_t tensor_floats = images.size() * spec.channels * spec.height * spec.width;
  tensor_.Reserve(tensor_floats * sizeof(float));

  std::vector<MaskfaceCudaImage> descriptors(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const ImageView& image = images[i];
    const size_t row = static_cast<size_t>(image.width) * image.channels;
    const size_t stride = image.row_stride != 0 ? image.row_stride : row;
    auto* destination = static_cast<uint8_t*>(pixels_.data()) + offsets[i];
    if (stride == row) {
      Check(library_.memcpy_async(destination, image.data, row * image.height, stream_), "memcpy_async");
    } else {
      for (int y = 0; y < image.height; ++y) {
        Check(library_.memcpy_async(destination + y * row, image.data + y * stride, row, stream_), "memcpy_async");
      }
    }
    MaskfaceCudaImage& d = descriptors[i];
    d.data = destination;
    d.width = image.width;
    d.height = image.height;
    d.channels = image.channels;
    d.bgr = image.bgr ? 1 : 0;
    d.row_stride = static_cast<int64_t>(row);
    std::memcpy(d.out_to_src, out_to_src[i].m, sizeof d.out_to_src);
  }
  MaskfaceCudaAlignParams params{};
  params.images = descriptors.data();
  params.n_images = static_cast<int32_t>(images.size());
  params.out_width = spec.width;
  params.out_height = spec.height;
  params.out_channels = spec.channels;
  params.out_bgr = spec.bgr ? 1 : 0;
  for (int c = 0; c < 3; ++c) {
    params.mean[c] = spec.mean[c];
    params.std[c] = spec.std[c];
  }
  params.out_dtype = MASKFACE_CUDA_F32;
  params.out = tensor_.data();
  Check(library_.align_normalize(&params, stream_), "align_normalize");
  // Host pixels must outlive the (pageable, so already staged) copies, and ONNX Runtime reads the
  // tensor from its own stream: both want the work finished here.
  Check(library_.stream_synchronize(stream_), "stream_synchronize");
  return static_cast<const float*>(tensor_.data());
}

void GpuPreprocessor::Download(const float* device_tensor, float* host, size_t count) {
  Check(library_.set_device(device_), "set_device");
  Check(library_.memcpy_async(host, device_tensor, count * sizeof(float), stream_), "memcpy_async");
  Check(library_.stream_synchronize(stream_), "stream_synchronize");
}

}  // namespace maskface::gpu
