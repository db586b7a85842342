// The C ABI of libmaskface_cuda.so on any machine, GPU or not: bad arguments come back as
// MASKFACE_CUDA_INVALID_ARGUMENT with a message, checked on the host before any CUDA call; and
// without a driver, calls that need the device return MASKFACE_CUDA_CUDA_ERROR with a message,
// never a crash. (cuda_kernels_test checks the kernels themselves, on a GPU.) Plain C++: built
// with the host compiler against the library, like the addon's loader uses it.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "cuda/maskface_cuda.h"
#include "tests/test_check.h"

namespace {

using maskface::test::Check;
using maskface::test::g_checks;
using maskface::test::g_failures;

// A call that must be refused on the host, with a message that mentions `word`.
void Rejected(int status, const char* word, const std::string& what) {
  const std::string message = maskface_cuda_last_error();
  Check(status == MASKFACE_CUDA_INVALID_ARGUMENT && message.find(word) != std::string::npos,
        what + " -> INVALID_ARGUMENT (\"" + message + "\")");
}

MaskfaceCudaAttentionParams ValidAttention() {
  static float features[2 * 4 * 3 * 3];
  static float logits[2 * 3 * 3 * 3];
  MaskfaceCudaAttentionParams p{};
  p.features = features;
  p.logits = logits;
  p.out_features = features;
  p.batch = 2;
  p.channels = 4;
  p.height = 3;
  p.width = 3;
  p.gating = MASKFACE_CUDA_GATING_NOT_MASK;
  p.dtype = MASKFACE_CUDA_F32;
  return p;
}

}  // namespace

