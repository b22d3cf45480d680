// The text of `runnel --version`: version, CPU features and the kernel variant chosen.
#pragma once

#include <string>

namespace runnel::cli {
std::string version_text();
}
