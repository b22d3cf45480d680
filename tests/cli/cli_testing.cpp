#include "cli_testing.h"

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/mmap.h"
#include "testing/testing.h"

namespace runnel::testing {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

CliResult run_cli(const std::string& args, const std::string& stdin_text) {
  static const std::string dir = make_temp_dir("cli");
  const std::string in = dir + "/stdin", out = dir + "/stdout", err = dir + "/stderr";
  write_file_atomic(in, stdin_text);
  std::string cmd = runnel_binary() + " " + args + " < " + in + " > " + out + " 2> " + err;
  CliResult r;
  int raw = std::system(cmd.c_str());
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

}  // namespace runnel::testing