int main() {
  Check(maskface_cuda_abi_version() == MASKFACE_CUDA_ABI_VERSION, "ABI version matches the header");
  int devices = -1;
  const int count_status = maskface_cuda_device_count(&devices);
  // A count, or (no driver, or one older than the runtime) CUDA_ERROR with the runtime's reason:
  // never "0 devices, OK" for a driver that cannot run the kernels.
  Check((count_status == MASKFACE_CUDA_OK && devices >= 0) ||
            (count_status == MASKFACE_CUDA_CUDA_ERROR && devices == 0 && std::strlen(maskface_cuda_last_error()) > 0),
        "device_count: " + (count_status == MASKFACE_CUDA_OK ? std::to_string(devices) + " devices"
                                                             : std::string("CUDA_ERROR \"") + maskface_cuda_last_error() + "\""));
  Rejected(maskface_cuda_device_count(nullptr), "null", "device_count(null)");

  // Attention masking: the launcher checks everything before it launches.
  MaskfaceCudaAttentionParams p = ValidAttention();
  p.gating = 7;
  Rejected(maskface_cuda_attention_mask(&p, nullptr), "gating", "attention: gating 7");
  p = ValidAttention();
  p.dtype = 9;
  Rejected(maskface_cuda_attention_mask(&p, nullptr), "dtype", "attention: dtype 9");
  p = ValidAttention();
  p.height = -1;
  Rejected(maskface_cuda_attention_mask(&p, nullptr), ">= 0", "attention: height -1");
  p = ValidAttention();
  p.logits = nullptr;
  Rejected(maskface_cuda_attention_mask(&p, nullptr), "logits", "attention: null logits");
  p = ValidAttention();
  p.batch = 0;
  Check(maskface_cuda_attention_mask(&p, nullptr) == MASKFACE_CUDA_OK, "attention: an empty batch is a no-op");
  Rejected(maskface_cuda_attention_mask(nullptr, nullptr), "null", "attention: null params");

  // Alignment.
  unsigned char pixels[4 * 4 * 3] = {};
  MaskfaceCudaImage image{};
  image.data = pixels;
  image.width = 4;
  image.height = 4;
  image.channels = 3;
  const double identity[6] = {1, 0, 0, 0, 1, 0};
  std::memcpy(image.out_to_src, identity, sizeof identity);
  float out[3 * 2 * 2];
  MaskfaceCudaAlignParams a{};
  a.images = &image;
  a.n_images = 1;
  a.out_width = 2;
  a.out_height = 2;
  a.out_channels = 3;
  a.std[0] = a.std[1] = a.std[2] = 1.0f;
  a.out_dtype = MASKFACE_CUDA_F32;
  a.out = out;
  image.channels = 2;
  Rejected(maskface_cuda_align_normalize(&a, nullptr), "channels", "align: a 2-channel image");
  image.channels = 3;
  a.std[1] = 0.0f;
  Rejected(maskface_cuda_align_normalize(&a, nullptr), "std", "align: std 0");
  a.std[1] = 1.0f;
  image.out_to_src[2] = NAN;
  Rejected(maskface_cuda_align_normalize(&a, nullptr), "transform", "align: a NaN in the matrix");
  image.out_to_src[2] = 0.0;
  a.out_channels = 2;
  Rejected(maskface_cuda_align_normalize(&a, nullptr), "out_channels", "align: 2 output channels");
  a.out_channels = 3;
  a.n_images = 0;
  Check(maskface_cuda_align_normalize(&a, nullptr) == MASKFACE_CUDA_OK, "align: no images is a no-op");

  // Top-k and the gallery: shapes and k are checked before the device is asked anything.
  MaskfaceCudaTopKParams t{};
  t.gallery.dim = 512;
  t.gallery.row_stride = 512;
  t.n_queries = 1;
  t.query_dtype = MASKFACE_CUDA_F32;
  t.threshold = -INFINITY;
  size_t bytes = 0;
  t.k = 0;
  Rejected(maskface_cuda_topk_workspace_size(&t, &bytes), "k", "topk: k 0");
  t.k = MASKFACE_CUDA_MAX_TOP_K + 1;
  Rejected(maskface_cuda_topk_workspace_size(&t, &bytes), "k", "topk: k 1025");
  MaskfaceCudaGallery* gallery = nullptr;
  Rejected(maskface_cuda_gallery_create(0, 10, &gallery), "dim", "gallery: dim 0");
  Rejected(maskface_cuda_gallery_create(MASKFACE_CUDA_MAX_DIM + 1, 10, &gallery), "dim", "gallery: dim 4097");
  Rejected(maskface_cuda_gallery_create(512, -1, &gallery), "capacity", "gallery: capacity -1");

  if (devices == 0) {
    // No GPU (or no driver): what needs the device fails with a status and a message.
    void* stream = nullptr;
    const int stream_status = maskface_cuda_stream_create(&stream);
    Check(stream_status == MASKFACE_CUDA_CUDA_ERROR && std::strlen(maskface_cuda_last_error()) > 0,
          std::string("no device: stream_create -> CUDA_ERROR (\"") + maskface_cuda_last_error() + "\")");
    const int create_status = maskface_cuda_gallery_create(512, 10, &gallery);
    Check(create_status == MASKFACE_CUDA_CUDA_ERROR && gallery == nullptr && std::strlen(maskface_cuda_last_error()) > 0,
          std::string("no device: gallery_create -> CUDA_ERROR (\"") + maskface_cuda_last_error() + "\")");
    void* memory = nullptr;
    const int malloc_status = maskface_cuda_malloc(&memory, 1024);
    Check(malloc_status == MASKFACE_CUDA_CUDA_ERROR && memory == nullptr,
          std::string("no device: malloc -> CUDA_ERROR (\"") + maskface_cuda_last_error() + "\")");
  }
  a.n_images = 0;
  const int last_status = maskface_cuda_align_normalize(&a, nullptr);  // a no-op: succeeds without a device
  Check(last_status == MASKFACE_CUDA_OK && std::strlen(maskface_cuda_last_error()) == 0,
        "a successful call clears the last error");

  std::printf("%d of %d checks passed\n", g_checks - g_failures, g_checks);
  return g_failures == 0 ? 0 : 1;
}
