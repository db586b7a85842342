#include "addon/image_functions.h"

#include <string>

#include "addon/args.h"
#include "core/align.h"

namespace maskface::addon {
namespace {

Affine MatrixArg(Napi::Env env, Napi::Value value) {
  auto values = TypedArrayArg<double>(env, value, "matrix");
  if (values.ElementLength() != 6) ThrowInvalid(env, "matrix must hold 6 values");
  Affine affine;
  for (int i = 0; i < 6; ++i) affine.m[i] = values[i];
  return affine;
}

}  // namespace

Napi::Value AlignmentMatrix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto landmarks = TypedArrayArg<double>(env, info[0], "landmarks");
    auto points = TypedArrayArg<double>(env, info[1], "template");
    if (landmarks.ElementLength() != points.ElementLength() || landmarks.ElementLength() < 4 ||
        landmarks.ElementLength() % 2 != 0) {
      ThrowInvalid(env, "landmarks and template must hold the same number (>= 2) of (x, y) points");
    }
    Affine forward, inverse;
    if (!EstimateSimilarity(landmarks.Data(), points.Data(), static_cast<int>(landmarks.ElementLength() / 2), &forward) ||
        !InvertAffine(forward, &inverse)) {
      return env.Null();
    }
    auto out = Napi::Float64Array::New(env, 6);
    for (int i = 0; i < 6; ++i) out[i] = inverse.m[i];
    return out;
  });
}

Napi::Value WarpImage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    ImageView image = ImageArg(env, info[0], "image");
    Affine matrix = MatrixArg(env, info[1]);
    int width = static_cast<int>(IntegerArg(env, info[2], "width", 1, 4096));
    int height = static_cast<int>(IntegerArg(env, info[3], "height", 1, 4096));
    int channels = static_cast<int>(IntegerArg(env, info[4], "channels", 1, 3));
    if (channels == 2) ThrowInvalid(env, "channels must be 1 or 3");
    auto out = Napi::Uint8Array::New(env, static_cast<size_t>(width) * height * channels);
    WarpToImage(image, matrix, width, height, channels, info[5].ToBoolean(), out.Data());
    return out;
  });
}

Napi::Value WarpTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    ImageView image = ImageArg(env, info[0], "image");
    Napi::Object options = ObjectArg(env, info[2], "spec");
    TensorSpec spec;
    spec.width = static_cast<int>(IntegerArg(env, options.Get("width"), "width", 1, 4096));
    spec.height = static_cast<int>(IntegerArg(env, options.Get("height"), "height", 1, 4096));
    spec.channels = static_cast<int>(IntegerArg(env, options.Get("channels"), "channels", 1, 3));
    if (spec.channels == 2) ThrowInvalid(env, "channels must be 1 or 3");
    spec.bgr = options.Get("bgr").ToBoolean();
    auto mean = TypedArrayArg<float>(env, options.Get("mean"), "mean");
    auto std = TypedArrayArg<float>(env, options.Get("std"), "std");
    if (mean.ElementLength() != 3 || std.ElementLength() != 3) ThrowInvalid(env, "mean and std must hold 3 values");
    for (int c = 0; c < 3; ++c) {
      spec.mean[c] = mean[c];
      spec.std[c] = std[c];
      if (!(std[c] != 0.0f)) ThrowInvalid(env, "std must be non-zero");
    }
    // No matrix: the plain resize embed() applies to faces without landmarks.
    const Affine matrix = info[1].IsNull() ? ResizeMap(image.width, image.height, spec.width, spec.height)
                                           : MatrixArg(env, info[1]);
    auto out = Napi::Float32Array::New(env, static_cast<size_t>(spec.channels) * spec.height * spec.width);
    WarpToTensor(image, matrix, spec, out.Data());
    return out;
  });
}

}  // namespace maskface::addon
