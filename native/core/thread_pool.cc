#include "core/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

namespace maskface {
namespace {

// One ParallelFor call. Runners (the caller and any pool threads that join) claim task indices
// from next_task_ until none are left; the caller returns once every runner has left.
struct Job {
  Job(size_t n_tasks, const std::function<void(size_t)>& fn) : n_tasks_(n_tasks), fn_(fn) {}

  // Runs tasks until none are left or one has failed.
  void RunTasks() {
    for (;;) {
      const size_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
      if (task >= n_tasks_) return;
      try {
        fn_(task);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        next_task_.store(n_tasks_, std::memory_order_relaxed);  // skip the tasks not started yet
      }
    }
  }

  void LeaveAsHelper() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--helpers_running_ == 0) helpers_done_.notify_all();
  }

  const size_t n_tasks_;
  const std::function<void(size_t)>& fn_;
  std::atomic<size_t> next_task_{0};
  size_t helpers_wanted_ = 0;   // guarded by the pool mutex
  size_t helpers_running_ = 0;  // incremented under the pool mutex, decremented under mutex_
  std::mutex mutex_;
  std::condition_variable helpers_done_;
  std::exception_ptr error_;
};

// Process-wide workers, created on first use and never destroyed: a Node process may exit while
// a worker is parked, and joining threads from static destructors at exit is fragile.
class ThreadPool {
 public:
  static ThreadPool& Instance() {
    static ThreadPool* pool = new ThreadPool(std::max(1, HardwareThreads() - 1));
    return *pool;
  }

  void Run(size_t n_tasks, int n_threads, const std::function<void(size_t)>& fn) {
    auto job = std::make_shared<Job>(n_tasks, fn);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job->helpers_wanted_ = std::min<size_t>(static_cast<size_t>(n_threads) - 1, n_tasks - 1);
      queue_.push_back(job);
    }
    work_available_.notify_all();

    job->RunTasks();

    // No helper may join after this point, so waiting for the running ones is enough.
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = std::find(queue_.begin(), queue_.end(), job);
      if (it != queue_.end()) queue_.erase(it);
    }
    {
      std::unique_lock<std::mutex> lock(job->mutex_);
      job->helpers_done_.wait(lock, [&] { return job->helpers_running_ == 0; });
    }
    if (job->error_) std::rethrow_exception(job->error_);
  }

 private:
  explicit ThreadPool(int n_workers) {
    for (int i = 0; i < n_workers; ++i) std::thread([this] { WorkerLoop(); }).detach();
  }

  void WorkerLoop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_available_.wait(lock, [&] { return !queue_.empty(); });
        job = queue_.front();
        {
          std::lock_guard<std::mutex> job_lock(job->mutex_);
          ++job->helpers_running_;
        }
        if (--job->helpers_wanted_ == 0) queue_.pop_front();
      }
      job->RunTasks();
      job->LeaveAsHelper();
    }
  }

  std::mutex mutex_;
  std::condition_variable work_available_;
  std::deque<std::shared_ptr<Job>> queue_;
};

}  // namespace

void ParallelFor(size_t n_tasks, int n_threads, const std::function<void(size_t task)>& fn) {
  if (n_tasks == 0) return;
  if (n_threads <= 1 || n_tasks == 1) {
    for (size_t task = 0; task < n_tasks; ++task) fn(task);
    return;
  }
  ThreadPool::Instance().Run(n_tasks, n_threads, fn);
}

int HardwareThreads() {
  // The affinity mask honours taskset and cpusets, which hardware_concurrency() ignores.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace maskface
