// The extern "C" face of libmaskface_cuda.so (maskface_cuda.h): each function runs its C++
// launcher inside Guard, which turns every exception into a status code plus a per-thread
// message, so nothing throws across the dlopen boundary.
#include <cuda_runtime_api.h>

#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "core/error.h"
#include "cuda/cuda_check.h"
#include "cuda/device_gallery.h"
#include "cuda/launchers.h"
#include "cuda/maskface_cuda.h"

struct MaskfaceCudaGallery {
  explicit MaskfaceCudaGallery(int dim, int64_t capacity) : gallery(dim, capacity) {}
  maskface::cuda::DeviceGallery gallery;
};

namespace {

using maskface::Error;
using maskface::ErrorCode;
using maskface::cuda::CudaError;

thread_local std::string g_last_error;

template <typename Fn>
int Guard(Fn&& fn) noexcept {
  g_last_error.clear();
  try {
    fn();
    return MASKFACE_CUDA_OK;
  } catch (const CudaError& e) {
    g_last_error = e.what();
    return e.status() == cudaErrorMemoryAllocation ? MASKFACE_CUDA_OUT_OF_MEMORY : MASKFACE_CUDA_CUDA_ERROR;
  } catch (const Error& e) {
    g_last_error = e.what();
    switch (e.code()) {
      case ErrorCode::kInvalidArgument:
      case ErrorCode::kDimensionMismatch: return MASKFACE_CUDA_INVALID_ARGUMENT;
      case ErrorCode::kOutOfMemory: return MASKFACE_CUDA_OUT_OF_MEMORY;
      default: return MASKFACE_CUDA_INTERNAL;
    }
  } catch (const std::bad_alloc&) {
    g_last_error = "out of host memory";
    return MASKFACE_CUDA_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    g_last_error = e.what();
    return MASKFACE_CUDA_INTERNAL;
  } catch (...) {
    g_last_error = "unknown exception";
    return MASKFACE_CUDA_INTERNAL;
  }
}

cudaStream_t AsStream(void* stream) { return static_cast<cudaStream_t>(stream); }

void CheckOut(const void* out, const char* what) {
  MF_CHECK_ARG(out != nullptr, std::string(what) + " is null");
}

}  // namespace

extern "C" {

MASKFACE_CUDA_API int maskface_cuda_abi_version(void) { return MASKFACE_CUDA_ABI_VERSION; }

MASKFACE_CUDA_API const char* maskface_cuda_last_error(void) { return g_last_error.c_str(); }

MASKFACE_CUDA_API int maskface_cuda_device_count(int* count) {
  return Guard([&] {
    CheckOut(count, "count");
    *count = 0;
    const cudaError_t status = cudaGetDeviceCount(count);
    if (status == cudaErrorNoDevice) {
      cudaGetLastError();  // not an error here: the answer is "no device"
      *count = 0;
      return;
    }
    // Anything else, an insufficient driver included, is a failure with the runtime's message:
    // "0 devices" would hide why.
    MF_CUDA_CHECK(status);
  });
}

MASKFACE_CUDA_API int maskface_cuda_device_info(int device, char* name, size_t name_size, size_t* total_bytes,
                                                int* major, int* minor) {
  return Guard([&] {
    cudaDeviceProp prop;
    MF_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    if (name != nullptr && name_size > 0) {
      std::strncpy(name, prop.name, name_size - 1);
      name[name_size - 1] = '\0';
    }
    if (total_bytes != nullptr) *total_bytes = prop.totalGlobalMem;
    if (major != nullptr) *major = prop.major;
    if (minor != nullptr) *minor = prop.minor;
  });
}

MASKFACE_CUDA_API int maskface_cuda_set_device(int device) {
  return Guard([&] { MF_CUDA_CHECK(cudaSetDevice(device)); });
}

MASKFACE_CUDA_API int maskface_cuda_stream_create(void** stream) {
  return Guard([&] {
    CheckOut(stream, "stream");
    cudaStream_t created = nullptr;
    MF_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    *stream = created;
  });
}

MASKFACE_CUDA_API int maskface_cuda_stream_destroy(void* stream) {
  return Guard([&] {
    if (stream != nullptr) MF_CUDA_CHECK(cudaStreamDestroy(AsStream(stream)));
  });
}

MASKFACE_CUDA_API int maskface_cuda_stream_synchronize(void* stream) {
  return Guard([&] { MF_CUDA_CHECK(cudaStreamSynchronize(AsStream(stream))); });
}

MASKFACE_CUDA_API int maskface_cuda_malloc(void** ptr, size_t bytes) {
  return Guard([&] {
    CheckOut(ptr, "ptr");
    *ptr = nullptr;
    if (bytes > 0) MF_CUDA_CHECK(cudaMalloc(ptr, bytes));
  });
}

MASKFACE_CUDA_API int maskface_cuda_free(void* ptr) {
  return Guard([&] { MF_CUDA_CHECK(cudaFree(ptr)); });
}

MASKFACE_CUDA_API int maskface_cuda_memcpy_async(void* dst, const void* src, size_t bytes, void* stream) {
  return Guard([&] {
    if (bytes == 0) return;
    MF_CHECK_ARG(dst != nullptr && src != nullptr, "memcpy: null pointer");
    MF_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, AsStream(stream)));
  });
}

