#include "addon/gallery_wrap.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/errors.h"
#include "addon/promise_worker.h"
#include "addon/typed_arrays.h"
#include "core/gallery_file.h"
#include "core/vector_math.h"
#include "gpu/gpu_gallery.h"
#include "gpu/kernel_library.h"

namespace maskface::addon {
namespace {

constexpr int64_t kMaxDim = 65536;
constexpr int64_t kMaxTopK = 4096;
constexpr int64_t kMaxRows = std::numeric_limits<int32_t>::max();

// Validates every vector first, then writes them (normalised again, so the store only holds
// unit vectors): a bad vector leaves the store untouched. Rows past the end extend the store;
// rows skipped on the way are written dead, so row numbers stay those lib/ allocated.
// With a device copy, the same normalised rows are uploaded to it afterwards.
void PutRows(GalleryStore& store, gpu::GpuGallery* device, const uint32_t* rows, size_t count, const float* vectors,
             int active_searches) {
  const size_t dim = store.dim();
  for (size_t i = 0; i < count; ++i) {
    const float* source = vectors + i * dim;
    if (!AllFinite(source, dim)) {
      throw Error(ErrorCode::kInvalidArgument, "vector " + std::to_string(i) + " contains NaN or Infinity");
    }
    // Finite and not all zero is exactly what L2Normalize below accepts (it sums in double).
    if (std::all_of(source, source + dim, [](float v) { return v == 0.0f; })) {
      throw Error(ErrorCode::kInvalidArgument, "vector " + std::to_string(i) + " has zero length");
    }
    // The CPU search reads a snapshot of the live flags, so lib/ may rewrite a dead row while
    // searches run; the GPU copy has no such snapshot, and lib/ does not rewrite rows of a GPU
    // gallery while any search runs.
    if (device != nullptr && rows[i] < store.rows() && active_searches > 0) {
      throw Error(ErrorCode::kInternal, "row " + std::to_string(rows[i]) + " of a GPU gallery rewritten while a search may read it");
    }
  }
  const std::vector<float> dead(dim, 0.0f);
  std::vector<float> normalised(device != nullptr ? count * dim : dim);
  for (size_t i = 0; i < count; ++i) {
    while (store.rows() < rows[i]) {
      const size_t gap = store.rows();
      store.Put(gap, dead.data());
      store.Kill(gap);
    }
    const float* source = vectors + i * dim;
    float* row = normalised.data() + (device != nullptr ? i * dim : 0);
    std::copy(source, source + dim, row);
    L2Normalize(row, dim);
    store.Put(rows[i], row);
  }
  if (device != nullptr) device->Upload(rows, count, normalised.data());
}

class PutWorker : public PromiseWorker {
 public:
  PutWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<GalleryStore> store,
            std::shared_ptr<gpu::GpuGallery> device, std::shared_ptr<std::atomic<int>> active_searches,
            Napi::Uint32Array rows, Napi::Float32Array vectors)
      : PromiseWorker(env, "maskface:gallery.put"),
        owner_(Napi::Persistent(owner)),
        rows_ref_(Napi::Persistent(rows)),
        vectors_ref_(Napi::Persistent(vectors)),
        store_(std::move(store)),
        device_(std::move(device)),
        active_searches_(std::move(active_searches)),
        rows_(rows.Data()),
        count_(rows.ElementLength()),
        vectors_(vectors.Data()) {}

