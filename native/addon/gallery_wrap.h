// JS handle for gallery storage: rows of unit vectors, exact top-k search on a worker thread.
// lib/api/gallery.ts owns ids and row allocation; this layer only sees row numbers.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

#include "addon/instance_data.h"
#include "core/gallery_store.h"
#include "gpu/gpu_gallery.h"

namespace maskface::addon {

class GalleryWrap : public Napi::ObjectWrap<GalleryWrap>, public Releasable {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // new GalleryStore(dim, storage?: 'f32' | 'f16')
  explicit GalleryWrap(const Napi::CallbackInfo& info);
  ~GalleryWrap() override;
  void Release() override;

  // Counts searches in flight so Put can refuse to overwrite a row one of them may read.
  std::shared_ptr<std::atomic<int>> active_searches() const { return active_searches_; }
  // Tells V8 how much native memory the store holds (after writes, and after a load's worker).
  void ReportMemory(Napi::Env env);

 private:
  Napi::Value Put(const Napi::CallbackInfo& info);
  Napi::Value PutAsync(const Napi::CallbackInfo& info);
  Napi::Value Kill(const Napi::CallbackInfo& info);
  Napi::Value LiveFlags(const Napi::CallbackInfo& info);
  Napi::Value GetRows(const Napi::CallbackInfo& info);
  Napi::Value Reserve(const Napi::CallbackInfo& info);
  Napi::Value Search(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value LoadFile(const Napi::CallbackInfo& info);
  Napi::Value AttachDevice(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<GalleryStore> Live(Napi::Env env) const;

  std::shared_ptr<GalleryStore> store_;
  std::shared_ptr<gpu::GpuGallery> device_;  // the GPU copy, when attached
  std::shared_ptr<std::atomic<int>> active_searches_ = std::make_shared<std::atomic<int>>(0);
  int64_t reported_bytes_ = 0;
  LiveRegistration registration_;
  Napi::Env env_;
};

// describeGalleryFile(path) -> Promise<{ dim, count, meta, storage }>: header, footer and meta,
// checked; a gallery checks the meta (the model) before GalleryStore.loadFile reads the rows.
Napi::Value DescribeGalleryFile(const Napi::CallbackInfo& info);

}  // namespace maskface::addon
