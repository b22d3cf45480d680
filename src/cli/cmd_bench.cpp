// `runnel bench MODEL`: prefill and decode throughput of one model on this machine, with the
// memory bandwidth measured in the same run. Prefill: one forward of p tokens (last logits only).
// Decode: n single-token steps after a short prompt, pipelined with async_eval and greedy argmax as
// a real decode loop. With -d, both start after that many positions already in the KV cache (as
// llama-bench's depth). Each measured r times; min / median / max of tokens/s are reported. The
// bandwidth fraction divides the median decode's weight bytes/s by the better of two probes (one
// before, one after the runs): on a shared host the lower probe would flatter the kernels. A third
// probe reads a buffer of the weights' own size (footprint_probe_bytes), printed beside it.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "array/array.h"
#include "base/dtype.h"
#include "base/env.h"
#include "base/error.h"
#include "base/strings.h"
#include "base/thread_pool.h"
#include "base/time.h"
#include "cache/config.h"
#include "cli/command.h"
#include "formats/gguf.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/kernel_time.h"
#include "kernels/cpu/membw.h"
#include "models/model.h"
#include "sample/transforms.h"
#include "server/store.h"

namespace runnel::cli {
namespace {

constexpr int64_t kDecodePrompt = 4;  // tokens prefilled (untimed) before the decode steps
constexpr int64_t kDepthSalt = 1000;  // the depth context's tokens differ from every test's

struct BenchFlags {
  std::string model;
  int64_t prompt = 512;
  int64_t gen = 128;
  std::optional<int64_t> threads;  // unset: the global pool's size (RUNNEL_THREADS or online CPUs)
  int64_t repeats = 3;
  int64_t depth = 0;    // positions in the KV cache before each prefill and decode
  std::string kv_type;  // f16, f32 or q8_0; empty: RUNNEL_KV_CACHE_TYPE, else f16 (as the engine)
  bool json = false;
  bool membw_only = false;
};

struct Stats {
  double min = 0, median = 0, max = 0;
};

Stats stats_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {v.front(), median, v.back()};
}

// A store name, a .gguf file or a model folder.
std::string resolve_model(const std::string& ref) {
  if (std::filesystem::exists(ref)) return ref;
  try {
    server::ModelStore store(server::ModelStore::default_root());
    return store.resolve(ref).path;
  } catch (const Error&) {
    fail("bench", ref, ": no such model file, folder or store name");
  }
}

// Bytes of weights one decoded token reads: every weight once, except that an untied embedding
// table contributes only its one looked-up row (tied: the table is the output matrix, read whole).
size_t bytes_per_token(const models::Model& m) {
  size_t bytes = m.weight_bytes();
  const models::ModelConfig& c = m.config();
  if (c.tied_embeddings || std::filesystem::is_directory(m.path())) return bytes;
  auto f = formats::GgufFile::open(m.path());
  if (const formats::GgufTensor* t = f->find_tensor("token_embd.weight"); t && c.vocab > 0) {
    bytes -= t->n_bytes - t->n_bytes / static_cast<size_t>(c.vocab);
  }
  return bytes;
}

// Deterministic token ids spread over the vocabulary.
std::vector<int32_t> bench_tokens(int64_t n, int64_t vocab, int64_t salt) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    t[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + salt * 104729 + 13) % vocab);
  return t;
}

// Greedy choice as the engine's sampler makes it at temperature 0.
int32_t argmax(const float* row, int64_t n) {
  return sample::argmax(std::span<const float>(row, static_cast<size_t>(n)));
}

// Where a phase's time went, summed over the repeats.
struct Split {
  double total_ns = 0, matmul_ns = 0, attention_ns = 0;
  void add(int64_t t0, int64_t t1) {
    const kernels::cpu::KernelTime kt = kernels::cpu::kernel_time();
    total_ns += static_cast<double>(t1 - t0);
    matmul_ns += static_cast<double>(kt.matmul_ns);
    attention_ns += static_cast<double>(kt.attention_ns);
  }
  double matmul_share() const { return matmul_ns / std::max(total_ns, 1.0); }
  double attention_share() const { return attention_ns / std::max(total_ns, 1.0); }
};

// Tokens/s of one prefill of `tokens` after the first `depth` cached positions; `split` adds where
// its time went.
double time_prefill(models::Model& m, models::KvCache& cache, int64_t depth,
                    const std::vector<int32_t>& tokens, Split* split) {
  cache.n_tokens = depth;
  kernels::cpu::set_kernel_timing(true);
  const int64_t t0 = now_ns();
  array::Array logits = m.forward(tokens, depth, cache, false);
  array::eval(logits);
  const int64_t t1 = now_ns();
  kernels::cpu::set_kernel_timing(false);
  split->add(t0, t1);
  return static_cast<double>(tokens.size()) * 1e9 /
         static_cast<double>(std::max<int64_t>(1, t1 - t0));
}

