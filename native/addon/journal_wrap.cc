#include "addon/journal_wrap.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <random>

#include "addon/args.h"
#include "addon/errors.h"
#include "addon/promise_worker.h"
#include "addon/typed_arrays.h"
#include "core/file_io.h"

namespace maskface::addon {
namespace {

constexpr double kMaxSeq = 9007199254740991.0;  // 2^53 - 1: sequence numbers stay exact in JS

std::string Hex(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

bool ParseHex(const std::string& text, uint64_t* value) {
  if (text.size() != 16) return false;
  *value = 0;
  for (char c : text) {
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return false;
    *value = *value << 4 | static_cast<uint64_t>(digit);
  }
  return true;
}

class AppendWorker : public PromiseWorker {
 public:
  AppendWorker(Napi::Env env, std::shared_ptr<gallery_journal::Writer> writer, Napi::Uint8Array payloads,
               Napi::Uint32Array lengths, uint64_t first_seq)
      : PromiseWorker(env, "maskface:gallery.journal"),
        writer_(std::move(writer)),
        payloads_ref_(Napi::Persistent(payloads)),
        lengths_ref_(Napi::Persistent(lengths)),
        payloads_(payloads.Data()),
        lengths_(lengths.Data()),
        count_(lengths.ElementLength()),
        first_seq_(first_seq) {}

 protected:
  void Compute() override { writer_->Append(payloads_, lengths_, count_, first_seq_); }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(writer_->bytes())); }

 private:
  std::shared_ptr<gallery_journal::Writer> writer_;
  Napi::Reference<Napi::Uint8Array> payloads_ref_;  // pinned until written
  Napi::Reference<Napi::Uint32Array> lengths_ref_;
  const uint8_t* payloads_;
  const uint32_t* lengths_;
  size_t count_;
  uint64_t first_seq_;
};

class RebaseWorker : public PromiseWorker {
 public:
  RebaseWorker(Napi::Env env, std::shared_ptr<gallery_journal::Writer> writer, uint64_t base_seq)
      : PromiseWorker(env, "maskface:gallery.journal"), writer_(std::move(writer)), base_seq_(base_seq) {}

 protected:
  void Compute() override { writer_->Rebase(base_seq_); }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(writer_->bytes())); }

 private:
  std::shared_ptr<gallery_journal::Writer> writer_;
  uint64_t base_seq_;
};

}  // namespace

class OpenJournalWorker : public PromiseWorker {
 public:
  OpenJournalWorker(Napi::Env env, std::string path, gallery_journal::Follows file)
      : PromiseWorker(env, "maskface:gallery.open"), path_(std::move(path)), file_(file) {}

 protected:
  void Compute() override {
    using gallery_journal::Header;
    using gallery_journal::Writer;
    struct stat st;
    if (stat(path_.c_str(), &st) != 0) {
      if (errno != ENOENT) file_io::ThrowIo("Cannot open gallery journal " + path_, path_, errno);
      Create();
      return;
    }
    contents_ = gallery_journal::Read(path_);
    gallery_journal::CheckFollows(contents_, file_, path_);
    if (!file_.has_lineage && file_.file_exists) {
      // An empty journal left by an open that ended before the file named it: start afresh.
      contents_ = {};
      Create();
      return;
    }
    const uint64_t last = contents_.seqs.empty() ? contents_.header.base_seq : contents_.seqs.back();
    if (last < file_.file_seq) {
      // The file holds every change of this journal (a save that ended before its rebase): start
      // over from the file.
      const uint64_t lineage = contents_.header.lineage;
      contents_ = {};
      file_.has_lineage = true;
      file_.lineage = lineage;
      Create();
      return;
    }
    writer_ = Writer::Open(path_, contents_);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object journal = InstanceData::Get(env)->journal_class.New({});
    JournalWrap::Unwrap(journal)->writer_ = std::move(writer_);
    Napi::Object result = Napi::Object::New(env);
    result.Set("journal", journal);
    result.Set("lineage", Hex(contents_.header.lineage));
    result.Set("baseSeq", static_cast<double>(contents_.header.base_seq));
    result.Set("ops", MoveToJs(env, std::move(contents_.ops)));
    result.Set("ids", MoveToJs(env, std::move(contents_.ids)));
    result.Set("vectors", MoveToJs(env, std::move(contents_.vectors)));
    result.Set("tornBytes", static_cast<double>(contents_.torn_bytes));
    return result;
  }

