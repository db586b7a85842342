#include "ort/quantized_prelu_op.h"

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cmath>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "core/quantized_prelu.h"
#include "ort/attention_op.h"
#include "ort/custom_op_status.h"
#include "ort/shape_text.h"

namespace maskface::ort {
namespace {

// The scalar inputs and the slopes, read from the node's constant inputs 1-5; empty `error` when
// they are usable.
struct PreluInputs {
  QuantizedPreluParams params;
  std::vector<float> slopes;
  std::string error;
};

PreluInputs ReadPreluInputs(const Ort::ConstValue (&values)[5]) {
  PreluInputs read;
  auto scalar = [&](int index, const char* name, auto* out) {
    using T = std::remove_pointer_t<decltype(out)>;
    if (values[index].GetTensorTypeAndShapeInfo().GetElementCount() != 1) {
      read.error = std::string(name) + " must be a scalar";
      return;
    }
    *out = values[index].GetTensorData<T>()[0];
  };
  scalar(0, "X_scale", &read.params.input_scale);
  scalar(1, "X_zero_point", &read.params.input_zero_point);
  scalar(3, "Y_scale", &read.params.output_scale);
  scalar(4, "Y_zero_point", &read.params.output_zero_point);
  if (!read.error.empty()) return read;
  for (float scale : {read.params.input_scale, read.params.output_scale}) {
    if (!std::isfinite(scale) || scale <= 0.0f) {
      read.error = "scales must be finite and positive, got " + std::to_string(scale);
      return read;
    }
  }
  const size_t count = values[2].GetTensorTypeAndShapeInfo().GetElementCount();
  const float* slopes = values[2].GetTensorData<float>();
  read.slopes.assign(slopes, slopes + count);
  if (!std::all_of(read.slopes.begin(), read.slopes.end(), [](float s) { return std::isfinite(s); })) {
    read.error = "slopes must be finite";
  }
  return read;
}

// Work split for ONNX Runtime's thread pool: tasks of about kTaskBytes each, so that a small
// tensor runs on the calling thread and a large one in a few tasks per thread.
constexpr size_t kTaskBytes = 64 * 1024;

struct ParallelWork {
  const QuantizedPrelu* prelu;
  const uint8_t* x;
  uint8_t* y;
  size_t unit_bytes;     // one row (NCHW: H*W values of a channel) or one pixel (channels last)
  size_t units;
  size_t units_per_task;
  bool channels_last;
};

void RunTask(void* data, size_t task) {
  const auto& work = *static_cast<const ParallelWork*>(data);
  const size_t first = task * work.units_per_task;
  const size_t count = std::min(work.units_per_task, work.units - first);
  if (work.channels_last) {
    work.prelu->ApplyPixels(work.x, first, count, work.y);
  } else {
    work.prelu->ApplyRows(work.x, work.unit_bytes, first, count, work.y);
  }
}

class QLinearPreluKernel {
 public:
  QLinearPreluKernel(std::string node, bool channels_last, QuantizedPrelu prelu)
      : node_(std::move(node)), channels_last_(channels_last), prelu_(std::move(prelu)) {}

  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) const {
    try {
      Ort::KernelContext context(raw_context);
      const Ort::ConstValue x = context.GetInput(0);
      const std::vector<int64_t> shape = x.GetTensorTypeAndShapeInfo().GetShape();
      if (shape.size() < 2) {
        return InvalidArgumentStatus(node_ + ": X must be " + (channels_last_ ? "[N,...,C]" : "[N,C,...]") + "; got " +
                                     ShapeText(shape));
      }
      const size_t channels = static_cast<size_t>(channels_last_ ? shape.back() : shape[1]);
      if (channels != prelu_.channels()) {
        return InvalidArgumentStatus(node_ + ": X has " + std::to_string(channels) + " channels; slope has " +
                                     std::to_string(prelu_.channels()) + " values");
      }
      size_t elements = 1;
      for (int64_t d : shape) elements *= static_cast<size_t>(d);
      Ort::UnownedValue y = context.GetOutput(0, shape);
      if (elements == 0) return nullptr;
      ParallelWork work{&prelu_, x.GetTensorData<uint8_t>(), y.GetTensorMutableData<uint8_t>(), 0, 0, 0, channels_last_};
      work.unit_bytes = channels_last_ ? channels : elements / (static_cast<size_t>(shape[0]) * channels);
      work.units = elements / work.unit_bytes;
      work.units_per_task = std::max<size_t>(1, kTaskBytes / work.unit_bytes);
      const size_t tasks = (work.units + work.units_per_task - 1) / work.units_per_task;
      if (tasks == 1) {
        RunTask(&work, 0);
      } else {
        context.ParallelFor(RunTask, tasks, 0, &work);
      }
      return nullptr;
    } catch (const Ort::Exception& e) {
      return InvalidArgumentStatus(node_ + ": " + e.what());
    } catch (const std::bad_alloc&) {
      return Ort::Status((node_ + ": out of memory").c_str(), ORT_FAIL).release();
    }
  }

