// JS handle for a gallery journal (native/core/gallery_journal.h): appends and rebases run on a
// worker thread. lib/api/gallery.ts orders the calls and encodes the record payloads.
#pragma once
#include <napi.h>

#include <memory>

#include "addon/instance_data.h"
#include "core/gallery_journal.h"

namespace maskface::addon {

class JournalWrap : public Napi::ObjectWrap<JournalWrap>, public Releasable {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit JournalWrap(const Napi::CallbackInfo& info);
  void Release() override;

  // openGalleryJournal(path, dim, lineage: string | null, fileSeq, fileExists) -> Promise<{ journal, lineage,
  // baseSeq, ops, ids, vectors, tornBytes }>: reads and checks the journal at `path` against its
  // gallery file (CheckFollows) and opens it for appends; creates an empty one when there is none.
  // `lineage` is 16 hex digits, or null for a file that names none (a new lineage is then made).
  static Napi::Value Open(const Napi::CallbackInfo& info);

 private:
  Napi::Value Append(const Napi::CallbackInfo& info);
  Napi::Value Rebase(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  std::shared_ptr<gallery_journal::Writer> Live(Napi::Env env) const;

  std::shared_ptr<gallery_journal::Writer> writer_;
  LiveRegistration registration_;

  friend class OpenJournalWorker;
};

}  // namespace maskface::addon
