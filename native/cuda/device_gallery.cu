#include "cuda/device_gallery.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <limits>

#include "cuda/cuda_check.h"

namespace maskface::cuda {
namespace {

constexpr size_t kStagingBytes = size_t(8) << 20;  // f32 rows per upload round trip
constexpr int kThreads = 256;

// Makes `device` current for a scope and restores the caller's device after.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    MF_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) MF_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceScope() { cudaSetDevice(previous_); }

 private:
  int previous_ = 0;
};

__global__ void rows_to_half_kernel(const float* rows, int64_t n_rows, int dim, int row_stride, __half* out) {
  const int64_t total = n_rows * row_stride;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / row_stride;
    const int64_t d = i - row * row_stride;
    out[i] = __float2half_rn(d < dim ? rows[row * dim + d] : 0.0f);
  }
}

}  // namespace

void LaunchRowsToHalf(const float* rows, int64_t n_rows, int dim, int row_stride, void* out, cudaStream_t stream) {
  if (n_rows == 0) return;
  const int64_t blocks = std::min<int64_t>((n_rows * row_stride + kThreads - 1) / kThreads, 8192);
  rows_to_half_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(rows, n_rows, dim, row_stride,
                                                                               static_cast<__half*>(out));
  MF_CUDA_CHECK_LAST("rows_to_half_kernel");
}

DeviceGallery::DeviceGallery(int dim, int64_t capacity_rows) {
  MF_CHECK_ARG(dim >= 1 && dim <= MASKFACE_CUDA_MAX_DIM, "gallery: dim must be in [1, 4096]");
  MF_CHECK_ARG(capacity_rows >= 0 && capacity_rows <= std::numeric_limits<int32_t>::max(),
               "gallery: capacity must be in [0, 2^31 - 1] rows");
  MF_CUDA_CHECK(cudaGetDevice(&device_));
  dim_ = dim;
  row_stride_ = (dim + 7) / 8 * 8;
  if (capacity_rows > 0) Grow(capacity_rows, nullptr);
}

DeviceGallery::~DeviceGallery() {
  // No throwing here: a failing free (a dead context) leaves nothing else to do.
  int previous = 0;
  cudaGetDevice(&previous);
  cudaSetDevice(device_);
  cudaFree(data_);
  cudaFree(live_);
  cudaFree(staging_);
  cudaSetDevice(previous);
}

void DeviceGallery::Grow(int64_t min_rows, cudaStream_t stream) {
  const int64_t limit = std::numeric_limits<int32_t>::max();
  int64_t capacity = std::max<int64_t>(min_rows, std::min<int64_t>(limit, capacity_ + capacity_ / 2));
  capacity = std::max<int64_t>(capacity, 1024);
  capacity = std::min(capacity, limit);
  const size_t row_bytes = static_cast<size_t>(row_stride_) * sizeof(__half);
  void* data = nullptr;
  uint8_t* live = nullptr;
  MF_CUDA_CHECK(cudaMalloc(&data, static_cast<size_t>(capacity) * row_bytes));
  if (cudaMalloc(reinterpret_cast<void**>(&live), static_cast<size_t>(capacity)) != cudaSuccess) {
    cudaGetLastError();
    cudaFree(data);
    throw CudaError(cudaErrorMemoryAllocation, "gallery: cudaMalloc of the live flags");
  }
  try {
    // Zeros: the padding columns stay zero forever, and unwritten rows are dead.
    MF_CUDA_CHECK(cudaMemsetAsync(data, 0, static_cast<size_t>(capacity) * row_bytes, stream));
    MF_CUDA_CHECK(cudaMemsetAsync(live, 0, static_cast<size_t>(capacity), stream));
    if (rows_ > 0) {
      MF_CUDA_CHECK(cudaMemcpyAsync(data, data_, static_cast<size_t>(rows_) * row_bytes, cudaMemcpyDeviceToDevice, stream));
      MF_CUDA_CHECK(cudaMemcpyAsync(live, live_, static_cast<size_t>(rows_), cudaMemcpyDeviceToDevice, stream));
    }
    MF_CUDA_CHECK(cudaStreamSynchronize(stream));
  } catch (...) {
    cudaFree(data);
    cudaFree(live);
    throw;
  }
  cudaFree(data_);
  cudaFree(live_);
  data_ = data;
  live_ = live;
  capacity_ = capacity;
}

