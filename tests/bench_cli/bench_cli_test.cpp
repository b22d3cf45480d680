// `runnel bench` end to end: on stories260K it prints one JSON object with positive rates and the
// documented keys; -d and --kv-type are reported and priced; bad input (missing model, -p/-n <= 0,
// a depth past the context, an unknown KV type) exits 1 with a "runnel: " message.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "testing/testing.h"

namespace runnel::cli {
namespace {

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CliRun run_bench(const std::string& args, const std::string& env = "") {
  static const std::string dir = runnel::testing::make_temp_dir("cli-bench");
  const std::string cmd = env + runnel::testing::runnel_binary() + " bench " + args + " > " + dir +
                          "/out 2> " + dir + "/err";
  const int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(dir + "/out"), read_file(dir + "/err")};
}

std::string stories() { return runnel::testing::shared_dir() + "/models/stories260K.gguf"; }

// A tiny random Llama with head_dim 32 (2 layers, 2 KV heads): whole q8_0 blocks per head.
std::string wide_heads() {
  static const std::string path = [] {
    const std::string out = runnel::testing::make_temp_dir("cli-bench-q8") + "/tiny.gguf";
    const std::string cmd = "/usr/bin/python3 " + runnel::testing::source_dir() +
                            "/tools/gen_tiny_model.py --arch LlamaForCausalLM --format gguf "
                            "--dtype f32 --hidden 128 --heads 4 --kv-heads 2 --ffn 256 --layers 2 "
                            "--vocab 320 --ctx 2048 --seed 3 --out " +
                            out + " > /dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return out;
  }();
  return path;
}

TEST(BenchCli, JsonOnStories) {
  CliRun r = run_bench(stories() + " -p 16 -n 8 -r 1 -t 2 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  // Exactly one JSON object (one line), nothing else on stdout.
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_object());
  for (const char* key :
       {"prefill_tokens_per_s", "decode_tokens_per_s", "prefill_tokens_per_s_min",
        "decode_tokens_per_s_min", "membw_gb_s", "bandwidth_fraction", "bytes_per_token"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_GT(j[key].get<double>(), 0) << key;
  }
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["prompt_tokens"], 16);
  EXPECT_EQ(j["decode_tokens"], 8);
  ASSERT_TRUE(j["variant"].is_string());
  const std::string variant = j["variant"];
  EXPECT_TRUE(variant == "scalar" || variant == "avx2" || variant == "avxvnni" ||
              variant == "avx512" || variant == "amx")
      << variant;
  EXPECT_NE(j["description"].get<std::string>().find("layers"), std::string::npos);
  EXPECT_LE(j["decode_tokens_per_s_min"].get<double>(), j["decode_tokens_per_s"].get<double>());
  // Two threads: every layer's matmuls reach the pool (stories260K has 5 layers).
  EXPECT_GE(j["decode_pool_jobs_per_token"].get<double>(), 5.0);
  // The decode step's split: parts of the step's time, and the matmuls' weight rate.
  const double mm = j["decode_matmul_fraction"], att = j["decode_attention_fraction"];
  EXPECT_GT(mm, 0);
  EXPECT_GT(att, 0);
  EXPECT_LE(mm + att, 1.0);
  EXPECT_GE(j["decode_matmul_gb_s"].get<double>(), j["decode_gb_s"].get<double>());
  const double pmm = j["prefill_matmul_fraction"], patt = j["prefill_attention_fraction"];
  EXPECT_GT(pmm, 0);
  EXPECT_GT(patt, 0);
  EXPECT_LE(pmm + patt, 1.0);
  // stories260K has an untied f32 embedding [512, 64]: a token reads one row of it, not all.
  EXPECT_EQ(j["weight_bytes"].get<int64_t>() - j["bytes_per_token"].get<int64_t>(),
            512 * 64 * 4 - 64 * 4);
  // The footprint probe: over the weights' own size, here its floor of 64 MiB; the fraction is
  // the same decode rate divided by it.
  EXPECT_EQ(j["membw_footprint_bytes"].get<int64_t>(), int64_t{64} << 20);
  EXPECT_GT(j["membw_footprint_gb_s"].get<double>(), 0);
  EXPECT_NEAR(
      j["bandwidth_fraction_footprint"].get<double>() * j["membw_footprint_gb_s"].get<double>(),
      j["decode_gb_s"].get<double>(), 1e-9 * j["decode_gb_s"].get<double>() + 1e-12);
}

TEST(BenchCli, DepthAndKvType) {
  CliRun f16 = run_bench(stories() + " -p 8 -n 4 -r 1 -d 40 --json");
  ASSERT_EQ(f16.status, 0) << f16.err;
  nlohmann::json a = nlohmann::json::parse(f16.out);
  EXPECT_EQ(a["depth"], 40);
  EXPECT_EQ(a["kv_type"], "f16");  // the engine's default
  EXPECT_GT(a["decode_tokens_per_s"].get<double>(), 0);
  // stories260K: 5 layers, 4 KV heads of 8; K and V at 40 + 4 positions plus the steps' mean.
  EXPECT_DOUBLE_EQ(a["kv_bytes_per_token"].get<double>(), 2.0 * 5 * 32 * 2 * (40 + 4 + 2.5));
  EXPECT_GT(a["bandwidth_fraction_with_kv"].get<double>(), a["bandwidth_fraction"].get<double>());
  CliRun f32 = run_bench(stories() + " -p 8 -n 4 -r 1 -d 40 --kv-type f32 --json");
  ASSERT_EQ(f32.status, 0) << f32.err;
  nlohmann::json b = nlohmann::json::parse(f32.out);
  EXPECT_EQ(b["kv_type"], "f32");
  EXPECT_DOUBLE_EQ(b["kv_bytes_per_token"].get<double>(),
                   2 * a["kv_bytes_per_token"].get<double>());
  CliRun env = run_bench(stories() + " -p 8 -n 4 -r 1 --json", "RUNNEL_KV_CACHE_TYPE=f32 ");
  ASSERT_EQ(env.status, 0) << env.err;
  EXPECT_EQ(nlohmann::json::parse(env.out)["kv_type"], "f32");
}

TEST(BenchCli, Q8KvTypeIsPricedAndNeedsWholeBlocks) {
  CliRun q8 = run_bench(wide_heads() + " -p 8 -n 4 -r 1 -d 40 --kv-type q8_0 --json");
  ASSERT_EQ(q8.status, 0) << q8.err;
  nlohmann::json j = nlohmann::json::parse(q8.out);
  EXPECT_EQ(j["kv_type"], "q8_0");
  EXPECT_GT(j["decode_tokens_per_s"].get<double>(), 0);
  // 2 layers, K and V rows of 2 heads × 32 values = 2 blocks of 34 bytes.
  EXPECT_DOUBLE_EQ(j["kv_bytes_per_token"].get<double>(), 2.0 * 2 * 68 * (40 + 4 + 2.5));
  // stories260K's heads are 8 values: no q8_0 cache, and the message says why.
  CliRun narrow = run_bench(stories() + " -p 4 -n 2 -r 1 --kv-type q8_0");
  EXPECT_EQ(narrow.status, 1);
  EXPECT_NE(narrow.err.find("head_dim"), std::string::npos) << narrow.err;
  EXPECT_NE(narrow.err.find("stories260K.gguf"), std::string::npos) << narrow.err;
}

TEST(BenchCli, BadDepthOrKvTypeIsAnError) {
  for (const std::string flags : {" -d -1", " -d 100000", " --kv-type q4"}) {
    CliRun r = run_bench(stories() + " -p 4 -n 2 -r 1" + flags);
    EXPECT_EQ(r.status, 1) << flags;
    EXPECT_EQ(r.err.rfind("runnel: ", 0), 0u) << flags << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << flags;
  }
}

TEST(BenchCli, ForcedVariantIsReported) {
  // RUNNEL_CPU is read by the kernels at start-up; the bench must report what it runs.
  CliRun r = run_bench(stories() + " -p 4 -n 2 -r 1 --json", "RUNNEL_CPU=scalar ");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["variant"], "scalar");
}

