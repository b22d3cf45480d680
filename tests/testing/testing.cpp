#include "testing/testing.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "base/error.h"

namespace runnel::testing {
namespace fs = std::filesystem;

std::string source_dir() { return RUNNEL_SOURCE_DIR; }

std::string shared_dir() {
  if (const char* env = std::getenv("RUNNEL_SHARED_DIR")) return env;
  return (fs::path(RUNNEL_SOURCE_DIR).parent_path() / "shared").string();
}

std::string runnel_binary() { return std::string(RUNNEL_BINARY_DIR) + "/runnel"; }

namespace {
std::vector<std::string>& temp_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}
void remove_temp_dirs() {
  for (const auto& d : temp_dirs()) {
    std::error_code ec;
    fs::remove_all(d, ec);
  }
}
}  // namespace

std::string make_temp_dir(const std::string& tag) {
  static std::once_flag once;
  // Construct the list before registering its cleanup, so it is destroyed after the cleanup runs.
  std::call_once(once, [] {
    temp_dirs();
    std::atexit(remove_temp_dirs);
  });
  std::string templ = (fs::temp_directory_path() / ("runnel-test-" + tag + "-XXXXXX")).string();
  char* dir = mkdtemp(templ.data());
  if (dir == nullptr) fail("test", "cannot create temp dir ", templ);
  temp_dirs().push_back(dir);
  return dir;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("test", "cannot open ", path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string smaps_line(const void* p, const std::string& key) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  std::string line;
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {
      inside = lo <= at && at < hi;
    } else if (inside && line.rfind(key, 0) == 0) {
      return line;
    }
  }
  return "";
}

}  // namespace runnel::testing
