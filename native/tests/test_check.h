// The check helper shared by the native test programs: one line per check, failures counted.
#pragma once
#include <cstdio>
#include <string>

namespace maskface::test {

inline int g_checks = 0;
inline int g_failures = 0;

inline void Check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) ++g_failures;
  std::printf("%s  %s\n", ok ? "ok  " : "FAIL", what.c_str());
  std::fflush(stdout);
}

}  // namespace maskface::test
