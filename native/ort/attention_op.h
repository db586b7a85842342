// maskface::AttentionMask (since version 1): the ONNX Runtime custom op of models exported with
// fused attention (training/maskface_train/export.py --fused-attention; contract in
// docs/models.md). One node does an MFSA module's attention masking (DESIGN.md §1):
//   inputs   features float [N,C,H,W], logits float [N,3,H,W] (face, mask, background)
//   attribute gating: "face" (A = P[face]) or "not_mask" (A = 1 - P[mask])
//   outputs  features * A [N,C,H,W], P = softmax(logits) [N,3,H,W]
// The CPU kernel is maskface::ApplyAttentionMask (native/core/attention_mask.h).
#pragma once

#include "cuda/maskface_cuda.h"  // plain C declarations only: nothing here links CUDA

struct OrtKernelContext;
namespace Ort {
struct SessionOptions;
}

namespace maskface::ort {

inline constexpr char kCustomOpDomain[] = "maskface";
inline constexpr char kAttentionMaskOp[] = "AttentionMask";

// Adds the maskface op domain (AttentionMask on the CPU execution provider) to `options`. Every
// session gets it, so fused and plain models load alike. The domain and its op are created once
// and never destroyed: each session keeps pointers to them.
void AddMaskfaceOps(Ort::SessionOptions& options);

// Seam for a CUDAExecutionProvider kernel of AttentionMask; none exists yet (nothing here has run
// on a GPU). The change that adds it implements this function: an op like the CPU one whose
// GetExecutionProviderType is "CUDAExecutionProvider", joined to the domain of AddMaskfaceOps
// before the first session; its kernel fills MaskfaceCudaAttentionParams from the ORT tensors
// (device pointers under that provider) and calls `launch` (libmaskface_cuda.so's
// maskface_cuda_attention_mask, found with dlopen) on `compute_stream(context)` (ORT's stream,
// KernelContext_GetGPUComputeStream). Until then it throws maskface::Error(kInternal).
using CudaAttentionMaskLaunch = decltype(&maskface_cuda_attention_mask);
using CudaComputeStreamGetter = void* (*)(OrtKernelContext* context);
void AddCudaAttentionMaskKernel(CudaAttentionMaskLaunch launch, CudaComputeStreamGetter compute_stream);

}  // namespace maskface::ort
