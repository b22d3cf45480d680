// The scheduler and the runner socket side together, with fake_runner as the runner binary:
// on-demand loading, reuse, keep_alive 0, LRU eviction under a memory budget, crash recovery,
// load errors, streaming and cancellation over the protocol.
#include "server/scheduler.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "base/time.h"
#include "runner/protocol.h"
#include "server/runner_client.h"
#include "testing/testing.h"

namespace runnel::server {
namespace {
namespace fs = std::filesystem;

ResolvedModel fake_model(const std::string& dir, const std::string& name, int64_t size,
                         const std::string& head = "GGUF") {
  std::string path = dir + "/" + name + ".gguf";
  std::ofstream(path) << head << "\n" << std::string(static_cast<size_t>(size), 'x');
  ResolvedModel m;
  m.name = name;
  m.path = path;
  m.format = "gguf";
  m.size_bytes = size;
  return m;
}

SchedulerOptions options(int64_t budget = 0) {
  SchedulerOptions o;
  o.runner_bin = FAKE_RUNNER_BIN;
  o.memory_budget = budget;
  return o;
}

runner::RunnerStats stats(const std::string& socket) {
  return runner::decode_stats(runner_call(socket, runner::encode_simple_op("stats")));
}

TEST(Scheduler, LoadsReusesAndUnloads) {
  std::string dir = testing::make_temp_dir("sched");
  Scheduler s(options());
  ResolvedModel a = fake_model(dir, "a", 100);
  pid_t pid;
  {
    auto l1 = s.acquire(a, kDefaultKeepAliveNs);
    pid = l1->pid();
    EXPECT_GT(pid, 0);
    EXPECT_GT(l1->load_duration_ns(), 0);
    auto l2 = s.acquire(a, kDefaultKeepAliveNs);
    EXPECT_EQ(l2->pid(), pid);
    EXPECT_EQ(l2->load_duration_ns(), 0);
    EXPECT_EQ(s.loaded().size(), 1u);
    EXPECT_EQ(s.loaded()[0].active, 2);
  }
  EXPECT_EQ(s.loaded().size(), 1u);
  EXPECT_EQ(s.n_starts.load(), 1);
  { auto l = s.acquire(a, 0); }  // keep_alive 0: gone after the request
  EXPECT_TRUE(s.loaded().empty());
}

TEST(Scheduler, EvictsLeastRecentlyUsedOverBudget) {
  std::string dir = testing::make_temp_dir("sched");
  Scheduler s(options(3000));  // room for two 1000-byte models (+10% estimate), not three
  ResolvedModel a = fake_model(dir, "a", 1000), b = fake_model(dir, "b", 1000),
                c = fake_model(dir, "c", 1000);
  s.acquire(a, kForever);
  s.acquire(b, kForever);
  s.acquire(a, kForever);  // a is now more recent than b
  s.acquire(c, kForever);
  std::vector<std::string> names;
  for (const auto& l : s.loaded()) names.push_back(l.model.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "c"}));
}

TEST(Scheduler, RestartsACrashedRunner) {
  std::string dir = testing::make_temp_dir("sched");
  Scheduler s(options());
  ResolvedModel a = fake_model(dir, "a", 10);
  pid_t first = s.acquire(a, kForever)->pid();
  kill(first, SIGKILL);
  for (int i = 0; i < 200 && !s.loaded().empty(); ++i) usleep(10000);
  EXPECT_TRUE(s.loaded().empty());
  auto lease = s.acquire(a, kForever);
  EXPECT_NE(lease->pid(), first);
  EXPECT_EQ(s.n_crashes.load(), 1);
  EXPECT_NO_THROW(runner_call(lease->socket_path(), runner::encode_simple_op("health")));
}

TEST(Scheduler, LoadErrorsCarryTheRunnersMessage) {
  std::string dir = testing::make_temp_dir("sched");
  Scheduler s(options());
  ResolvedModel bad = fake_model(dir, "bad", 10, "FAIL_LOAD");
  try {
    s.acquire(bad, kForever);
    FAIL() << "expected a load error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("FAIL_LOAD"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(s.loaded().empty());
}

TEST(RunnerProtocol, StreamsAndCancels) {
  std::string dir = testing::make_temp_dir("sched");
  Scheduler s(options());
  auto lease = s.acquire(fake_model(dir, "a", 10), kForever);
  runner::GenerateRequest r;
  r.prompt = "one two three";
  {
    auto conn = RunnerConnection::open(lease->socket_path());
    conn->send_line(runner::encode_generate(r));
    std::string line, text;
    runner::Frame f;
    ASSERT_TRUE(conn->read_line(line));
    EXPECT_EQ(runner::decode_frame(line).type, runner::Frame::Type::kAccepted);
    while (conn->read_line(line)) {
      f = runner::decode_frame(line);
      if (f.type != runner::Frame::Type::kChunk) break;
      text += f.chunk.text;
    }
    EXPECT_EQ(text, "one two three");
    ASSERT_EQ(f.type, runner::Frame::Type::kDone);
    EXPECT_EQ(f.result.done_reason, "stop");
    EXPECT_EQ(f.result.prompt_eval_count, 3);
    EXPECT_EQ(f.result.eval_count, 3);
  }
  // Errors before acceptance carry a 400.
  {
    runner::GenerateRequest bad = r;
    bad.options_json = R"({"temperature":"hot"})";
    auto conn = RunnerConnection::open(lease->socket_path());
    conn->send_line(runner::encode_generate(bad));
    std::string line;
    ASSERT_TRUE(conn->read_line(line));
    runner::Frame f = runner::decode_frame(line);
    EXPECT_EQ(f.type, runner::Frame::Type::kError);
    EXPECT_EQ(f.status, 400);
    EXPECT_NE(f.error.find("temperature"), std::string::npos);
  }
  // Closing the connection mid-stream cancels the request in the runner.
  int64_t cancelled_before = stats(lease->socket_path()).cancelled_total;
  {
    runner::GenerateRequest slow = r;
    slow.prompt = "SLOW a b c d e f g h";
    auto conn = RunnerConnection::open(lease->socket_path());
    conn->send_line(runner::encode_generate(slow));
    std::string line;
    ASSERT_TRUE(conn->read_line(line));  // accepted
    ASSERT_TRUE(conn->read_line(line));  // first word
    conn->close();
  }
  int64_t t0 = now_ns();
  runner::RunnerStats st;
  do {
    usleep(5000);
    st = stats(lease->socket_path());
  } while ((st.cancelled_total == cancelled_before || st.active > 0) && now_ns() - t0 < 2e9);
  EXPECT_EQ(st.cancelled_total, cancelled_before + 1);
  EXPECT_EQ(st.active, 0);
  EXPECT_LT(now_ns() - t0, 600'000'000);  // within about one 200 ms step
}

}  // namespace
}  // namespace runnel::server
