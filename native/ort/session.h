// A face-embedding network loaded into ONNX Runtime. Plain C++: no napi here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ort/providers.h"

namespace maskface::ort {

struct SessionConfig {
  int intra_op_threads = 1;  // threads inside one Run
  int inter_op_threads = 1;  // threads across independent graph branches
  bool allow_spinning = false;  // pool threads spin-wait for work instead of sleeping
  int64_t max_batch = 32;    // faces per ONNX Runtime run: larger batches run in chunks, bounding working memory
  ProviderConfig provider;
};

struct TensorDescription {
  std::string name;
  std::vector<int64_t> shape;  // -1 where the dimension is symbolic
  std::string element_type;    // "float32", "float16", ...
};

struct ModelDescription {
  TensorDescription input;
  std::vector<TensorDescription> outputs;
  int embedding_output = 0;  // index into outputs
  int regions_output = -1;   // index of `regions` [N,3,h,w], or -1
  int64_t embedding_dim = 0;
  int64_t fixed_batch = 0;   // > 0 when the model only accepts this batch size
  int input_channels = 3;
  int input_height = 0;
  int input_width = 0;
  int regions_height = 0;
  int regions_width = 0;
  std::map<std::string, std::string> metadata;  // ONNX metadata_props
  std::string producer;
  std::string graph_name;
};

class InferenceSession {
 public:
  // Parses and prepares a model held in memory. Throws maskface::Error(kModelLoad) with ONNX
  // Runtime's message when the bytes are not a usable model, or when its inputs and outputs are
  // not those of a face-embedding network ([N,C,H,W] float input, [N,D] float embedding: the
  // batch first, then one embedding dimension, or D followed by 1s). CPU sessions of models with
  // a symbolic batch also run a self-check: a batch of two probe inputs must give the rows their
  // single runs give (a model that mixes the faces of a batch, or puts the batch elsewhere in its
  // output, fails it).
  static std::unique_ptr<InferenceSession> Create(const uint8_t* model, size_t size, const SessionConfig& config);
  ~InferenceSession();

  const ModelDescription& description() const { return description_; }

  // Runs `batch` preprocessed faces (batch x C x H x W floats) and writes the raw (not
  // normalised) embeddings (batch x dim), and the region maps (batch x 3 x h x w) when the model
  // has them and `regions` is not null. Runs at most max_batch faces at a time (models with a
  // fixed batch of 1 run once per face). An allocation ONNX Runtime cannot make is
  // Error(kOutOfMemory).
  // Thread-safe: several threads may call Run on one session at once. Throws
  // maskface::Error(kInference) on failure.
  void Run(const float* input, int64_t batch, float* embeddings, float* regions) const;

  // As Run, with the input tensor already in the memory of the session's GPU (a CUDA or TensorRT
  // session): it is bound with ONNX Runtime's IO binding, so it is not copied; the outputs are
  // bound to the host buffers. The caller keeps device_input alive and complete (its writes
  // synchronised) for the call. Throws Error(kInvalidArgument) on a CPU session.
  void RunDeviceInput(const float* device_input, int64_t batch, float* embeddings, float* regions) const;

 private:
  struct Impl;
  explicit InferenceSession(std::unique_ptr<Impl> impl);
  template <typename BindInput>
  void RunBatches(int64_t batch, float* embeddings, float* regions, BindInput&& bind_input) const;
  void SelfCheck() const;
  std::unique_ptr<Impl> impl_;
  ModelDescription description_;
};

}  // namespace maskface::ort
