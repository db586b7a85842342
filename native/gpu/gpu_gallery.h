// A device copy of a gallery, for exact top-k on the GPU: fp16 rows in libmaskface_cuda.so's
// device gallery, searched with maskface_cuda_topk. Host-side C++ over the loaded library's C ABI
// (kernel_library.h), compiled into the addon; no CUDA headers. The CPU GalleryStore stays the
// record of rows and liveness; this mirror receives the same writes and removals.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "gpu/kernel_library.h"

namespace maskface::gpu {

class GpuGallery {
 public:
  // Creates the device gallery and a stream on `device`. Throws maskface::Error.
  GpuGallery(const KernelLibrary& library, int device, size_t dim);
  ~GpuGallery();
  GpuGallery(const GpuGallery&) = delete;
  GpuGallery& operator=(const GpuGallery&) = delete;

  // Writes unit vectors (count x dim floats) at `rows` and marks them live; consecutive rows go up
  // in one upload. Rows past the end extend the gallery; rows skipped on the way stay dead.
  void Upload(const uint32_t* rows, size_t count, const float* vectors);
  // Marks rows dead (each < the number of rows written).
  void Remove(const uint32_t* rows, size_t count);
  // Exact top-k of n_queries unit vectors; outputs as core/gallery_store.h's TopKOutput: rows -1
  // and scores -inf past counts[q]. k <= MASKFACE_CUDA_MAX_TOP_K.
  void Search(const float* queries, size_t n_queries, int k, float threshold, int32_t* out_rows, float* out_scores,
              uint32_t* out_counts);
  // Device bytes held: rows, live flags and search buffers.
  size_t DeviceBytes() const;

 private:
  void Check(int status, const char* call) const;

  static constexpr const char* kOwner = "GPU gallery";
  const KernelLibrary& library_;
  const int device_;
  const size_t dim_;
  mutable std::mutex mutex_;  // one stream and one set of buffers: calls run one at a time
  MaskfaceCudaGallery* gallery_ = nullptr;
  void* stream_ = nullptr;
  DeviceBuffer queries_{library_, kOwner}, scores_{library_, kOwner}, rows_{library_, kOwner},
      counts_{library_, kOwner}, workspace_{library_, kOwner};
};

}  // namespace maskface::gpu
