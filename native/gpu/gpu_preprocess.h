// Alignment + normalisation on the GPU for a session whose input stays on the device: the images
// are uploaded, warped by libmaskface_cuda.so's kernel a into one NCHW float32 tensor in device
// memory, and that tensor is handed to ONNX Runtime through IO binding (ort/session.h,
// RunDeviceInput). Host-side C++ over the loaded library's C ABI; no CUDA headers.
#pragma once
#include <cstddef>
#include <mutex>
#include <vector>

#include "core/align.h"
#include "gpu/kernel_library.h"

namespace maskface::gpu {

class GpuPreprocessor {
 public:
  // A stream on `device`. Throws maskface::Error.
  GpuPreprocessor(const KernelLibrary& library, int device);
  ~GpuPreprocessor();
  GpuPreprocessor(const GpuPreprocessor&) = delete;
  GpuPreprocessor& operator=(const GpuPreprocessor&) = delete;

  // Warps images[i] by out_to_src[i] into the tensor the network wants (spec), the maths of
  // core/align.h WarpToTensor. Returns the device tensor (images.size() x spec.channels x
  // spec.height x spec.width floats), complete when this returns (the stream is synchronised, so
  // ONNX Runtime may read it from its own stream) and valid until the next call. Callers hold
  // the lock from Lock() across this call and their use of the tensor.
  const float* Prepare(const std::vector<ImageView>& images, const std::vector<Affine>& out_to_src,
                       const TensorSpec& spec);
  // Copies `count` floats of a device tensor to the host (for checks).
  void Download(const float* device_tensor, float* host, size_t count);
  std::unique_lock<std::mutex> Lock() { return std::unique_lock<std::mutex>(mutex_); }
  int device() const { return device_; }

 private:
  void Check(int status, const char* call) const;

  static constexpr const char* kOwner = "GPU preprocessing";
  const KernelLibrary& library_;
  const int device_;
  std::mutex mutex_;
  void* stream_ = nullptr;
  DeviceBuffer pixels_{library_, kOwner};  // all images' pixels, packed
  DeviceBuffer tensor_{library_, kOwner};
};

}  // namespace maskface::gpu
