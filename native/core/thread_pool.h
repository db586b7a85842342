// A process-wide pool for data-parallel loops inside one native call (for example one gallery
// scan split across cores). The calling thread always takes part, so a call completes even when
// every pool thread is busy with another caller's work: concurrent callers never deadlock.
#pragma once
#include <cstddef>
#include <functional>

namespace maskface {

// Runs fn(task) for every task in [0, n_tasks) using up to n_threads threads (the caller
// included) and returns when all have finished. Exceptions thrown by fn are rethrown here (the
// first one). n_threads <= 1 runs inline.
void ParallelFor(size_t n_tasks, int n_threads, const std::function<void(size_t task)>& fn);

// Number of hardware threads (at least 1).
int HardwareThreads();

}  // namespace maskface