 protected:
  void Compute() override { PutRows(*store_, device_.get(), rows_, count_, vectors_, active_searches_->load()); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  Napi::ObjectReference owner_;
  Napi::Reference<Napi::Uint32Array> rows_ref_;      // pinned until the copy is done
  Napi::Reference<Napi::Float32Array> vectors_ref_;  // pinned until the copy is done
  std::shared_ptr<GalleryStore> store_;
  std::shared_ptr<gpu::GpuGallery> device_;
  std::shared_ptr<std::atomic<int>> active_searches_;
  const uint32_t* rows_;
  size_t count_;
  const float* vectors_;
};

class SearchWorker : public PromiseWorker {
 public:
  SearchWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<const GalleryStore> store,
               std::shared_ptr<gpu::GpuGallery> device, std::shared_ptr<std::atomic<int>> active_searches,
               Napi::Float32Array queries, SearchParams params)
      : PromiseWorker(env, "maskface:gallery.search"),
        owner_(Napi::Persistent(owner)),
        queries_ref_(Napi::Persistent(queries)),
        store_(std::move(store)),
        device_(std::move(device)),
        active_searches_(std::move(active_searches)),
        params_(params) {
    params_.queries = queries.Data();
    active_searches_->fetch_add(1);
  }
  ~SearchWorker() override { active_searches_->fetch_sub(1); }

 protected:
  void Compute() override {
    const size_t slots = params_.n_queries * params_.k;
    rows_.resize(slots);
    scores_.resize(slots);
    counts_.resize(params_.n_queries);
    if (device_) {
      device_->Search(params_.queries, params_.n_queries, static_cast<int>(params_.k), params_.threshold, rows_.data(),
                      scores_.data(), counts_.data());
    } else {
      store_->Search(params_, TopKOutput{rows_.data(), scores_.data(), counts_.data()});
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    auto rows = Napi::Int32Array::New(env, rows_.size());
    std::copy(rows_.begin(), rows_.end(), rows.Data());
    auto scores = Napi::Float32Array::New(env, scores_.size());
    std::copy(scores_.begin(), scores_.end(), scores.Data());
    auto counts = Napi::Uint32Array::New(env, counts_.size());
    std::copy(counts_.begin(), counts_.end(), counts.Data());
    result.Set("rows", rows);
    result.Set("scores", scores);
    result.Set("counts", counts);
    return result;
  }

 private:
  Napi::ObjectReference owner_;
  Napi::Reference<Napi::Float32Array> queries_ref_;
  std::shared_ptr<const GalleryStore> store_;
  std::shared_ptr<gpu::GpuGallery> device_;
  std::shared_ptr<std::atomic<int>> active_searches_;
  SearchParams params_;
  std::vector<int32_t> rows_;
  std::vector<float> scores_;
  std::vector<uint32_t> counts_;
};

// Writes the rows lib/ lists (live rows, in id order) to a gallery file on a worker thread. It
// counts as a search in flight: lib/ reuses no row while it runs, so every row it reads still
// holds the vector of the id lib/ wrote for it.
class SaveWorker : public PromiseWorker {
 public:
  SaveWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<const GalleryStore> store,
             std::shared_ptr<std::atomic<int>> active_searches, std::string path, Napi::Uint32Array rows,
             Napi::Uint8Array ids, std::string meta)
      : PromiseWorker(env, "maskface:gallery.save"),
        owner_(Napi::Persistent(owner)),
        rows_ref_(Napi::Persistent(rows)),
        store_(std::move(store)),
        active_searches_(std::move(active_searches)),
        path_(std::move(path)),
        rows_(rows.Data()),
        count_(rows.ElementLength()),
        ids_(ids.Data(), ids.Data() + ids.ElementLength()),
        meta_(std::move(meta)) {
    active_searches_->fetch_add(1);
  }
  ~SaveWorker() override { active_searches_->fetch_sub(1); }

