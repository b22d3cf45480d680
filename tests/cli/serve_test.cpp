// `runnel serve` with the embedded model: it is served (and preloaded) as "default".
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_testing.h"
#include "testing/testing.h"

namespace runnel::testing {
namespace {

class Serve : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string models = make_temp_dir("serve-store");
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      setenv("RUNNEL_MODELS", models.c_str(), 1);
      execl(runnel_binary().c_str(), "runnel", "serve", "--port", "0", nullptr);
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[256] = {};
    ASSERT_NE(fgets(line, sizeof line, f), nullptr);
    std::string s(line);
    port_ = std::stoi(s.substr(s.rfind(':') + 1));
    out_ = f;
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (out_) fclose(out_);
  }
  pid_t pid_ = -1;
  int port_ = 0;
  FILE* out_ = nullptr;
};

TEST_F(Serve, DefaultModelIsPreloadedAndAnswers) {
  httplib::Client c("127.0.0.1", port_);
  c.set_read_timeout(60, 0);
  // Preloading happens in the background: /api/ps shows it within a few seconds.
  bool loaded = false;
  for (int i = 0; i < 100 && !loaded; ++i) {
    auto ps = c.Get("/api/ps");
    ASSERT_TRUE(ps);
    loaded = ps->body.find("default") != std::string::npos;
    if (!loaded) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(loaded);
  nlohmann::json req = {{"model", "default"},
                        {"prompt", "In the beginning"},
                        {"raw", true},
                        {"stream", false},
                        {"options", {{"temperature", 0}, {"num_predict", 12}}}};
  auto r = c.Post("/api/generate", req.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["done_reason"], "length");
  EXPECT_EQ(j["eval_count"], 12);
  // The same words the training code's greedy decode gives (models/default/greedy_check.json).
  EXPECT_EQ(j["response"].get<std::string>().rfind("of the LORD, and the LORD", 0), 0u)
      << j["response"];
}

}  // namespace
}  // namespace runnel::testing
