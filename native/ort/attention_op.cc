#include "ort/attention_op.h"

#include <onnxruntime_cxx_api.h>

#include <new>
#include <string>
#include <vector>

#include "core/attention_mask.h"
#include "core/error.h"
#include "gpu/kernel_library.h"
#include "ort/custom_op_status.h"
#include "ort/quantized_prelu_op.h"
#include "ort/shape_text.h"

namespace maskface::ort {
namespace {


// features [N,C,H,W] and logits [N,3,H,W], the same N, H and W.
bool ShapesMatch(const std::vector<int64_t>& features, const std::vector<int64_t>& logits) {
  return features.size() == 4 && logits.size() == 4 && logits[1] == kRegionClasses && features[0] == logits[0] &&
         features[2] == logits[2] && features[3] == logits[3];
}

// One node's kernel. `cuda` is null on the CPU execution provider; under the CUDA execution
// provider the tensors are device memory and the work goes to libmaskface_cuda.so on ONNX
// Runtime's compute stream.
class AttentionMaskKernel {
 public:
  // `node` names the op and its node in error messages.
  AttentionMaskKernel(AttentionGating gating, std::string node, const gpu::KernelLibrary* cuda)
      : gating_(gating), node_(std::move(node)), cuda_(cuda) {}

  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) const {
    try {
      Ort::KernelContext context(raw_context);
      const Ort::ConstValue features = context.GetInput(0);
      const Ort::ConstValue logits = context.GetInput(1);
      const std::vector<int64_t> features_shape = features.GetTensorTypeAndShapeInfo().GetShape();
      const std::vector<int64_t> logits_shape = logits.GetTensorTypeAndShapeInfo().GetShape();
      if (!ShapesMatch(features_shape, logits_shape)) {
        return InvalidArgumentStatus(node_ + ": expected features [N,C,H,W] and logits [N,3,H,W] with the same N, H and W; got features " +
                    ShapeText(features_shape) + " and logits " + ShapeText(logits_shape));
      }
      Ort::UnownedValue masked = context.GetOutput(0, features_shape);
      Ort::UnownedValue probabilities = context.GetOutput(1, logits_shape);
      if (cuda_ != nullptr) {
        MaskfaceCudaAttentionParams params{};
        params.features = features.GetTensorData<float>();
        params.logits = logits.GetTensorData<float>();
        params.out_features = masked.GetTensorMutableData<float>();
        params.out_probabilities = probabilities.GetTensorMutableData<float>();
        params.batch = features_shape[0];
        params.channels = features_shape[1];
        params.height = features_shape[2];
        params.width = features_shape[3];
        params.gating = gating_ == AttentionGating::kFace ? MASKFACE_CUDA_GATING_FACE : MASKFACE_CUDA_GATING_NOT_MASK;
        params.dtype = MASKFACE_CUDA_F32;
        if (cuda_->attention_mask(&params, context.GetGPUComputeStream()) != MASKFACE_CUDA_OK) {
          return InvalidArgumentStatus(node_ + ": " + cuda_->last_error());
        }
        return nullptr;
      }
      AttentionMaskShape shape;
      shape.batch = static_cast<size_t>(features_shape[0]);
      shape.channels = static_cast<size_t>(features_shape[1]);
      shape.height = static_cast<size_t>(features_shape[2]);
      shape.width = static_cast<size_t>(features_shape[3]);
      ApplyAttentionMask(features.GetTensorData<float>(), logits.GetTensorData<float>(), shape, gating_,
                         masked.GetTensorMutableData<float>(), probabilities.GetTensorMutableData<float>());
      return nullptr;
    } catch (const Ort::Exception& e) {
      return InvalidArgumentStatus(node_ + ": " + e.what());
    } catch (const std::exception& e) {
      return InvalidArgumentStatus(node_ + ": " + e.what());
    }
  }

 private:
  AttentionGating gating_;
  std::string node_;
  const gpu::KernelLibrary* cuda_;
};

// The op for one execution provider: the CPU (cuda == null) or CUDA.
struct AttentionMaskOp : Ort::CustomOpBase<AttentionMaskOp, AttentionMaskKernel, /*WithStatus=*/true> {
  explicit AttentionMaskOp(const gpu::KernelLibrary* cuda_kernels) : cuda(cuda_kernels) {
    // CustomOpBase sets only the status-returning callbacks: the others must read as absent.
    OrtCustomOp::CreateKernel = nullptr;
    OrtCustomOp::KernelCompute = nullptr;
  }
  const gpu::KernelLibrary* cuda;

  // Called once per node when a session is created: a bad attribute fails the model load.
  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* raw_info, void** kernel) const {
    try {
      const Ort::ConstKernelInfo info(raw_info);
      const std::string node = CustomOpNodeLabel(info, kCustomOpDomain, kAttentionMaskOp);
      std::string gating;
      try {
        gating = info.GetAttribute<std::string>("gating");
      } catch (const Ort::Exception& e) {
        return InvalidArgumentStatus(node + ": needs the string attribute gating ('face' or 'not_mask'): " + e.what());
      }
      if (gating != "face" && gating != "not_mask") {
        return InvalidArgumentStatus(node + ": gating is '" + gating + "'; expected 'face' or 'not_mask'");
      }
      *kernel = new AttentionMaskKernel(gating == "face" ? AttentionGating::kFace : AttentionGating::kNotMask, node, cuda);
      return nullptr;
    } catch (const Ort::Exception& e) {
      return InvalidArgumentStatus(std::string(kCustomOpDomain) + "::" + kAttentionMaskOp + ": " + e.what());
    } catch (const std::bad_alloc&) {
      return Ort::Status("out of memory creating an AttentionMask kernel", ORT_FAIL).release();
    }
  }

  const char* GetName() const { return kAttentionMaskOp; }
  const char* GetExecutionProviderType() const { return cuda ? "CUDAExecutionProvider" : "CPUExecutionProvider"; }
  size_t GetInputTypeCount() const { return 2; }
  ONNXTensorElementDataType GetInputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  size_t GetOutputTypeCount() const { return 2; }
  ONNXTensorElementDataType GetOutputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

}  // namespace

std::mutex& CustomDomainRegistrationMutex() {
  static std::mutex mutex;
  return mutex;
}

void AddMaskfaceOps(Ort::SessionOptions& options, const gpu::KernelLibrary* cuda_kernels) {
  // Leaked on purpose, like the Ort::Env (ort_env.h): sessions released at exit from cleanup hooks
  // or finalisers still point to the domains and ops. The kernel library is loaded once per
  // process, so there are at most these two variants.
  static OrtCustomOpDomain* const cpu_domain = [] {
    Ort::CustomOpDomain created(kCustomOpDomain);
    created.Add(new AttentionMaskOp(nullptr));
    AddQLinearPreluOp(created);
    return created.release();
  }();
  if (cuda_kernels == nullptr || !cuda_kernels->loaded) {
    options.Add(cpu_domain);
    return;
  }
  static OrtCustomOpDomain* const cuda_domain = [cuda_kernels] {
    Ort::CustomOpDomain created(kCustomOpDomain);
    created.Add(new AttentionMaskOp(nullptr));
    created.Add(new AttentionMaskOp(cuda_kernels));
    AddQLinearPreluOp(created);
    return created.release();
  }();
  options.Add(cuda_domain);
}

}  // namespace maskface::ort