 private:
  void Create() {
    gallery_journal::Header header;
    header.dim = file_.dim;
    header.base_seq = file_.file_seq;
    if (file_.has_lineage) {
      header.lineage = file_.lineage;
    } else {
      std::random_device random;
      header.lineage = (uint64_t{random()} << 32) | random();
    }
    writer_ = gallery_journal::Writer::Create(path_, header);
    contents_.header = header;
  }

  std::string path_;
  gallery_journal::Follows file_;
  gallery_journal::Contents contents_;
  std::unique_ptr<gallery_journal::Writer> writer_;
};

Napi::Function JournalWrap::DefineClass(Napi::Env env) {
  return ObjectWrap<JournalWrap>::DefineClass(env, "GalleryJournal",
                                              {
                                                  InstanceMethod<&JournalWrap::Append>("append"),
                                                  InstanceMethod<&JournalWrap::Rebase>("rebase"),
                                                  InstanceMethod<&JournalWrap::Stats>("stats"),
                                                  InstanceMethod<&JournalWrap::Close>("close"),
                                              });
}

JournalWrap::JournalWrap(const Napi::CallbackInfo& info)
    : ObjectWrap<JournalWrap>(info), registration_(info.Env(), this) {}

void JournalWrap::Release() { writer_.reset(); }

std::shared_ptr<gallery_journal::Writer> JournalWrap::Live(Napi::Env env) const {
  if (!writer_) throw MakeError(env, JsCode::kDisposed, "the gallery journal has been closed");
  return writer_;
}

Napi::Value JournalWrap::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    std::string path = PathArg(env, info[0], "path");
    gallery_journal::Follows file;
    file.dim = static_cast<uint32_t>(IntegerArg(env, info[1], "dim", 1, 65536));
    if (!info[2].IsNull()) {
      if (!ParseHex(StringArg(env, info[2], "lineage"), &file.lineage)) ThrowInvalid(env, "lineage must be 16 hex digits");
      file.has_lineage = true;
    }
    file.file_seq = static_cast<uint64_t>(IntegerArg(env, info[3], "fileSeq", 0, static_cast<int64_t>(kMaxSeq)));
    file.file_exists = info[4].ToBoolean();
    return (new OpenJournalWorker(env, std::move(path), file))->Start();
  });
}

// append(payloads: Uint8Array, lengths: Uint32Array, firstSeq) -> Promise<bytes>
Napi::Value JournalWrap::Append(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto writer = Live(env);
    auto payloads = TypedArrayArg<uint8_t>(env, info[0], "payloads");
    auto lengths = TypedArrayArg<uint32_t>(env, info[1], "lengths");
    const auto first_seq = static_cast<uint64_t>(IntegerArg(env, info[2], "firstSeq", 1, static_cast<int64_t>(kMaxSeq)));
    uint64_t total = 0;
    for (size_t i = 0; i < lengths.ElementLength(); ++i) total += lengths[i];
    if (total != payloads.ByteLength()) ThrowInvalid(env, "lengths do not add up to the payload bytes");
    return (new AppendWorker(env, std::move(writer), payloads, lengths, first_seq))->Start();
  });
}

// rebase(baseSeq) -> Promise<bytes>
Napi::Value JournalWrap::Rebase(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto writer = Live(env);
    const auto base_seq = static_cast<uint64_t>(IntegerArg(env, info[0], "baseSeq", 0, static_cast<int64_t>(kMaxSeq)));
    return (new RebaseWorker(env, std::move(writer), base_seq))->Start();
  });
}

// stats() -> { bytes, lastSeq, baseSeq }
Napi::Value JournalWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto writer = Live(env);
    Napi::Object stats = Napi::Object::New(env);
    stats.Set("bytes", static_cast<double>(writer->bytes()));
    stats.Set("lastSeq", static_cast<double>(writer->last_seq()));
    stats.Set("baseSeq", static_cast<double>(writer->header().base_seq));
    return stats;
  });
}

// close(): the file closes once no append or rebase is running.
Napi::Value JournalWrap::Close(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}

}  // namespace maskface::addon