 protected:
  void Compute() override {
    const GalleryStore& store = *store_;
    // An f16 gallery writes its half floats as they are (rounding them again changes nothing); an
    // int8 gallery its f32 vectors (its codes are made again on load).
    const auto storage = store.storage() == VectorStorage::kF16 ? gallery_file::Storage::kF16 : gallery_file::Storage::kF32;
    gallery_file::Save(path_, static_cast<uint32_t>(store.dim()), count_, meta_, ids_,
                       [&](uint64_t index, float* out) { store.Get(rows_[index], out); }, storage);
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  Napi::ObjectReference owner_;
  Napi::Reference<Napi::Uint32Array> rows_ref_;  // pinned until the file is written
  std::shared_ptr<const GalleryStore> store_;
  std::shared_ptr<std::atomic<int>> active_searches_;
  std::string path_;
  const uint32_t* rows_;
  size_t count_;
  std::vector<uint8_t> ids_;
  std::string meta_;
};

// Reads and checks a gallery file's header, footer and meta on a worker thread.
class DescribeFileWorker : public PromiseWorker {
 public:
  DescribeFileWorker(Napi::Env env, std::string path)
      : PromiseWorker(env, "maskface:gallery.describe"), path_(std::move(path)) {}

 protected:
  void Compute() override { description_ = gallery_file::LoadDescription(path_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("dim", Napi::Number::New(env, description_.dim));
    result.Set("count", Napi::Number::New(env, static_cast<double>(description_.count)));
    result.Set("meta", Napi::String::New(env, description_.meta));
    result.Set("storage", description_.storage == gallery_file::Storage::kF16 ? "f16" : "f32");
    return result;
  }

 private:
  std::string path_;
  gallery_file::Contents description_;
};

// Streams a gallery file's rows into an empty store on a worker thread (rows 0..count-1, each
// normalised as PutRows does); only the ids come back to JS. The file must still hold the meta
// lib/ checked (describeGalleryFile, which also gave the count lib/ reserved) and the store's dim.
// On failure the store holds part of the file: lib/ drops it.
class LoadFileWorker : public PromiseWorker {
 public:
  LoadFileWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<GalleryStore> store,
                 std::shared_ptr<gpu::GpuGallery> device, std::string path, std::string expected_meta)
      : PromiseWorker(env, "maskface:gallery.load"),
        owner_(Napi::Persistent(owner)),
        store_(std::move(store)),
        device_(std::move(device)),
        path_(std::move(path)),
        expected_meta_(std::move(expected_meta)) {}

 protected:
  void Compute() override {
    const size_t dim = store_->dim();
    auto changed = [&] {
      throw Error(ErrorCode::kIo, "Gallery file " + path_ + " changed while it was loaded", {ErrorDetail::Text("path", path_)});
    };
    std::vector<float> normalised;
    std::vector<uint32_t> device_rows;
    contents_ = gallery_file::LoadStreaming(path_, [&](uint64_t first, uint64_t n, uint32_t file_dim, const float* values) {
      if (file_dim != dim) changed();
      normalised.assign(values, values + n * dim);
      for (uint64_t r = 0; r < n; ++r) {
        L2Normalize(normalised.data() + r * dim, dim);  // finite and not all zeros: the reader checked
        store_->Put(first + r, normalised.data() + r * dim);
      }
      if (device_ != nullptr) {
        device_rows.resize(n);
        for (uint64_t r = 0; r < n; ++r) device_rows[r] = static_cast<uint32_t>(first + r);
        device_->Upload(device_rows.data(), n, normalised.data());
      }
    });
    if (contents_.dim != dim || contents_.meta != expected_meta_) changed();
  }

  Napi::Value Result(Napi::Env env) override {
    GalleryWrap::Unwrap(owner_.Value())->ReportMemory(env);
    Napi::Object result = Napi::Object::New(env);
    result.Set("count", Napi::Number::New(env, static_cast<double>(contents_.count)));
    result.Set("ids", MoveToJs(env, std::move(contents_.ids)));
    return result;
  }

