// Token-mask cost per decode step for synthetic 128k and 256k vocabularies (byte-pair / word-like
// tokens), under format "json" and a JSON schema: cold trie walks for typical grammar states, and
// every step of a generation from random logits (masks cached per state). Also the cost of one
// Sampler step with Ollama's defaults. Usage: bench_sample [n_vocab...]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/time.h"
#include "sample/json_schema.h"
#include "sample/matcher.h"
#include "sample/rng.h"
#include "sample/sampler.h"
#include "synthetic_vocab.h"

using namespace runnel;
using namespace runnel::sample;

namespace {

const char* kSchema = R"({"type":"object","properties":{
  "name":{"type":"string"},"age":{"type":"integer"},
  "email":{"anyOf":[{"type":"string"},{"type":"null"}]},
  "tags":{"type":"array","items":{"type":"string","maxLength":20},"maxItems":8},
  "address":{"type":"object","properties":{"street":{"type":"string"},"zip":{"type":"string"}},
             "required":["street"]}},
  "required":["name","age","email"]})";

double ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

void cold(const char* label, const std::shared_ptr<const Grammar>& g,
          const std::shared_ptr<const Vocabulary>& v, const std::string& prefix) {
  int64_t best = INT64_MAX;
  int32_t allowed = 0;
  for (int rep = 0; rep < 5; ++rep) {
    GrammarMatcher m(g, v);
    if (!m.accept_bytes(prefix)) {
      std::printf("  (prefix rejected: %s)\n", prefix.c_str());
      return;
    }
    TokenMask mask;
    const int64_t t0 = now_ns();
    m.fill_mask(mask);
    best = std::min(best, now_ns() - t0);
    allowed = mask.count();
  }
  std::printf("  cold %-28s %7.3f ms  (%d tokens allowed)\n", label, ms(best), allowed);
}

// `runs` generations from random logits (EOS kept unlikely so the budget guard closes the value),
// timing fill_mask at every step.
void generate(const char* label, const std::shared_ptr<const Grammar>& g,
              const std::shared_ptr<const Vocabulary>& v, int64_t budget, int runs) {
  std::vector<int64_t> times;
  std::string slowest_prefix, text;
  int64_t slowest = -1;
  size_t bytes = 0;
  int64_t walks = 0, hits = 0;
  std::vector<float> logits(static_cast<size_t>(v->n_vocab()));
  TokenMask mask;
  for (int run = 0; run < runs; ++run) {
    GrammarMatcher m(g, v);
    SamplingOptions o;
    o.seed = static_cast<uint64_t>(run);
    Sampler sampler(o, {});
    Rng rng(static_cast<uint64_t>(run) + 100);
    text.clear();
    for (int64_t n = 0; n < budget; ++n) {
      for (auto& x : logits) x = static_cast<float>(rng.uniform() * 8.0 - 4.0);
      for (const int32_t e : v->eos_ids()) logits[static_cast<size_t>(e)] = -10.0f;
      const int64_t t0 = now_ns();
      m.fill_mask(mask, budget - n);
      times.push_back(now_ns() - t0);
      if (times.back() > slowest) {
        slowest = times.back();
        slowest_prefix = text;
      }
      const int32_t t = sampler.sample(logits, &mask).token;
      if (!m.accept_token(t)) {
        std::printf("  BUG: token %d rejected\n", t);
        std::exit(1);
      }
      if (v->is_eos(t)) break;
      bytes += v->token(t).size();
      text += v->token(t);
    }
    if (!m.is_complete()) {
      std::printf("  BUG: incomplete value at the budget\n");
      std::exit(1);
    }
    walks += m.n_walks();
    hits += m.n_cache_hits();
  }
  std::vector<int64_t> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (const int64_t t : times) sum += ms(t);
  std::printf(
      "  gen  %-28s %d runs, %zu steps, %zu bytes: mean %.3f ms, p50 %.3f, p90 %.3f, max %.3f "
      "(%lld walks, %lld cache hits)\n",
      label, runs, times.size(), bytes, sum / static_cast<double>(times.size()),
      ms(sorted[sorted.size() / 2]), ms(sorted[sorted.size() * 9 / 10]), ms(sorted.back()),
      static_cast<long long>(walks), static_cast<long long>(hits));
  // The slowest step again, cold and best of 5: separates real cost from preemption.
  cold("(slowest step, re-run cold)", g, v, slowest_prefix);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int32_t> sizes = {128 * 1024, 256 * 1024};
  if (argc > 1) {
    sizes.clear();
    for (int i = 1; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
  }
  const int64_t t_compile0 = now_ns();
  const auto schema = compile_json_schema(kSchema);
  const int64_t t_compile = now_ns() - t_compile0;
  const auto json = compile_json_object_grammar();
  std::printf("schema compile: %.3f ms, %d states, %.1f MiB of tables\n", ms(t_compile),
              schema->n_states(), static_cast<double>(schema->memory_bytes()) / (1 << 20));
  for (const int32_t n : sizes) {
    int32_t eos = 0;
    auto tokens = testing::large_vocab(n, eos);
    const int64_t t0 = now_ns();
    const auto vocab = std::make_shared<Vocabulary>(std::move(tokens), std::vector<int32_t>{eos});
    std::printf("\nvocabulary %d tokens: trie %zu nodes, built in %.1f ms (once per model)\n",
                vocab->n_vocab(), vocab->trie().nodes.size(), ms(now_ns() - t0));
    cold("json: start", json, vocab, "");
    cold("json: after {", json, vocab, "{");
    cold("json: in a key", json, vocab, "{\"ke");
    cold("json: after key", json, vocab, "{\"key\"");
    cold("json: in a string value", json, vocab, "{\"key\": \"some text");
    cold("json: in a number", json, vocab, "{\"key\": 12");
    cold("schema: after {", schema, vocab, "{");
    cold("schema: in name", schema, vocab, "{\"name\": \"Jo");
    cold("schema: in tags item", schema, vocab,
         "{\"name\":\"J\",\"age\":3,\"email\":null,\"tags\":[\"a");
    generate("json (budget 256)", json, vocab, 256, 5);
    generate("schema (budget 256)", schema, vocab, 256, 5);
    generate("schema (budget 1024)", schema, vocab, 1024, 2);

    // One sampler step without a grammar, Ollama's defaults (top_k 40 bounds the sort).
    SamplingOptions o;
    o.seed = 1;
    Sampler s(o, std::vector<int32_t>(64, 5));
    Rng rng(9);
    std::vector<float> logits(static_cast<size_t>(n));
    for (auto& x : logits) x = static_cast<float>(rng.uniform() * 8.0 - 4.0);
    const int64_t t1 = now_ns();
    const int reps = 50;
    for (int i = 0; i < reps; ++i) s.sample(logits);
    std::printf("  sampler step (defaults, no grammar): %.3f ms\n", ms(now_ns() - t1) / reps);
    o.top_k = 0;
    Sampler s2(o, {});
    const int64_t t2 = now_ns();
    for (int i = 0; i < reps; ++i) s2.sample(logits);
    std::printf("  sampler step (top_k 0, top_p 0.9): %.3f ms\n", ms(now_ns() - t2) / reps);
  }
  return 0;
}
