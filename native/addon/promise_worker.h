// Base for every asynchronous native call: runs on a libuv worker thread and settles a promise.
// Failures reject with a MaskFaceError carrying the code and the original message.
#pragma once
#include <napi.h>

#include <chrono>
#include <string>
#include <vector>

#include "addon/errors.h"

namespace maskface::addon {

using Clock = std::chrono::steady_clock;

// Milliseconds since `start`, for the timing records the workers return.
inline double MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

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
      DescribeCurrentException(&code_, &message_, &details_);
      failed_ = true;
    }
  }

  // Replaces AsyncWorker's completion, which rethrows into JS and aborts the process when the
  // environment is a worker thread being terminated. Here, a JS call that cannot run just drops
  // the result: nobody is left to receive it.
  void OnWorkComplete(Napi::Env env, napi_status status) final {
    if (status != napi_cancelled) {
      try {
        Napi::HandleScope scope(env);
        if (failed_) {
          deferred_.Reject(MakeError(env, code_, message_, details_).Value());
        } else {
          try {
            deferred_.Resolve(Result(env));
          } catch (const Napi::Error& e) {
            deferred_.Reject(e.Value());
          }
        }
      } catch (...) {
        // The environment is shutting down.
      }
    }
    Destroy();
  }

  Napi::Promise::Deferred deferred_;
  bool failed_ = false;
  JsCode code_ = JsCode::kInternal;
  std::string message_;
  std::vector<ErrorDetail> details_;
};

}  // namespace maskface::addon
