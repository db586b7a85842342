// Per-environment state (the main thread and each worker thread get their own): the injected
// error class, the Session class (built by loadSession), and the live handles released by the
// cleanup hook.
#pragma once
#include <napi.h>

#include <memory>
#include <unordered_set>

namespace maskface::addon {

// A native handle whose resources the cleanup hook can free.
class Releasable {
 public:
  virtual ~Releasable() = default;
  virtual void Release() = 0;
};

// Shared by the instance data and every handle, so a handle finalised late in environment
// teardown never touches freed instance data.
struct LiveHandles {
  std::unordered_set<Releasable*> handles;
};

struct InstanceData {
  Napi::FunctionReference error_class;
  Napi::FunctionReference session_class;
  Napi::FunctionReference detector_class;
  Napi::FunctionReference journal_class;
  std::shared_ptr<LiveHandles> live = std::make_shared<LiveHandles>();

  static InstanceData* Get(Napi::Env env) { return env.GetInstanceData<InstanceData>(); }
};

// Registers a handle for the lifetime of this object.
class LiveRegistration {
 public:
  LiveRegistration(Napi::Env env, Releasable* handle) : live_(InstanceData::Get(env)->live), handle_(handle) {
    live_->handles.insert(handle_);
  }
  ~LiveRegistration() { live_->handles.erase(handle_); }
  LiveRegistration(const LiveRegistration&) = delete;
  LiveRegistration& operator=(const LiveRegistration&) = delete;

 private:
  std::shared_ptr<LiveHandles> live_;
  Releasable* handle_;
};

}  // namespace maskface::addon