// Tokens/s of `n` greedy decode steps after the first `depth` cached positions and an untimed
// short prompt. Each step's forward starts with async_eval, the previous logits' argmax feeds it,
// as the engine's loop does. `jobs` gets the thread pool's jobs (barriers) per step; `split` adds
// the steps' time and the part of it spent in the matmul and attention kernels.
double time_decode(models::Model& m, models::KvCache& cache, int64_t depth, int64_t n, int64_t salt,
                   double* jobs, Split* split) {
  const int64_t vocab = m.config().vocab;
  cache.n_tokens = depth;
  array::Array logits = m.forward(bench_tokens(kDecodePrompt, vocab, salt), depth, cache, false);
  array::eval(logits);
  int32_t next = argmax(logits.data<float>(), vocab);
  const uint64_t jobs0 = ThreadPool::global().jobs_run();
  kernels::cpu::set_kernel_timing(true);
  const int64_t t0 = now_ns();
  for (int64_t i = 0; i < n; ++i) {
    logits = m.forward({next}, cache.n_tokens, cache, false);
    array::async_eval({logits});
    next = argmax(logits.data<float>(), vocab);  // joins the evaluation
  }
  const int64_t t1 = now_ns();
  kernels::cpu::set_kernel_timing(false);
  split->add(t0, t1);
  *jobs = static_cast<double>(ThreadPool::global().jobs_run() - jobs0) / static_cast<double>(n);
  return static_cast<double>(n) * 1e9 / static_cast<double>(std::max<int64_t>(1, t1 - t0));
}

double probe_membw() { return kernels::cpu::measure_memory_bandwidth(ThreadPool::global()); }

// The buffer of the footprint probe: a decode step's weight bytes, at least 64 MiB (a smaller
// buffer is read too quickly to time) and at most half of the memory free right now (the model is
// loaded by then; the probe must not push the machine into swap or the OOM killer). The 1 GiB
// probe is not a ceiling independent of the model: on the AMX VM (L3 480 MiB) a read loop over 256
// MiB read 36 GB/s, over 1 GiB 33, over 2 GiB 31.5, over 4 GiB 29-30, over 8 GiB 25-27
// (bench/RESULTS.md, session 36), so a model streams its weights from the regime of its own size,
// which this probe measures.
size_t footprint_probe_bytes(size_t per_token) {
  constexpr size_t kMiB = size_t{1} << 20;
  size_t bytes = std::max<size_t>((per_token + 2 * kMiB - 1) / (2 * kMiB) * (2 * kMiB), 64 * kMiB);
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) {
    bytes = std::min(bytes, static_cast<size_t>(pages) * static_cast<size_t>(page) / 2);
  }
  return std::max<size_t>(bytes, 64 * kMiB);
}

