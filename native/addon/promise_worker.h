// Base for every asynchronous native call: runs on a libuv worker thread and settles a promise.
// Failures reject with a MaskFaceError carrying the code and the original message.
#pragma once
#include <napi.h>

#include <string>

#include "addon/errors.h"

namespace maskface::addon {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* resource_name)
      : Napi::AsyncWorker(env, resource_name), deferred_(Napi::Promise::Deferred::New(env)) {}

  // Queues the work and returns its promise.
  Napi::Promise Start() {
    Queue();
    return deferred_.Promise();
  }

 protected:
  // Worker thread: the work itself. Throw maskface::Error (or any std::exception) to fail.
  virtual void Compute() = 0;
  // Main thread: the value the promise resolves with.
  virtual Napi::Value Result(Napi::Env env) = 0;

 private:
  void Execute() final {
    try {
      Compute();
    } catch (...) {
      std::string message;
      DescribeCurrentException(&code_, &message);
      SetError(message);
    }
  }

  void OnOK() final {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      deferred_.Resolve(Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

  void OnError(const Napi::Error& error) final {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    deferred_.Reject(MakeError(env, code_, error.Message()).Value());
  }

  Napi::Promise::Deferred deferred_;
  JsCode code_ = JsCode::kInternal;
};

}  // namespace maskface::addon
