// Host launchers of the kernels in native/cuda, in C++ (namespace maskface::cuda). Each one
// validates its params on the host (throwing maskface::Error with kInvalidArgument), launches on
// the given stream and checks the launch (throwing CudaError). The params structs are the C ABI's
// (maskface_cuda.h), so the C wrappers in c_api.cc pass them through unchanged.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>

#include "cuda/maskface_cuda.h"

namespace maskface::cuda {

using AlignNormalizeParams = MaskfaceCudaAlignParams;
using AttentionMaskParams = MaskfaceCudaAttentionParams;
using CosineTopKParams = MaskfaceCudaTopKParams;
using GalleryView = MaskfaceCudaGalleryView;

void LaunchAlignNormalize(const AlignNormalizeParams& params, cudaStream_t stream);
void LaunchAttentionMask(const AttentionMaskParams& params, cudaStream_t stream);

size_t CosineTopKWorkspaceBytes(const CosineTopKParams& params);
void LaunchCosineTopK(const CosineTopKParams& params, cudaStream_t stream);

// Gallery upload helper (device_gallery.cu): converts n_rows dense f32 rows on the device into
// padded half rows (row_stride halfs, zeros past dim).
void LaunchRowsToHalf(const float* rows, int64_t n_rows, int dim, int row_stride, void* out_rows,
                      cudaStream_t stream);

}  // namespace maskface::cuda
