#include "ort/attention_op.h"

#include <onnxruntime_cxx_api.h>

#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "core/attention_mask.h"
#include "core/error.h"

namespace maskface::ort {
namespace {

// The kernel callbacks return statuses: no C++ exception crosses into ONNX Runtime.
OrtStatus* Fail(const std::string& message) { return Ort::Status(message.c_str(), ORT_INVALID_ARGUMENT).release(); }

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "]";
}

// features [N,C,H,W] and logits [N,3,H,W], the same N, H and W.
bool ShapesMatch(const std::vector<int64_t>& features, const std::vector<int64_t>& logits) {
  return features.size() == 4 && logits.size() == 4 && logits[1] == kRegionClasses && features[0] == logits[0] &&
         features[2] == logits[2] && features[3] == logits[3];
}

class AttentionMaskKernel {
 public:
  // `node` names the op and its node in error messages.
  AttentionMaskKernel(AttentionGating gating, std::string node) : gating_(gating), node_(std::move(node)) {}

  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) const {
    try {
      Ort::KernelContext context(raw_context);
      const Ort::ConstValue features = context.GetInput(0);
      const Ort::ConstValue logits = context.GetInput(1);
      const std::vector<int64_t> features_shape = features.GetTensorTypeAndShapeInfo().GetShape();
      const std::vector<int64_t> logits_shape = logits.GetTensorTypeAndShapeInfo().GetShape();
      if (!ShapesMatch(features_shape, logits_shape)) {
        return Fail(node_ + ": expected features [N,C,H,W] and logits [N,3,H,W] with the same N, H and W; got features " +
                    ShapeText(features_shape) + " and logits " + ShapeText(logits_shape));
      }
      Ort::UnownedValue masked = context.GetOutput(0, features_shape);
      Ort::UnownedValue probabilities = context.GetOutput(1, logits_shape);
      AttentionMaskShape shape;
      shape.batch = static_cast<size_t>(features_shape[0]);
      shape.channels = static_cast<size_t>(features_shape[1]);
      shape.height = static_cast<size_t>(features_shape[2]);
      shape.width = static_cast<size_t>(features_shape[3]);
      ApplyAttentionMask(features.GetTensorData<float>(), logits.GetTensorData<float>(), shape, gating_,
                         masked.GetTensorMutableData<float>(), probabilities.GetTensorMutableData<float>());
      return nullptr;
    } catch (const Ort::Exception& e) {
      return Fail(node_ + ": " + e.what());
    } catch (const std::exception& e) {
      return Fail(node_ + ": " + e.what());
    }
  }

 private:
  AttentionGating gating_;
  std::string node_;
};

struct AttentionMaskOp : Ort::CustomOpBase<AttentionMaskOp, AttentionMaskKernel, /*WithStatus=*/true> {
  // Called once per node when a session is created: a bad attribute fails the model load.
  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* raw_info, void** kernel) const {
    try {
      const Ort::ConstKernelInfo info(raw_info);
      const std::string node_name = info.GetNodeName();
      const std::string node = std::string(kCustomOpDomain) + "::" + kAttentionMaskOp +
                               (node_name.empty() ? "" : " node '" + node_name + "'");
      std::string gating;
      try {
        gating = info.GetAttribute<std::string>("gating");
      } catch (const Ort::Exception& e) {
        return Fail(node + ": needs the string attribute gating ('face' or 'not_mask'): " + e.what());
      }
      if (gating != "face" && gating != "not_mask") {
        return Fail(node + ": gating is '" + gating + "'; expected 'face' or 'not_mask'");
      }
      *kernel = new AttentionMaskKernel(gating == "face" ? AttentionGating::kFace : AttentionGating::kNotMask, node);
      return nullptr;
    } catch (const Ort::Exception& e) {
      return Fail(std::string(kCustomOpDomain) + "::" + kAttentionMaskOp + ": " + e.what());
    } catch (const std::bad_alloc&) {
      return Ort::Status("out of memory creating an AttentionMask kernel", ORT_FAIL).release();
    }
  }

  const char* GetName() const { return kAttentionMaskOp; }
  const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
  size_t GetInputTypeCount() const { return 2; }
  ONNXTensorElementDataType GetInputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  size_t GetOutputTypeCount() const { return 2; }
  ONNXTensorElementDataType GetOutputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

}  // namespace

void AddMaskfaceOps(Ort::SessionOptions& options) {
  // A static op starts zeroed, so the OrtCustomOp callbacks CustomOpBase leaves unset (the
  // non-status CreateKernel and KernelCompute) are null; it is trivially destructible. The domain
  // is leaked on purpose, like the Ort::Env (ort_env.h): sessions released at exit from cleanup
  // hooks or finalisers still point to it.
  static_assert(std::is_trivially_destructible_v<AttentionMaskOp>);
  static AttentionMaskOp attention_mask;
  static OrtCustomOpDomain* const domain = [] {
    Ort::CustomOpDomain created(kCustomOpDomain);
    created.Add(&attention_mask);
    return created.release();
  }();
  options.Add(domain);
}

void AddCudaAttentionMaskKernel(CudaAttentionMaskLaunch launch, CudaComputeStreamGetter compute_stream) {
  MF_CHECK_ARG(launch != nullptr && compute_stream != nullptr, "AddCudaAttentionMaskKernel: null function");
  throw Error(ErrorCode::kInternal,
              "maskface::AttentionMask has no CUDAExecutionProvider kernel yet: only the CPU kernel is registered");
}

}  // namespace maskface::ort
