#pragma once
// Host-side measurements shared by the benchmarks: wall-clock seconds and /proc/self/status
// fields (peak memory, VmHWM).
#include <chrono>
#include <fstream>
#include <string>

namespace lpu::bench {

inline double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The value of a /proc/self/status line ("VmHWM:" -> "197120 kB"), "?" when absent.
inline std::string proc_status(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return line.substr(line.find_first_not_of(" \t", std::string(key).size()));
  return "?";
}

}  // namespace lpu::bench