 private:
  std::string node_;
  bool channels_last_;
  QuantizedPrelu prelu_;
};

struct QLinearPreluOp : Ort::CustomOpBase<QLinearPreluOp, QLinearPreluKernel, /*WithStatus=*/true> {
  QLinearPreluOp() {
    OrtCustomOp::CreateKernel = nullptr;
    OrtCustomOp::KernelCompute = nullptr;
  }

  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* raw_info, void** kernel) const {
    try {
      const Ort::ConstKernelInfo info(raw_info);
      const std::string node = CustomOpNodeLabel(info, kCustomOpDomain, kQLinearPreluOp);
      if (info.GetInputCount() != 6) {
        return InvalidArgumentStatus(node + ": expected 6 inputs, got " + std::to_string(info.GetInputCount()));
      }
      int64_t channels_last = 0;
      try {
        channels_last = info.GetAttribute<int64_t>("channels_last");
      } catch (const Ort::Exception&) {
        channels_last = 0;  // optional: NCHW
      }
      if (channels_last != 0 && channels_last != 1) return InvalidArgumentStatus(node + ": channels_last must be 0 or 1");
      // The scales, zero points and slopes are initializers (quantize.py writes them so): the
      // per-channel multipliers are made once, here, and a bad value fails the model load.
      Ort::ConstValue constants[5];
      for (size_t i = 0; i < 5; ++i) {
        int is_constant = 0;
        constants[i] = info.GetTensorConstantInput(i + 1, &is_constant);
        if (is_constant == 0) {
          return InvalidArgumentStatus(node + ": input " + std::to_string(i + 1) +
                                       " must be a constant (scales, zero points and slopes are initializers)");
        }
      }
      PreluInputs read = ReadPreluInputs(constants);
      if (!read.error.empty()) return InvalidArgumentStatus(node + ": " + read.error);
      *kernel = new QLinearPreluKernel(node, channels_last == 1,
                                       QuantizedPrelu(read.slopes.data(), read.slopes.size(), read.params));
      return nullptr;
    } catch (const Ort::Exception& e) {
      return InvalidArgumentStatus(std::string(kCustomOpDomain) + "::" + kQLinearPreluOp + ": " + e.what());
    } catch (const std::bad_alloc&) {
      return Ort::Status("out of memory creating a QLinearPRelu kernel", ORT_FAIL).release();
    }
  }

  const char* GetName() const { return kQLinearPreluOp; }
  const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
  size_t GetInputTypeCount() const { return 6; }
  ONNXTensorElementDataType GetInputType(size_t index) const {
    return index == 0 || index == 2 || index == 5 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8; }
};

}  // namespace

void AddQLinearPreluOp(Ort::CustomOpDomain& domain) { domain.Add(new QLinearPreluOp()); }

}  // namespace maskface::ort