 private:
  Napi::ObjectReference owner_;  // keeps the GalleryStore wrapper alive while the load runs
  std::shared_ptr<GalleryStore> store_;
  std::shared_ptr<gpu::GpuGallery> device_;
  std::string path_;
  std::string expected_meta_;
  gallery_file::Contents contents_;
};

// Shared checks of put/putAsync arguments.
void CheckPutArgs(Napi::Env env, const GalleryStore& store, Napi::Uint32Array rows, Napi::Float32Array vectors) {
  const size_t count = rows.ElementLength();
  if (vectors.ElementLength() != count * store.dim()) {
    throw MakeError(env, JsCode::kDimensionMismatch,
                    "expected " + std::to_string(count) + " x " + std::to_string(store.dim()) + " values, got " +
                        std::to_string(vectors.ElementLength()));
  }
  for (size_t i = 0; i < count; ++i) {
    if (rows[i] >= kMaxRows) ThrowInvalid(env, "row " + std::to_string(rows[i]) + " is out of range");
  }
}

}  // namespace

Napi::Function GalleryWrap::DefineClass(Napi::Env env) {
  return ObjectWrap<GalleryWrap>::DefineClass(env, "GalleryStore",
                                              {
                                                  InstanceMethod<&GalleryWrap::Put>("put"),
                                                  InstanceMethod<&GalleryWrap::PutAsync>("putAsync"),
                                                  InstanceMethod<&GalleryWrap::Kill>("kill"),
                                                  InstanceMethod<&GalleryWrap::LiveFlags>("liveFlags"),
                                                  InstanceMethod<&GalleryWrap::GetRows>("getRows"),
                                                  InstanceMethod<&GalleryWrap::Reserve>("reserve"),
                                                  InstanceMethod<&GalleryWrap::Search>("search"),
                                                  InstanceMethod<&GalleryWrap::Stats>("stats"),
                                                  InstanceMethod<&GalleryWrap::Save>("save"),
                                                  InstanceMethod<&GalleryWrap::LoadFile>("loadFile"),
                                                  InstanceMethod<&GalleryWrap::AttachDevice>("attachDevice"),
                                                  InstanceMethod<&GalleryWrap::Dispose>("dispose"),
                                              });
}

GalleryWrap::GalleryWrap(const Napi::CallbackInfo& info)
    : ObjectWrap<GalleryWrap>(info), registration_(info.Env(), this), env_(info.Env()) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    size_t dim = static_cast<size_t>(IntegerArg(env, info[0], "dim", 1, kMaxDim));
    VectorStorage storage = VectorStorage::kF32;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      const std::string name = StringArg(env, info[1], "storage");
      if (name == "f16") storage = VectorStorage::kF16;
      else if (name == "int8") storage = VectorStorage::kI8;
      else if (name != "f32") ThrowInvalid(env, "storage must be 'f32', 'f16' or 'int8'");
    }
    store_ = std::make_shared<GalleryStore>(dim, 0, storage);
  });
}

GalleryWrap::~GalleryWrap() {
  if (reported_bytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env_, -reported_bytes_);
}

void GalleryWrap::Release() {
  store_.reset();
  device_.reset();
}

std::shared_ptr<GalleryStore> GalleryWrap::Live(Napi::Env env) const {
  if (!store_) throw MakeError(env, JsCode::kDisposed, "the gallery has been disposed");
  return store_;
}

void GalleryWrap::ReportMemory(Napi::Env env) {
  const int64_t bytes = store_ ? static_cast<int64_t>(store_->bytes()) : 0;
  if (bytes != reported_bytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(env, bytes - reported_bytes_);
    reported_bytes_ = bytes;
  }
}

// put(rows: Uint32Array, vectors: Float32Array): synchronous, for a few rows
Napi::Value GalleryWrap::Put(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto store = Live(env);
    auto rows = TypedArrayArg<uint32_t>(env, info[0], "rows");
    auto vectors = TypedArrayArg<float>(env, info[1], "vectors");
    CheckPutArgs(env, *store, rows, vectors);
    PutRows(*store, device_.get(), rows.Data(), rows.ElementLength(), vectors.Data(), active_searches_->load());
    ReportMemory(env);
    return env.Undefined();
  });
}

