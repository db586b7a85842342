// Vectors handed to JavaScript without a copy: the typed array owns the vector's memory.
#pragma once
#include <napi.h>

#include <vector>

namespace maskface::addon {

template <typename T>
Napi::TypedArrayOf<T> MoveToJs(Napi::Env env, std::vector<T>&& values) {
  // An external buffer of no bytes may come out detached.
  if (values.empty()) return Napi::TypedArrayOf<T>::New(env, 0);
  auto* owned = new std::vector<T>(std::move(values));
  auto buffer = Napi::ArrayBuffer::New(env, owned->data(), owned->size() * sizeof(T),
                                       [](Napi::Env, void*, std::vector<T>* data) { delete data; }, owned);
  return Napi::TypedArrayOf<T>::New(env, owned->size(), buffer, 0);
}

}  // namespace maskface::addon
