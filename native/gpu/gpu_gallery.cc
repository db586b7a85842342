#include "gpu/gpu_gallery.h"

#include <limits>
#include <string>
#include <vector>

#include "core/error.h"

namespace maskface::gpu {

void GpuGallery::Check(int status, const char* call) const {
  ThrowIfFailed(library_, status, kOwner, call);
}

GpuGallery::GpuGallery(const KernelLibrary& library, int device, size_t dim)
    : library_(library), device_(device), dim_(dim) {
  MF_CHECK_ARG(library.loaded, "GPU gallery: libmaskface_cuda.so is not loaded");
  MF_CHECK_ARG(dim >= 1 && dim <= MASKFACE_CUDA_MAX_DIM, "GPU gallery: dim must be 1.." +
                                                             std::to_string(MASKFACE_CUDA_MAX_DIM));
  Check(library_.set_device(device_), "set_device");
  Check(library_.stream_create(&stream_), "stream_create");
  const int status = library_.gallery_create(static_cast<int32_t>(dim), 1024, &gallery_);
  if (status != MASKFACE_CUDA_OK) {
    library_.stream_destroy(stream_);
    Check(status, "gallery_create");
  }
}

GpuGallery::~GpuGallery() {
  // Errors cannot be reported from here; the device memory goes with the context at worst.
  library_.set_device(device_);
  library_.stream_synchronize(stream_);
  library_.gallery_destroy(gallery_);
  library_.stream_destroy(stream_);
}

void GpuGallery::Upload(const uint32_t* rows, size_t count, const float* vectors) {
  std::lock_guard<std::mutex> lock(mutex_);
  Check(library_.set_device(device_), "set_device");
  for (size_t start = 0; start < count;) {
    size_t end = start + 1;
    while (end < count && rows[end] == rows[end - 1] + 1) ++end;
    Check(library_.gallery_upload_rows(gallery_, rows[start], static_cast<int64_t>(end - start), vectors + start * dim_,
                                       MASKFACE_CUDA_F32, stream_),
          "gallery_upload_rows");
    start = end;
  }
}

void GpuGallery::Remove(const uint32_t* rows, size_t count) {
  std::lock_guard<std::mutex> lock(mutex_);
  Check(library_.set_device(device_), "set_device");
  for (size_t start = 0; start < count;) {
    size_t end = start + 1;
    while (end < count && rows[end] == rows[end - 1] + 1) ++end;
    Check(library_.gallery_set_live(gallery_, rows[start], static_cast<int64_t>(end - start), 0, stream_),
          "gallery_set_live");
    start = end;
  }
  Check(library_.stream_synchronize(stream_), "stream_synchronize");
}

void GpuGallery::Search(const float* queries, size_t n_queries, int k, float threshold, int32_t* out_rows,
                        float* out_scores, uint32_t* out_counts) {
  MF_CHECK_ARG(k >= 1 && k <= MASKFACE_CUDA_MAX_TOP_K, "GPU gallery: k must be 1.." + std::to_string(MASKFACE_CUDA_MAX_TOP_K));
  if (n_queries == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  Check(library_.set_device(device_), "set_device");
  MaskfaceCudaTopKParams params{};
  Check(library_.gallery_view(gallery_, &params.gallery), "gallery_view");
  if (params.gallery.n_rows == 0) {
    for (size_t i = 0; i < n_queries * static_cast<size_t>(k); ++i) {
      out_rows[i] = -1;
      out_scores[i] = -std::numeric_limits<float>::infinity();
    }
    for (size_t q = 0; q < n_queries; ++q) out_counts[q] = 0;
    return;
  }
  const size_t slots = n_queries * static_cast<size_t>(k);
  queries_.Reserve(n_queries * dim_ * sizeof(float));
  scores_.Reserve(slots * sizeof(float));
  rows_.Reserve(slots * sizeof(int32_t));
  counts_.Reserve(n_queries * sizeof(uint32_t));
  params.queries = queries_.data();
  params.query_dtype = MASKFACE_CUDA_F32;
  params.query_stride = 0;
  params.n_queries = static_cast<int64_t>(n_queries);
  params.k = k;
  params.threshold = threshold;
  params.path = MASKFACE_CUDA_TOPK_AUTO;
  params.out_scores = static_cast<float*>(scores_.data());
  params.out_rows = static_cast<int32_t*>(rows_.data());
  params.out_counts = static_cast<uint32_t*>(counts_.data());
  size_t workspace = 0;
  Check(library_.topk_workspace_size(&params, &workspace), "topk_workspace_size");
  // Up to a few hundred MiB for big batches: sized exactly.
  workspace_.Reserve(workspace, /*headroom=*/false);
  params.workspace = workspace_.data();
  params.workspace_bytes = workspace_.bytes();

  Check(library_.memcpy_async(queries_.data(), queries, n_queries * dim_ * sizeof(float), stream_), "memcpy_async");
  Check(library_.topk(&params, stream_), "topk");
  Check(library_.memcpy_async(out_scores, scores_.data(), slots * sizeof(float), stream_), "memcpy_async");
  Check(library_.memcpy_async(out_rows, rows_.data(), slots * sizeof(int32_t), stream_), "memcpy_async");
  Check(library_.memcpy_async(out_counts, counts_.data(), n_queries * sizeof(uint32_t), stream_), "memcpy_async");
  Check(library_.stream_synchronize(stream_), "stream_synchronize");
}

size_t GpuGallery::DeviceBytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  MaskfaceCudaGalleryView view{};
  library_.gallery_view(gallery_, &view);
  size_t bytes = static_cast<size_t>(view.n_rows) * (static_cast<size_t>(view.row_stride) * 2 + 1);
  for (const DeviceBuffer* buffer : {&queries_, &scores_, &rows_, &counts_, &workspace_}) bytes += buffer->bytes();
  return bytes;
}

}  // namespace maskface::gpu