// putAsync(rows, vectors) -> Promise<void>: the copy runs on a worker thread; both arrays stay
// pinned until it is done.
Napi::Value GalleryWrap::PutAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto store = Live(env);
    auto rows = TypedArrayArg<uint32_t>(env, info[0], "rows");
    auto vectors = TypedArrayArg<float>(env, info[1], "vectors");
    CheckPutArgs(env, *store, rows, vectors);
    // Reserve here, on the main thread, so the memory is reported before the copy starts.
    size_t high = store->rows();
    for (size_t i = 0; i < rows.ElementLength(); ++i) high = std::max<size_t>(high, rows[i] + 1);
    store->Reserve(high);
    ReportMemory(env);
    return (new PutWorker(env, Value(), store, device_, active_searches_, rows, vectors))->Start();
  });
}

// kill(rows: Uint32Array) -> number of rows that were live
Napi::Value GalleryWrap::Kill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto store = Live(env);
    auto rows = TypedArrayArg<uint32_t>(env, info[0], "rows");
    std::vector<uint32_t> killed;
    for (size_t i = 0; i < rows.ElementLength(); ++i) {
      if (rows[i] < store->rows() && store->Kill(rows[i])) killed.push_back(rows[i]);
    }
    if (device_) device_->Remove(killed.data(), killed.size());
    return Napi::Number::New(env, static_cast<double>(killed.size()));
  });
}

// liveFlags(rows: Uint32Array) -> Uint8Array: 1 where the row holds a written vector that is live
Napi::Value GalleryWrap::LiveFlags(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto store = Live(env);
    auto rows = TypedArrayArg<uint32_t>(env, info[0], "rows");
    auto flags = Napi::Uint8Array::New(env, rows.ElementLength());
    for (size_t i = 0; i < rows.ElementLength(); ++i) flags[i] = store->IsLive(rows[i]) ? 1 : 0;
    return flags;
  });
}

// getRows(rows: Uint32Array) -> Float32Array: the vectors of live rows, row after row
Napi::Value GalleryWrap::GetRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto store = Live(env);
    auto rows = TypedArrayArg<uint32_t>(env, info[0], "rows");
    for (size_t i = 0; i < rows.ElementLength(); ++i) {
      if (!store->IsLive(rows[i])) ThrowInvalid(env, "row " + std::to_string(rows[i]) + " is not live");
    }
    auto vectors = Napi::Float32Array::New(env, rows.ElementLength() * store->dim());
    for (size_t i = 0; i < rows.ElementLength(); ++i) store->Get(rows[i], vectors.Data() + i * store->dim());
    return vectors;
  });
}

Napi::Value GalleryWrap::Reserve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto store = Live(env);
    store->Reserve(static_cast<size_t>(IntegerArg(env, info[0], "capacity", 0, kMaxRows)));
    ReportMemory(env);
    return env.Undefined();
  });
}

// search(queries: Float32Array, count, k, threshold, threads) -> Promise<{rows, scores, counts}>
Napi::Value GalleryWrap::Search(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto store = Live(env);
    auto queries = TypedArrayArg<float>(env, info[0], "queries");
    SearchParams params;
    params.n_queries = static_cast<size_t>(IntegerArg(env, info[1], "count", 1, kMaxRows));
    params.k = static_cast<size_t>(IntegerArg(env, info[2], "k", 1, kMaxTopK));
    params.threshold = static_cast<float>(NumberArg(env, info[3], "threshold"));
    params.n_threads = static_cast<int>(IntegerArg(env, info[4], "threads", 1, 1024));
    if (queries.ElementLength() != params.n_queries * store->dim()) {
      throw MakeError(env, JsCode::kDimensionMismatch,
                      "queries hold " + std::to_string(queries.ElementLength()) + " values; expected " +
                          std::to_string(params.n_queries) + " x " + std::to_string(store->dim()));
    }
    if (!AllFinite(queries.Data(), queries.ElementLength())) ThrowInvalid(env, "queries contain NaN or Infinity");
    if (device_ && params.k > MASKFACE_CUDA_MAX_TOP_K) {
      ThrowInvalid(env, "k is " + std::to_string(params.k) + "; a GPU gallery returns at most " +
                            std::to_string(MASKFACE_CUDA_MAX_TOP_K));
    }
    return (new SearchWorker(env, Value(), store, device_, active_searches_, queries, params))->Start();
  });
}

