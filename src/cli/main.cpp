// runnel's entry point: parses the command line and runs one registered subcommand.
// User errors print "runnel: <message>" on stderr and exit 1; --help and no arguments print help.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "base/error.h"
#include "cli/command.h"
#include "cli/version.h"

namespace runnel::cli {

std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace runnel::cli

int main(int argc, char** argv) {
  using namespace runnel::cli;
  CLI::App app{"runnel: run LLMs locally, fast, on the CPU"};
  app.set_version_flag("--version,-v", [] { return version_text(); });
  app.require_subcommand(0, 1);

  auto& commands = command_registry();
  std::stable_sort(commands.begin(), commands.end(),
                   [](const Command& a, const Command& b) { return a.order < b.order; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  for (const Command& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    runners.emplace_back(sub, c.setup(*sub));
  }

  if (argc <= 1) {
    std::cout << app.help();
    return 0;
  }
  // --version runs inside parse and names the kernel variant, which reads RUNNEL_CPU: an unknown
  // or unsupported value is a user error there too, not an abort.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const runnel::Error& e) {
    std::fprintf(stderr, "runnel: %s\n", e.what());
    return 1;
  }
  try {
    for (auto& [sub, run] : runners) {
      if (sub->parsed()) return run();
    }
    std::cout << app.help();
    return 0;
  } catch (const runnel::Error& e) {
    std::fprintf(stderr, "runnel: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "runnel: %s\n", e.what());
    return 1;
  }
}
