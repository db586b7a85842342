/* The C ABI of libmaskface_cuda.so: what the addon will dlopen (after libcuda.so.1 loads) so that
 * neither it nor anything else links the CUDA runtime or the driver.
 *
 * Plain C, no CUDA headers: streams are passed as void* (a cudaStream_t; NULL is the legacy
 * default stream) and device memory as plain pointers. Every function returns a
 * MaskfaceCudaStatus; on failure maskface_cuda_last_error() holds a message for the calling
 * thread. Launches are asynchronous on the given stream unless a function says otherwise.
 * Bump MASKFACE_CUDA_ABI_VERSION on any change to these declarations or structs. */
#ifndef MASKFACE_CUDA_H_
#define MASKFACE_CUDA_H_

#include <stddef.h>
#include <stdint.h>

#if defined(MASKFACE_CUDA_BUILDING)
#define MASKFACE_CUDA_API __attribute__((visibility("default")))
#else
#define MASKFACE_CUDA_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define MASKFACE_CUDA_ABI_VERSION 1

typedef enum MaskfaceCudaStatus {
  MASKFACE_CUDA_OK = 0,
  MASKFACE_CUDA_INVALID_ARGUMENT = 1, /* shapes, pointers or options rejected on the host */
  MASKFACE_CUDA_CUDA_ERROR = 2,       /* a CUDA runtime call or launch failed */
  MASKFACE_CUDA_OUT_OF_MEMORY = 3,    /* device or host allocation failed */
  MASKFACE_CUDA_INTERNAL = 4
} MaskfaceCudaStatus;

typedef enum MaskfaceCudaDtype {
  MASKFACE_CUDA_F32 = 0,
  MASKFACE_CUDA_F16 = 1 /* IEEE half; arithmetic is always fp32 */
} MaskfaceCudaDtype;

/* ---- runtime helpers (so that callers need no CUDA runtime of their own) ---------------------- */

MASKFACE_CUDA_API int maskface_cuda_abi_version(void);
/* Message of the last failure on this thread ("" when none). Valid until the next call. */
MASKFACE_CUDA_API const char* maskface_cuda_last_error(void);
/* Number of usable devices; 0 (and MASKFACE_CUDA_OK) when there is no driver or no GPU. */
MASKFACE_CUDA_API int maskface_cuda_device_count(int* count);
/* Name, total memory and compute capability of a device; name gets at most name_size bytes. */
MASKFACE_CUDA_API int maskface_cuda_device_info(int device, char* name, size_t name_size,
                                                size_t* total_bytes, int* major, int* minor);
MASKFACE_CUDA_API int maskface_cuda_set_device(int device);
MASKFACE_CUDA_API int maskface_cuda_stream_create(void** stream);
MASKFACE_CUDA_API int maskface_cuda_stream_destroy(void* stream);
MASKFACE_CUDA_API int maskface_cuda_stream_synchronize(void* stream);
MASKFACE_CUDA_API int maskface_cuda_malloc(void** ptr, size_t bytes);
MASKFACE_CUDA_API int maskface_cuda_free(void* ptr);
/* cudaMemcpyAsync with cudaMemcpyDefault (unified addressing tells host from device). */
MASKFACE_CUDA_API int maskface_cuda_memcpy_async(void* dst, const void* src, size_t bytes, void* stream);

/* ---- a. alignment + normalisation ------------------------------------------------------------
 * The same maths as native/core/align.h WarpToTensor: out_to_src maps output pixel coordinates to
 * source pixel coordinates (integers are pixel centres), bilinear, zero border, grey replicated
 * to colour, colour to grey with BT.601 luma, value' = (value - mean[c]) / std[c] on 0..255. */

typedef struct MaskfaceCudaImage {
  const uint8_t* data; /* device pointer, interleaved HWC */
  int32_t width;
  int32_t height;
  int32_t channels;    /* 1, 3 or 4 (a 4th channel is ignored) */
  int32_t bgr;         /* nonzero: colour channels are B, G, R */
  int64_t row_stride;  /* bytes per row; 0 means width * channels */
  double out_to_src[6]; /* (sx, sy) = (m0 x + m1 y + m2, m3 x + m4 y + m5) */
} MaskfaceCudaImage;

typedef struct MaskfaceCudaAlignParams {
  const MaskfaceCudaImage* images; /* HOST array of n_images descriptors (pixels are on the device) */
  int32_t n_images;
  int32_t out_width;
  int32_t out_height;
  int32_t out_channels; /* 1 or 3 */
  int32_t out_bgr;
  float mean[3];
  float std[3];
  int32_t out_dtype;    /* MaskfaceCudaDtype */
  void* out;            /* device, n_images x out_channels x out_height x out_width (NCHW) */
} MaskfaceCudaAlignParams;

MASKFACE_CUDA_API int maskface_cuda_align_normalize(const MaskfaceCudaAlignParams* params, void* stream);

/* ---- b. attention masking (DESIGN.md §1) ------------------------------------------------------
 * P = softmax over the 3 region logits per pixel (0 face, 1 mask, 2 background);
 * A = P[face] (gating face) or 1 - P[mask] (gating not_mask); out = F * A over all channels.
 * All tensors have the same dtype; fp16 is storage only, the maths is fp32. */

typedef enum MaskfaceCudaGating {
  MASKFACE_CUDA_GATING_FACE = 0,
  MASKFACE_CUDA_GATING_NOT_MASK = 1
} MaskfaceCudaGating;

