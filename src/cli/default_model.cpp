#include "cli/default_model.h"

#include <unistd.h>

#include <filesystem>

#include "base/error.h"

namespace runnel::cli {

std::string default_model_path() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) candidates.push_back(exe.parent_path() / "models" / "default");
  candidates.push_back(fs::path(RUNNEL_SOURCE_DIR) / "models" / "default");
  for (const fs::path& p : candidates) {
    if (fs::exists(p / "config.json")) return p.string();
  }
  fail("run", "the default model is missing (looked in ", candidates[0].string(), " and ",
       candidates.back().string(), "); name a model: runnel run MODEL PROMPT");
}

}  // namespace runnel::cli