void DeviceGallery::UploadRows(int64_t first_row, int64_t n_rows, const void* host_rows, MaskfaceCudaDtype dtype,
                               cudaStream_t stream) {
  MF_CHECK_ARG(first_row >= 0 && n_rows >= 0, "gallery upload: first_row and n_rows must be >= 0");
  MF_CHECK_ARG(first_row <= std::numeric_limits<int32_t>::max() - n_rows,
               "gallery upload: rows past 2^31 - 1 (int32 row indices)");
  MF_CHECK_ARG(dtype == MASKFACE_CUDA_F32 || dtype == MASKFACE_CUDA_F16, "gallery upload: dtype must be f32 or f16");
  if (n_rows == 0) return;
  MF_CHECK_ARG(host_rows != nullptr, "gallery upload: host_rows is null");
  DeviceScope scope(device_);
  if (first_row + n_rows > capacity_) Grow(first_row + n_rows, stream);

  const size_t row_bytes = static_cast<size_t>(row_stride_) * sizeof(__half);
  char* target = static_cast<char*>(data_) + static_cast<size_t>(first_row) * row_bytes;
  if (dtype == MASKFACE_CUDA_F16) {
    // Dense host rows into padded device rows; the padding is not touched (it stays zero).
    MF_CUDA_CHECK(cudaMemcpy2DAsync(target, row_bytes, host_rows, dim_ * sizeof(__half), dim_ * sizeof(__half),
                                    static_cast<size_t>(n_rows), cudaMemcpyHostToDevice, stream));
  } else {
    if (staging_ == nullptr) {
      staging_rows_ = std::max<int64_t>(1, static_cast<int64_t>(kStagingBytes / (dim_ * sizeof(float))));
      MF_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&staging_), static_cast<size_t>(staging_rows_) * dim_ * sizeof(float)));
    }
    const float* source = static_cast<const float*>(host_rows);
    for (int64_t done = 0; done < n_rows; done += staging_rows_) {
      const int64_t count = std::min(staging_rows_, n_rows - done);
      MF_CUDA_CHECK(cudaMemcpyAsync(staging_, source + done * dim_, static_cast<size_t>(count) * dim_ * sizeof(float),
                                    cudaMemcpyHostToDevice, stream));
      LaunchRowsToHalf(staging_, count, dim_, row_stride_, target + static_cast<size_t>(done) * row_bytes, stream);
      // The staging buffer is reused by the next round.
      MF_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
  }
  MF_CUDA_CHECK(cudaMemsetAsync(live_ + first_row, 1, static_cast<size_t>(n_rows), stream));
  MF_CUDA_CHECK(cudaStreamSynchronize(stream));
  rows_ = std::max(rows_, first_row + n_rows);
}

void DeviceGallery::SetLive(int64_t first_row, int64_t n_rows, bool live, cudaStream_t stream) {
  MF_CHECK_ARG(first_row >= 0 && n_rows >= 0 && first_row <= rows_ - n_rows,
               "gallery set_live: rows must lie in [0, rows())");
  if (n_rows == 0) return;
  DeviceScope scope(device_);
  MF_CUDA_CHECK(cudaMemsetAsync(live_ + first_row, live ? 1 : 0, static_cast<size_t>(n_rows), stream));
}

GalleryView DeviceGallery::View() const {
  GalleryView view;
  view.rows = data_;
  view.live = live_;
  view.n_rows = rows_;
  view.dim = dim_;
  view.row_stride = row_stride_;
  return view;
}

}  // namespace maskface::cuda