typedef struct MaskfaceCudaAttentionParams {
  const void* features;  /* device [batch, channels, height, width] */
  const void* logits;    /* device [batch, 3, height, width] */
  void* out_features;    /* device, like features; may equal features (in place); NULL skips */
  void* out_probabilities; /* device [batch, 3, height, width]; NULL skips */
  int64_t batch;
  int64_t channels;
  int64_t height;
  int64_t width;
  int32_t gating;        /* MaskfaceCudaGating */
  int32_t dtype;         /* MaskfaceCudaDtype of all four tensors */
} MaskfaceCudaAttentionParams;

MASKFACE_CUDA_API int maskface_cuda_attention_mask(const MaskfaceCudaAttentionParams* params, void* stream);

/* ---- c. cosine top-k over an fp16 gallery ------------------------------------------------------
 * Scores are dot products: rows and queries are expected to be unit length (callers normalise,
 * as for the CPU gallery), so a score is the cosine. Results per query are best first; equal
 * scores resolve to the lower row; rows whose live flag is 0 are never returned; only scores >=
 * threshold are kept; NaN scores never are. Slots past counts[q] hold row -1 and score -inf. */

#define MASKFACE_CUDA_MAX_TOP_K 1024
#define MASKFACE_CUDA_MAX_DIM 4096

/* Device memory of a gallery: n_rows x row_stride halfs, row_stride a multiple of 8 (16 bytes)
 * with zeros in the padding columns [dim, row_stride), and one live byte per row. */
typedef struct MaskfaceCudaGalleryView {
  const void* rows;      /* device, IEEE half */
  const uint8_t* live;   /* device, n_rows bytes, nonzero = live */
  int64_t n_rows;
  int32_t dim;
  int32_t row_stride;    /* in halfs */
} MaskfaceCudaGalleryView;

typedef enum MaskfaceCudaTopKPath {
  MASKFACE_CUDA_TOPK_AUTO = 0,    /* scan for a few queries, batched otherwise */
  MASKFACE_CUDA_TOPK_SCAN = 1,    /* one streaming pass over the gallery per query */
  MASKFACE_CUDA_TOPK_BATCHED = 2  /* tensor-core (WMMA) score tiles, then selection */
} MaskfaceCudaTopKPath;

typedef struct MaskfaceCudaTopKParams {
  MaskfaceCudaGalleryView gallery;
  const void* queries;   /* device, n_queries x query_stride elements of query_dtype */
  int32_t query_dtype;   /* MaskfaceCudaDtype */
  int32_t query_stride;  /* elements between queries; 0 means dim */
  int64_t n_queries;
  int32_t k;             /* 1 .. MASKFACE_CUDA_MAX_TOP_K */
  float threshold;       /* keep scores >= threshold; -INFINITY keeps all */
  int32_t path;          /* MaskfaceCudaTopKPath */
  float* out_scores;     /* device, n_queries x k */
  int32_t* out_rows;     /* device, n_queries x k */
  uint32_t* out_counts;  /* device, n_queries */
  void* workspace;       /* device scratch of maskface_cuda_topk_workspace_size bytes */
  size_t workspace_bytes;
} MaskfaceCudaTopKParams;

/* Scratch bytes that maskface_cuda_topk needs for these params (reads the shapes, k, path and
 * the current device; ignores the pointers). */
MASKFACE_CUDA_API int maskface_cuda_topk_workspace_size(const MaskfaceCudaTopKParams* params, size_t* bytes);
MASKFACE_CUDA_API int maskface_cuda_topk(const MaskfaceCudaTopKParams* params, void* stream);

/* A gallery that owns its device memory, on the device current at creation: rows are uploaded
 * by range (adding or overwriting rows without re-uploading the rest), capacity grows on demand,
 * removed rows are marked dead. Calls on one gallery must not overlap; searches read it through
 * maskface_cuda_gallery_view, on a stream ordered after the uploads. */
typedef struct MaskfaceCudaGallery MaskfaceCudaGallery;

MASKFACE_CUDA_API int maskface_cuda_gallery_create(int32_t dim, int64_t capacity_rows, MaskfaceCudaGallery** out);
MASKFACE_CUDA_API int maskface_cuda_gallery_destroy(MaskfaceCudaGallery* gallery);
/* Writes rows [first_row, first_row + n_rows) from HOST memory (n_rows x dim, dense, dtype f32
 * or f16) and marks them live. first_row may be past the current end: rows in between stay
 * dead. Returns once the host buffer may be reused (it synchronises the stream). */
MASKFACE_CUDA_API int maskface_cuda_gallery_upload_rows(MaskfaceCudaGallery* gallery, int64_t first_row,
                                                        int64_t n_rows, const void* host_rows,
                                                        int32_t dtype, void* stream);
/* Sets the live flag of rows [first_row, first_row + n_rows) (all < the current row count). */
MASKFACE_CUDA_API int maskface_cuda_gallery_set_live(MaskfaceCudaGallery* gallery, int64_t first_row,
                                                     int64_t n_rows, int live, void* stream);
/* The device view of the rows written so far (valid until the next upload that grows it). */
MASKFACE_CUDA_API int maskface_cuda_gallery_view(const MaskfaceCudaGallery* gallery, MaskfaceCudaGalleryView* view);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* MASKFACE_CUDA_H_ */
