// Helpers shared by all test executables: where the sources and ../shared live, temp dirs,
// JSON-lines reading.
#pragma once

#include <string>
#include <vector>

namespace runnel::testing {

// The project root and the shared/ folder beside it (tests read golden files from there).
std::string source_dir();
std::string shared_dir();
// build/runnel.
std::string runnel_binary();
// A fresh empty directory under the system temp dir, removed at process exit.
std::string make_temp_dir(const std::string& tag);
// Lines of a file, without the trailing newline; empty lines skipped.
std::vector<std::string> read_lines(const std::string& path);
// The line starting with `key` ("Rss:", "VmFlags:") of the /proc/self/smaps entry of the mapping
// that holds p; "" when there is none.
std::string smaps_line(const void* p, const std::string& key);

}  // namespace runnel::testing
