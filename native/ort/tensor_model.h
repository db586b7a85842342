// A small fixed-shape network (a face detector, a landmark network): one float32 input, float32
// outputs fetched by name. Plain C++: no napi here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace maskface::ort {

struct TensorModelSpec {
  std::string what;  // for messages: "the face detector"
  int input_rank = 4;
  std::vector<std::string> outputs;  // fetched in this order; all must exist and be float32 (empty: every output, in model order)
};

class TensorModel {
 public:
  // Throws Error(kModelLoad) when the bytes are not a model with one float32 input of the given
  // rank and fixed size, and every named float32 output with a fixed size per run.
  static std::unique_ptr<TensorModel> Create(const uint8_t* model, size_t size, int intra_op_threads,
                                             const TensorModelSpec& spec);
  ~TensorModel();

  // The input's shape ([1,3,240,320]) and each output's element count per run.
  const std::vector<int64_t>& input_shape() const { return input_shape_; }
  const std::vector<size_t>& output_sizes() const { return output_sizes_; }
  const std::vector<std::string>& output_names() const;
  size_t input_size() const;

  // One run on input_size() floats; writes each output into outputs[i] (resized). Thread-safe.
  // Throws Error(kInference).
  void Run(const float* input, std::vector<std::vector<float>>* outputs) const;

 private:
  struct Impl;
  explicit TensorModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::vector<int64_t> input_shape_;
  std::vector<size_t> output_sizes_;
};

}  // namespace maskface::ort
