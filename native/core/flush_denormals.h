// Flush-to-zero for the duration of a scope, on the calling thread.
#pragma once
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace maskface {

// Flushes denormal floats to zero on the calling thread for one run, then restores the caller's
// mode. Published face models carry denormal weights (fr_feature.onnx: 8938 of them); without
// this, x86 cores take microcode assists on them and a run is several times slower. ONNX
// Runtime's own setting (session.set_denormal_as_zero) covers its pool threads and the thread
// that created the session, not a libuv worker that calls Run.
class ScopedFlushDenormals {
 public:
#if defined(__x86_64__) || defined(__i386__)
  ScopedFlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero); }
  ~ScopedFlushDenormals() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFlushToZero = 0x8000;
  static constexpr unsigned kDenormalsAreZero = 0x0040;
  unsigned saved_;
#endif
};

}  // namespace maskface