// save(path, rows: Uint32Array, ids: Uint8Array, meta: string) -> Promise<void>
Napi::Value GalleryWrap::Save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto store = Live(env);
    std::string path = PathArg(env, info[0], "path");
    auto rows = TypedArrayArg<uint32_t>(env, info[1], "rows");
    auto ids = TypedArrayArg<uint8_t>(env, info[2], "ids");
    std::string meta = StringArg(env, info[3], "meta");
    for (size_t i = 0; i < rows.ElementLength(); ++i) {
      if (!store->IsLive(rows[i])) ThrowInvalid(env, "row " + std::to_string(rows[i]) + " is not live");
    }
    return (new SaveWorker(env, Value(), store, active_searches_, std::move(path), rows, ids, std::move(meta)))->Start();
  });
}

Napi::Value DescribeGalleryFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value { return (new DescribeFileWorker(env, PathArg(env, info[0], "path")))->Start(); });
}

// loadFile(path, meta) -> Promise<{count, ids: Uint8Array}>: an empty store only.
Napi::Value GalleryWrap::LoadFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto store = Live(env);
    std::string path = PathArg(env, info[0], "path");
    std::string meta = StringArg(env, info[1], "meta");
    if (store->rows() != 0) ThrowInvalid(env, "loadFile needs an empty store");
    return (new LoadFileWorker(env, Value(), store, device_, std::move(path), std::move(meta)))->Start();
  });
}

Napi::Value GalleryWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto store = Live(env);
    Napi::Object stats = Napi::Object::New(env);
    stats.Set("rows", static_cast<double>(store->rows()));
    stats.Set("live", static_cast<double>(store->live()));
    stats.Set("bytes", static_cast<double>(store->bytes()));
    stats.Set("reservedBytes", static_cast<double>(store->reserved_bytes()));
    stats.Set("dim", static_cast<double>(store->dim()));
    stats.Set("deviceBytes", device_ ? static_cast<double>(device_->DeviceBytes()) : 0.0);
    const SearchStats searches = store->search_stats();
    stats.Set("int8Queries", static_cast<double>(searches.int8_queries));
    stats.Set("int8Widened", static_cast<double>(searches.int8_widened));
    stats.Set("int8ExactScans", static_cast<double>(searches.int8_exact_scans));
    stats.Set("int8Candidates", static_cast<double>(searches.int8_candidates));
    return stats;
  });
}

// attachDevice(deviceId): keeps a copy of the rows on that GPU (libmaskface_cuda.so must be
// loaded; lib/ checks with gpuStatus() first) and searches there from now on. Rows already
// written are uploaded.
Napi::Value GalleryWrap::AttachDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto store = Live(env);
    const int device = static_cast<int>(IntegerArg(env, info[0], "deviceId", 0, 1023));
    if (device_) ThrowInvalid(env, "the gallery already has a GPU copy");
    const gpu::KernelLibrary* library = gpu::LoadedKernelLibrary();
    if (library == nullptr) {
      throw MakeError(env, JsCode::kProviderUnavailable, "libmaskface_cuda.so is not loaded: no GPU gallery");
    }
    auto copy = std::make_shared<gpu::GpuGallery>(*library, device, store->dim());
    std::vector<float> row(store->dim());
    for (uint32_t r = 0; r < store->rows(); ++r) {
      if (!store->IsLive(r)) continue;
      store->Get(r, row.data());
      copy->Upload(&r, 1, row.data());
    }
    device_ = std::move(copy);
    return env.Undefined();
  });
}

Napi::Value GalleryWrap::Dispose(const Napi::CallbackInfo& info) {
  Release();
  ReportMemory(info.Env());
  return info.Env().Undefined();
}

}  // namespace maskface::addon
