#pragma once
// Helpers of the `lpu` command tests: run the real executable in a directory, read its files.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace lpu_cli_test {

inline const std::string kLpu = std::string(LPU_BINARY_DIR) + "/bin/lpu";
inline const fs::path kSrc = LPU_SOURCE_DIR;

struct Result {
  int status = -1;
  std::string out;  // stdout and stderr together
};

// Runs `lpu ARGS` through the shell, in `dir`.
inline Result run_lpu(const std::string& args, const fs::path& dir = fs::temp_directory_path()) {
  REQUIRE(fs::exists(kLpu));
  const std::string cmd = fmt::format("cd '{}' && '{}' {} 2>&1", dir.string(), kLpu, args);
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::path(LPU_BINARY_DIR) / "test-out" / fmt::format("cli_{}_{}", ::getpid(), counter()++);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

inline std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline nlohmann::json json_of(const fs::path& p) { return nlohmann::json::parse(slurp(p)); }

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace lpu_cli_test
