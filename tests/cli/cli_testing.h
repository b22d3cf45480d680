// Runs the built `runnel` binary the way a user does and captures what it prints.
#pragma once

#include <string>

namespace runnel::testing {

struct CliResult {
  int status = -1;  // exit status
  std::string out, err;
};

// args are appended to the binary's path as given (quote them yourself); stdin_text is piped in.
CliResult run_cli(const std::string& args, const std::string& stdin_text = "");
std::string shell_quote(const std::string& s);

}  // namespace runnel::testing
