// The check helper shared by the native test programs: one line per check, failures counted.
#pragma once
#include <cstdio>
#include <string>

namespace maskface::test {

inline int g_checks = 0;
inline int g_failures = 0;

// printf-style formatting of one number, for check messages.
inline std::string Format(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

inline void Check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) ++g_failures;
  std::printf("%s  %s\n", ok ? "ok  " : "FAIL", what.c_str());
  std::fflush(stdout);
}

}  // namespace maskface::test