MASKFACE_CUDA_API int maskface_cuda_align_normalize(const MaskfaceCudaAlignParams* params, void* stream) {
  return Guard([&] {
    CheckOut(params, "params");
    maskface::cuda::LaunchAlignNormalize(*params, AsStream(stream));
  });
}

MASKFACE_CUDA_API int maskface_cuda_attention_mask(const MaskfaceCudaAttentionParams* params, void* stream) {
  return Guard([&] {
    CheckOut(params, "params");
    maskface::cuda::LaunchAttentionMask(*params, AsStream(stream));
  });
}

MASKFACE_CUDA_API int maskface_cuda_topk_workspace_size(const MaskfaceCudaTopKParams* params, size_t* bytes) {
  return Guard([&] {
    CheckOut(params, "params");
    CheckOut(bytes, "bytes");
    *bytes = maskface::cuda::CosineTopKWorkspaceBytes(*params);
  });
}

MASKFACE_CUDA_API int maskface_cuda_topk(const MaskfaceCudaTopKParams* params, void* stream) {
  return Guard([&] {
    CheckOut(params, "params");
    maskface::cuda::LaunchCosineTopK(*params, AsStream(stream));
  });
}

MASKFACE_CUDA_API int maskface_cuda_gallery_create(int32_t dim, int64_t capacity_rows, MaskfaceCudaGallery** out) {
  return Guard([&] {
    CheckOut(out, "out");
    *out = nullptr;
    *out = new MaskfaceCudaGallery(dim, capacity_rows);
  });
}

MASKFACE_CUDA_API int maskface_cuda_gallery_destroy(MaskfaceCudaGallery* gallery) {
  return Guard([&] { delete gallery; });
}

MASKFACE_CUDA_API int maskface_cuda_gallery_upload_rows(MaskfaceCudaGallery* gallery, int64_t first_row,
                                                        int64_t n_rows, const void* host_rows, int32_t dtype,
                                                        void* stream) {
  return Guard([&] {
    CheckOut(gallery, "gallery");
    gallery->gallery.UploadRows(first_row, n_rows, host_rows, static_cast<MaskfaceCudaDtype>(dtype), AsStream(stream));
  });
}

MASKFACE_CUDA_API int maskface_cuda_gallery_set_live(MaskfaceCudaGallery* gallery, int64_t first_row, int64_t n_rows,
                                                     int live, void* stream) {
  return Guard([&] {
    CheckOut(gallery, "gallery");
    gallery->gallery.SetLive(first_row, n_rows, live != 0, AsStream(stream));
  });
}

MASKFACE_CUDA_API int maskface_cuda_gallery_view(const MaskfaceCudaGallery* gallery, MaskfaceCudaGalleryView* view) {
  return Guard([&] {
    CheckOut(gallery, "gallery");
    CheckOut(view, "view");
    *view = gallery->gallery.View();
  });
}

}  // extern "C"
