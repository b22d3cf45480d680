// Subcommands register themselves here, one file each (cmd_<name>.cpp), so main.cpp never grows.
//
//   static std::function<int()> setup(CLI::App& app) {
//     auto opts = std::make_shared<Options>();
//     app.add_option("model", opts->model, "...")->required();
//     return [opts] { return run(*opts); };   // exit status
//   }
//   RUNNEL_COMMAND(tokenize, "Print the token ids of a text", setup);
#pragma once

#include <functional>
#include <vector>

namespace CLI {
class App;
}

namespace runnel::cli {

using CommandSetup = std::function<int()> (*)(CLI::App& app);

struct Command {
  const char* name;
  const char* help;
  CommandSetup setup;
  int order;  // position in help output
};

std::vector<Command>& command_registry();

struct CommandRegistration {
  CommandRegistration(const char* name, const char* help, CommandSetup setup, int order = 100) {
    command_registry().push_back({name, help, setup, order});
  }
};

}  // namespace runnel::cli

#define RUNNEL_COMMAND(name, help, setup) \
  static ::runnel::cli::CommandRegistration runnel_command_##name(#name, help, setup)
#define RUNNEL_COMMAND_ORDERED(name, help, setup, order) \
  static ::runnel::cli::CommandRegistration runnel_command_##name(#name, help, setup, order)