int run_membw(const BenchFlags& f) {
  const double gb_s = probe_membw();
  const char* variant = kernels::cpu::isa_name(kernels::cpu::active_isa());
  const int threads = ThreadPool::global().n_threads();
  if (f.json) {
    nlohmann::json j = {{"membw_gb_s", gb_s}, {"threads", threads}, {"variant", variant}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("memory bandwidth: %.2f GB/s (read-only, %d threads)\n", gb_s, threads);
  }
  return 0;
}

int run_bench(const BenchFlags& f) {
  if (f.threads) {
    check(*f.threads > 0 && *f.threads <= 1024, "bench", "-t must be in [1, 1024], got ",
          *f.threads);
    ThreadPool::set_global_threads(static_cast<int>(*f.threads));
  }
  if (f.membw_only) return run_membw(f);
  check(!f.model.empty(), "bench", "MODEL is required (or --membw)");
  check(f.prompt > 0, "bench", "-p must be positive, got ", f.prompt);
  check(f.gen > 0, "bench", "-n must be positive, got ", f.gen);
  check(f.repeats > 0, "bench", "-r must be positive, got ", f.repeats);
  check(f.depth >= 0, "bench", "-d must be zero or positive, got ", f.depth);
  std::string kv_type = f.kv_type;
  if (kv_type.empty()) kv_type = env_string("RUNNEL_KV_CACHE_TYPE").value_or("f16");
  const DType kv_dtype = cache::parse_kv_cache_type(kv_type, "--kv-type");

  const std::string path = resolve_model(f.model);
  const int64_t t_load = now_ns();
  std::unique_ptr<models::Model> model = models::load_model(path);
  const double load_s = static_cast<double>(now_ns() - t_load) / 1e9;
  const int64_t vocab = model->config().vocab;
  const size_t per_token = bytes_per_token(*model);
  const int threads = ThreadPool::global().n_threads();
  const char* variant = kernels::cpu::isa_name(kernels::cpu::active_isa());

  const models::ModelConfig& mc = model->config();
  check(models::kv_cache_type_fits(mc, kv_dtype), "bench", "--kv-type ", kv_type,
        " needs head_dim a multiple of 32; ", path, " has ", mc.head_dim);
  const int64_t capacity = f.depth + std::max(f.prompt, kDecodePrompt + f.gen);
  check(mc.context_length <= 0 || capacity <= mc.context_length, "bench", "-d ", f.depth,
        " plus the longer of -p and -n needs ", capacity, " positions; the model has ",
        mc.context_length);
  // Bandwidth before and after the runs: the better one is the machine's ceiling in this run.
  const double membw_before = probe_membw();
  models::KvCache cache(mc, capacity, kv_dtype);
  // Warm-up: touches every weight page once (mmapped files) and the kernels' scratch.
  array::eval(model->forward(bench_tokens(kDecodePrompt, vocab, 99), 0, cache, false));
  // The depth context, prefilled once: the runs write only the positions after it.
  if (f.depth > 0) {
    cache.n_tokens = 0;
    array::eval(model->forward(bench_tokens(f.depth, vocab, kDepthSalt), 0, cache, false));
  }
  // KV bytes a decode step reads, averaged over the steps: K and V of every layer at every
  // position before it.
  const double kv_row_bytes =
      2.0 * static_cast<double>(mc.n_layers) *
      static_cast<double>(row_bytes(kv_dtype, static_cast<size_t>(mc.n_kv_heads * mc.head_dim)));
  const double kv_per_token = kv_row_bytes * (static_cast<double>(f.depth + kDecodePrompt) +
                                              static_cast<double>(f.gen + 1) / 2);

  std::vector<double> prefill, decode;
  double jobs_per_token = 0;
  Split pp_split, tg_split;
  for (int64_t r = 0; r < f.repeats; ++r) {
    prefill.push_back(
        time_prefill(*model, cache, f.depth, bench_tokens(f.prompt, vocab, r), &pp_split));
    decode.push_back(time_decode(*model, cache, f.depth, f.gen, r, &jobs_per_token, &tg_split));
  }
  const double membw_after = probe_membw();
  const double membw = std::max(membw_before, membw_after);
  const size_t footprint_bytes = footprint_probe_bytes(per_token);
  const double membw_footprint =
      kernels::cpu::measure_memory_bandwidth(ThreadPool::global(), footprint_bytes);
  const Stats pp = stats_of(prefill), tg = stats_of(decode);
  const double decode_gb_s = static_cast<double>(per_token) * tg.median / 1e9;
  const double fraction = membw > 0 ? decode_gb_s / membw : 0;
  const double decode_kv_gb_s = kv_per_token * tg.median / 1e9;
  // The decode step's split, and the rate the matmuls read weights at while they run (every
  // weight byte of a token is read by a matmul).
  const double matmul_share = tg_split.matmul_share();
  const double attention_share = tg_split.attention_share();
  const double tokens = static_cast<double>(f.gen * f.repeats);
  const double matmul_gb_s =
      tg_split.matmul_ns > 0 ? static_cast<double>(per_token) * tokens / tg_split.matmul_ns : 0;

  if (f.json) {
    nlohmann::json j = {
        {"model", path},
        {"description", model->describe()},
        {"weight_bytes", model->weight_bytes()},
        {"bytes_per_token", per_token},
        {"load_seconds", load_s},
        {"threads", threads},
        {"variant", variant},
        {"prompt_tokens", f.prompt},
        {"decode_tokens", f.gen},
        {"depth", f.depth},
        {"kv_type", kv_type},
        {"kv_bytes_per_token", kv_per_token},
        {"decode_kv_gb_s", decode_kv_gb_s},
        {"bandwidth_fraction_with_kv", membw > 0 ? (decode_gb_s + decode_kv_gb_s) / membw : 0},
        {"repeats", f.repeats},
        {"prefill_tokens_per_s", pp.median},
        {"prefill_tokens_per_s_min", pp.min},
        {"prefill_tokens_per_s_max", pp.max},
        {"decode_tokens_per_s", tg.median},
        {"decode_tokens_per_s_min", tg.min},
        {"decode_tokens_per_s_max", tg.max},
        {"prefill_runs", prefill},
        {"decode_runs", decode},
        {"decode_gb_s", decode_gb_s},
        {"membw_gb_s", membw},
        {"membw_gb_s_before", membw_before},
        {"membw_gb_s_after", membw_after},
        {"bandwidth_fraction", fraction},
        {"membw_footprint_gb_s", membw_footprint},
        {"membw_footprint_bytes", footprint_bytes},
        {"bandwidth_fraction_footprint", membw_footprint > 0 ? decode_gb_s / membw_footprint : 0},
        {"decode_pool_jobs_per_token", jobs_per_token},
        {"decode_matmul_fraction", matmul_share},
        {"decode_attention_fraction", attention_share},
        {"decode_matmul_gb_s", matmul_gb_s},
        {"prefill_matmul_fraction", pp_split.matmul_share()},
        {"prefill_attention_fraction", pp_split.attention_share()},
    };
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model:     %s (%s)\n", path.c_str(), model->describe().c_str());
  std::printf("weights:   %.3f GB, %.3f GB read per decoded token; loaded in %.2f s\n",
              static_cast<double>(model->weight_bytes()) / 1e9,
              static_cast<double>(per_token) / 1e9, load_s);
  std::printf(
      "kernels:   %s, %d threads; memory bandwidth %.2f GB/s (best probe; %.2f before, "
      "%.2f after the runs)\n",
      variant, threads, membw, membw_before, membw_after);
  std::printf("kv cache:  %s, depth %lld; a decode step reads %.1f MB of KV on average\n\n",
              kv_type.c_str(), static_cast<long long>(f.depth), kv_per_token / 1e6);
  std::printf("| test   | median tok/s | min tok/s | max tok/s | runs |\n");
  std::printf("| ------ | ------------ | --------- | --------- | ---- |\n");
  std::printf("| pp%-4lld | %12.2f | %9.2f | %9.2f | %4lld |\n", static_cast<long long>(f.prompt),
              pp.median, pp.min, pp.max, static_cast<long long>(f.repeats));
  std::printf("| tg%-4lld | %12.2f | %9.2f | %9.2f | %4lld |\n\n", static_cast<long long>(f.gen),
              tg.median, tg.min, tg.max, static_cast<long long>(f.repeats));
  std::printf("decode bandwidth: %.2f GB/s = %.1f%% of the measured %.2f GB/s", decode_gb_s,
              fraction * 100, membw);
  std::printf(" (weights; with KV %.2f GB/s = %.1f%%)\n", decode_gb_s + decode_kv_gb_s,
              membw > 0 ? 100 * (decode_gb_s + decode_kv_gb_s) / membw : 0);
  std::printf(
      "                  %.1f%% of %.2f GB/s read over the weights' own size (%.2f GB: a probe of "
      "the regime a decode step streams from)\n",
      membw_footprint > 0 ? 100 * decode_gb_s / membw_footprint : 0, membw_footprint,
      static_cast<double>(footprint_bytes) / 1e9);
  const auto layers = static_cast<double>(std::max<int64_t>(1, model->config().n_layers));
  std::printf("decode sync:      %.0f thread-pool jobs (barriers) per token, %.1f per layer\n",
              jobs_per_token, jobs_per_token / layers);
  std::printf(
      "decode split:     %.0f%% matmuls (reading weights at %.2f GB/s = %.1f%% of the measured "
      "bandwidth while in them), %.0f%% attention, %.0f%% other\n",
      matmul_share * 100, matmul_gb_s, membw > 0 ? 100 * matmul_gb_s / membw : 0,
      attention_share * 100, std::max(0.0, 1 - matmul_share - attention_share) * 100);
  std::printf("prefill split:    %.0f%% matmuls, %.0f%% attention, %.0f%% other\n",
              pp_split.matmul_share() * 100, pp_split.attention_share() * 100,
              std::max(0.0, 1 - pp_split.matmul_share() - pp_split.attention_share()) * 100);
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  app.add_option("model", f->model, "Model: store name, .gguf file or model folder");
  app.add_option("-p,--prompt", f->prompt, "Prefill tokens (one forward)")->capture_default_str();
  app.add_option("-n,--gen", f->gen, "Decode steps")->capture_default_str();
  app.add_option("-t,--threads", f->threads, "Threads (default: RUNNEL_THREADS or all CPUs)");
  app.add_option("-r,--repeats", f->repeats, "Repeats (min/median/max)")->capture_default_str();
  app.add_option("-d,--depth", f->depth, "Positions already in the KV cache before each test")
      ->capture_default_str();
  app.add_option("--kv-type", f->kv_type,
                 "KV cache type: f16, f32 or q8_0 (default: RUNNEL_KV_CACHE_TYPE, else f16)");
  app.add_flag("--json", f->json, "Print one JSON object");
  app.add_flag("--membw", f->membw_only, "Only measure the memory bandwidth");
  return [f] { return run_bench(*f); };
}

}  // namespace

RUNNEL_COMMAND_ORDERED(bench, "Measure prefill and decode tokens/s and memory bandwidth", setup,
                       90);

}  // namespace runnel::cli
