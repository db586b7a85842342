// Synchronous image helpers: similarity estimation and warps (alignFace and friends in lib/).
#pragma once
#include <napi.h>

namespace maskface::addon {

// alignmentMatrix(landmarks: Float64Array, template: Float64Array) -> Float64Array(6) | null
// The output-to-image map of the least-squares similarity from landmarks onto the template.
Napi::Value AlignmentMatrix(const Napi::CallbackInfo& info);
// warpImage(image, matrix: Float64Array(6), width, height, channels, bgr) -> Uint8Array
Napi::Value WarpImage(const Napi::CallbackInfo& info);
// warpTensor(image, matrix | null, {width, height, channels, bgr, mean: Float32Array, std: Float32Array})
//   -> Float32Array; a null matrix resizes the whole image (as embed() does without landmarks)
Napi::Value WarpTensor(const Napi::CallbackInfo& info);

}  // namespace maskface::addon
