// A gallery of fp16 rows in device memory, owned (RAII) and filled by row ranges: adding or
// overwriting rows uploads only those rows; capacity grows geometrically, copying on the device.
// Rows are stored with a stride padded to a multiple of 8 halfs (16 bytes, so the kernels read
// them with 16-byte loads), zeros in the padding. One live byte per row; rows never written are
// dead. Not thread-safe: the owner serialises calls (as lib/api/gallery.ts does for the CPU store).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/launchers.h"

namespace maskface::cuda {

class DeviceGallery {
 public:
  // On the current device.
  DeviceGallery(int dim, int64_t capacity_rows);
  ~DeviceGallery();
  DeviceGallery(const DeviceGallery&) = delete;
  DeviceGallery& operator=(const DeviceGallery&) = delete;

  // Writes host rows [first_row, first_row + n_rows) (dense, dim values each, f32 or f16) and
  // marks them live. Synchronises the stream before returning, so host_rows may be reused.
  void UploadRows(int64_t first_row, int64_t n_rows, const void* host_rows, MaskfaceCudaDtype dtype,
                  cudaStream_t stream);
  // Sets the live flags of rows [first_row, first_row + n_rows); rows < rows().
  void SetLive(int64_t first_row, int64_t n_rows, bool live, cudaStream_t stream);

  GalleryView View() const;
  int64_t rows() const { return rows_; }
  int64_t capacity() const { return capacity_; }

 private:
  void Grow(int64_t min_rows, cudaStream_t stream);

  int device_ = 0;
  int dim_ = 0;
  int row_stride_ = 0;   // halfs
  int64_t capacity_ = 0;
  int64_t rows_ = 0;     // high-water mark
  void* data_ = nullptr;     // capacity_ x row_stride_ halfs
  uint8_t* live_ = nullptr;  // capacity_ bytes
  float* staging_ = nullptr; // f32 uploads: rows are converted on the device
  int64_t staging_rows_ = 0;
};

}  // namespace maskface::cuda