// A RUNNEL_THREADS that is not a count in [1, 1024] is ignored with a warning (5000 spinning
// workers on a few cores would make every job crawl), and the pool takes the online CPUs.
TEST(BenchCli, BadRunnelThreadsFallsBackToTheCpus) {
  CliRun good = run_bench(stories() + " -p 4 -n 2 -r 1 --json", "env -u RUNNEL_THREADS ");
  ASSERT_EQ(good.status, 0) << good.err;
  const int cpus = nlohmann::json::parse(good.out)["threads"];
  for (const char* bad : {"5000", "0", "-2", "four", "3x"}) {
    CliRun r =
        run_bench(stories() + " -p 4 -n 2 -r 1 --json", std::string("RUNNEL_THREADS=") + bad + " ");
    ASSERT_EQ(r.status, 0) << bad << ": " << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["threads"], cpus) << bad;
    EXPECT_NE(r.err.find("is not a thread count"), std::string::npos) << bad << ": " << r.err;
  }
  CliRun three = run_bench(stories() + " -p 4 -n 2 -r 1 --json", "RUNNEL_THREADS=3 ");
  ASSERT_EQ(three.status, 0) << three.err;
  EXPECT_EQ(nlohmann::json::parse(three.out)["threads"], 3);
}

TEST(BenchCli, MembwOnly) {
  CliRun r = run_bench("--membw --json -t 1");
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["membw_gb_s"].get<double>(), 0);
  EXPECT_FALSE(j.contains("decode_tokens_per_s"));
}

TEST(BenchCli, MissingModelIsAnError) {
  CliRun r = run_bench("/nonexistent/model.gguf -p 4 -n 2 -r 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("runnel: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(BenchCli, NonPositiveCountsAreErrors) {
  for (const std::string flags :
       {" -p 0 -n 2", " -p 4 -n 0", " -p 4 -n -3", " -p 4 -n 2 -r 0", " -p 4 -n 2 -t 0"}) {
    CliRun r = run_bench(stories() + flags);
    EXPECT_EQ(r.status, 1) << flags;
    EXPECT_EQ(r.err.rfind("runnel: ", 0), 0u) << flags << ": " << r.err;
  }
}

}  // namespace
}  // namespace runnel::cli
