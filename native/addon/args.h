// Argument unwrapping for the native methods. lib/ validates every public argument first; these
// re-checks are cheap and turn a lib/ bug into an ERR_INVALID_ARGUMENT instead of a crash.
#pragma once
#include <napi.h>

#include <cmath>
#include <string>
#include <type_traits>

#include "addon/errors.h"
#include "core/align.h"

namespace maskface::addon {

[[noreturn]] inline void ThrowInvalid(Napi::Env env, const std::string& message) {
  throw MakeError(env, JsCode::kInvalidArgument, message);
}

template <typename T>
Napi::TypedArrayOf<T> TypedArrayArg(Napi::Env env, Napi::Value value, const char* what) {
  if (!value.IsTypedArray()) ThrowInvalid(env, std::string(what) + " must be a typed array");
  auto array = value.As<Napi::TypedArray>();
  bool ok = false;
  switch (array.TypedArrayType()) {
    case napi_uint8_array:
    case napi_uint8_clamped_array: ok = std::is_same<T, uint8_t>::value; break;
    case napi_float32_array: ok = std::is_same<T, float>::value; break;
    case napi_float64_array: ok = std::is_same<T, double>::value; break;
    case napi_uint32_array: ok = std::is_same<T, uint32_t>::value; break;
    case napi_int32_array: ok = std::is_same<T, int32_t>::value; break;
    default: ok = false;
  }
  if (!ok) ThrowInvalid(env, std::string(what) + " has the wrong element type");
  return value.As<Napi::TypedArrayOf<T>>();
}

inline double NumberArg(Napi::Env env, Napi::Value value, const char* what) {
  if (!value.IsNumber()) ThrowInvalid(env, std::string(what) + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number)) ThrowInvalid(env, std::string(what) + " must be finite");
  return number;
}

inline int64_t IntegerArg(Napi::Env env, Napi::Value value, const char* what, int64_t min, int64_t max) {
  double number = NumberArg(env, value, what);
  if (number != std::floor(number) || number < static_cast<double>(min) || number > static_cast<double>(max)) {
    ThrowInvalid(env, std::string(what) + " must be an integer in [" + std::to_string(min) + ", " +
                          std::to_string(max) + "]");
  }
  return static_cast<int64_t>(number);
}

inline std::string StringArg(Napi::Env env, Napi::Value value, const char* what) {
  if (!value.IsString()) ThrowInvalid(env, std::string(what) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

// A file system path: a non-empty string without NUL (the system would cut the path there).
inline std::string PathArg(Napi::Env env, Napi::Value value, const char* what) {
  std::string path = StringArg(env, value, what);
  if (path.empty() || path.find('\0') != std::string::npos) ThrowInvalid(env, std::string(what) + " must be a non-empty path without NUL");
  return path;
}

inline Napi::Object ObjectArg(Napi::Env env, Napi::Value value, const char* what) {
  if (!value.IsObject()) ThrowInvalid(env, std::string(what) + " must be an object");
  return value.As<Napi::Object>();
}

// image: {data: Uint8Array, width, height, channels, bgr} -> a view borrowing data (valid while
// the JS array is alive and unchanged).
inline ImageView ImageArg(Napi::Env env, Napi::Value value, const std::string& what) {
  Napi::Object image = ObjectArg(env, value, what.c_str());
  auto data = TypedArrayArg<uint8_t>(env, image.Get("data"), (what + ".data").c_str());
  ImageView view;
  view.width = static_cast<int>(IntegerArg(env, image.Get("width"), (what + ".width").c_str(), 1, 1 << 15));
  view.height = static_cast<int>(IntegerArg(env, image.Get("height"), (what + ".height").c_str(), 1, 1 << 15));
  view.channels = static_cast<int>(IntegerArg(env, image.Get("channels"), (what + ".channels").c_str(), 1, 4));
  view.bgr = image.Get("bgr").ToBoolean();
  const size_t expected = static_cast<size_t>(view.width) * view.height * view.channels;
  if (view.channels == 2 || data.ByteLength() != expected) {
    ThrowInvalid(env, what + ".data has " + std::to_string(data.ByteLength()) +
                          " bytes; expected width * height * channels = " + std::to_string(expected));
  }
  view.data = data.Data();
  view.row_stride = static_cast<size_t>(view.width) * view.channels;
  return view;
}

}  // namespace maskface::addon
