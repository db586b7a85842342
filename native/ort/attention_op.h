// maskface::AttentionMask (since version 1): the ONNX Runtime custom op of models exported with
// fused attention (training/maskface_train/export.py --fused-attention; contract in
// docs/models.md). One node does an MFSA module's attention masking (DESIGN.md §1):
//   inputs   features float [N,C,H,W], logits float [N,3,H,W] (face, mask, background)
//   attribute gating: "face" (A = P[face]) or "not_mask" (A = 1 - P[mask])
//   outputs  features * A [N,C,H,W], P = softmax(logits) [N,3,H,W]
// The CPU kernel is maskface::ApplyAttentionMask (native/core/attention_mask.h).
#pragma once
#include <mutex>

namespace maskface::gpu {
struct KernelLibrary;
}
namespace Ort {
struct SessionOptions;
}

namespace maskface::ort {

inline constexpr char kCustomOpDomain[] = "maskface";
inline constexpr char kAttentionMaskOp[] = "AttentionMask";

// Adds the maskface op domain to `options`. Every session gets it, so fused and plain models
// load alike. AttentionMask always has its CPU kernel (maskface::ApplyAttentionMask); with
// `cuda_kernels` (libmaskface_cuda.so, loaded) it also has a CUDAExecutionProvider kernel that
// runs maskface_cuda_attention_mask on ONNX Runtime's compute stream. The domains and ops are
// created once per variant and never destroyed: each session keeps pointers to them.
void AddMaskfaceOps(Ort::SessionOptions& options, const gpu::KernelLibrary* cuda_kernels);

// Held while a session with the maskface domain is created. ONNX Runtime registers a custom
// domain's version range in ONNX's process-wide schema registry with a check-then-add that is
// not thread-safe: two sessions created at once on different threads (worker threads loading
// models together) can both add it, and the second fails with "the domain is already exist".
std::mutex& CustomDomainRegistrationMutex();

}  // namespace maskface::ort
