// maskface::QLinearPRelu (since version 1): PReLU on uint8-quantised tensors, for int8 models made
// by training/maskface_train/quantize.py. It stands for DequantizeLinear -> PRelu ->
// QuantizeLinear, which ONNX Runtime would run in float32 (three passes over the tensor, and
// PRelu is among its slowest CPU kernels); here it is one pass from uint8 to uint8.
//   inputs   X uint8 [N,C,...], X_scale float, X_zero_point uint8, slope float (C values),
//            Y_scale float, Y_zero_point uint8; all but X constant (initializers), read once
//            when the session is created
//   attribute channels_last (int, default 0): 1 when X is [N,...,C] (NHWC, as the QLinearConv
//            of com.microsoft with channels_last = 1 reads and writes it)
//   output   Y uint8, the shape of X
// CPU only. The kernel is maskface::ApplyQuantizedPrelu (native/core/quantized_prelu.h).
#pragma once

namespace Ort {
struct CustomOpDomain;
}

namespace maskface::ort {

inline constexpr char kQLinearPreluOp[] = "QLinearPRelu";

// A new QLinearPRelu op for the CPU execution provider, to add to the maskface domain (which
// owns it from then on).
void AddQLinearPreluOp(Ort::CustomOpDomain& domain);

}  // namespace maskface::ort
