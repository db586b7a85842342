// Error checking for CUDA runtime calls and kernel launches in native/cuda (host code only).
// Failures throw CudaError, a maskface::Error, so that the C ABI (c_api.cc) can turn every
// failure into a status code and a message; nothing here knows about JavaScript.
#pragma once
#include <cuda_runtime_api.h>

#include <string>

#include "core/error.h"

namespace maskface::cuda {

class CudaError : public Error {
 public:
  CudaError(cudaError_t status, const std::string& where)
      : Error(status == cudaErrorMemoryAllocation ? ErrorCode::kOutOfMemory : ErrorCode::kInternal,
              where + ": " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")"),
        status_(status) {}
  cudaError_t status() const noexcept { return status_; }

 private:
  cudaError_t status_;
};

}  // namespace maskface::cuda

#define MF_CUDA_STRINGIFY_(x) #x
#define MF_CUDA_STRINGIFY(x) MF_CUDA_STRINGIFY_(x)

// Throws CudaError when a runtime call fails, naming the call and its place.
#define MF_CUDA_CHECK(expr)                                                                       \
  do {                                                                                            \
    const cudaError_t mf_status_ = (expr);                                                        \
    if (mf_status_ != cudaSuccess)                                                                \
      throw ::maskface::cuda::CudaError(mf_status_, #expr " at " __FILE__ ":" MF_CUDA_STRINGIFY(__LINE__)); \
  } while (0)

// After every launch: a bad launch configuration is reported (and cleared) by cudaGetLastError
// right away; faults while the kernel runs surface at the next synchronising call, checked too.
#define MF_CUDA_CHECK_LAST(kernel_name)                                                           \
  do {                                                                                            \
    const cudaError_t mf_status_ = cudaGetLastError();                                            \
    if (mf_status_ != cudaSuccess)                                                                \
      throw ::maskface::cuda::CudaError(mf_status_, std::string("launch of ") + (kernel_name) +  \
                                                        " at " __FILE__ ":" MF_CUDA_STRINGIFY(__LINE__)); \
  } while (0)
