#include "model_testing.h"

#include <array>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "array/ops.h"
#include "base/error.h"
#include "formats/gguf.h"
#include "testing/testing.h"

namespace runnel::models::testing {

std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) fail("test", "cannot run ", cmd);
  std::array<char, 65536> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int rc = pclose(p);
  if (rc != 0) fail("test", "command failed (", rc, "): ", cmd);
  return out;
}

void gen_tiny_model(const std::string& args, const std::string& out) {
  run_command("/usr/bin/python3 " + runnel::testing::source_dir() + "/tools/gen_tiny_model.py " +
              args + " --out " + out);
}

std::vector<std::vector<float>> reference_logits(const std::string& dir,
                                                 const std::vector<int32_t>& tokens) {
  // The numpy reference is slow to start: remember what it said.
  static std::map<std::pair<std::string, std::vector<int32_t>>, std::vector<std::vector<float>>>
      memo;
  auto key = std::make_pair(dir, tokens);
  if (auto it = memo.find(key); it != memo.end()) return it->second;
  std::string ids;
  for (int32_t t : tokens) ids += (ids.empty() ? "" : ",") + std::to_string(t);
  std::string out =
      run_command("/usr/bin/python3 " + runnel::testing::source_dir() +
                  "/tools/reference_forward.py " + dir + " --tokens " + ids + " --json");
  auto j = nlohmann::json::parse(out);
  if (j.is_object() && j.contains("logits")) j = j["logits"];
  return memo[key] = j.get<std::vector<std::vector<float>>>();
}

namespace {
std::vector<std::vector<float>> rows(const array::Array& logits) {
  std::vector<float> flat = logits.to_floats();
  const int64_t v = logits.shape().back();
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < flat.size(); i += static_cast<size_t>(v))
    out.emplace_back(flat.begin() + static_cast<ptrdiff_t>(i),
                     flat.begin() + static_cast<ptrdiff_t>(i) + v);
  return out;
}
}  // namespace

std::vector<std::vector<float>> model_logits(Model& m, const std::vector<int32_t>& tokens) {
  KvCache cache(m.config(), static_cast<int64_t>(tokens.size()) + 1);
  array::Array logits = m.forward(tokens, 0, cache, true);
  array::eval(logits);
  return rows(logits);
}

std::vector<std::vector<float>> model_logits_stepwise(Model& m,
                                                      const std::vector<int32_t>& tokens) {
  KvCache cache(m.config(), static_cast<int64_t>(tokens.size()) + 1);
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    array::Array logits = m.forward({tokens[i]}, static_cast<int64_t>(i), cache, false);
    out.push_back(rows(logits)[0]);
  }
  return out;
}

std::vector<int32_t> greedy(Model& m, const std::vector<int32_t>& prompt, int n,
                            const std::vector<int32_t>& stop) {
  KvCache cache(m.config(), static_cast<int64_t>(prompt.size()) + n + 1);
  std::vector<int32_t> out;
  array::Array logits = m.forward(prompt, 0, cache, false);
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = logits.to_floats();
    int32_t best = 0;
    for (size_t j = 1; j < l.size(); ++j)
      if (l[j] > l[static_cast<size_t>(best)]) best = static_cast<int32_t>(j);
    out.push_back(best);
    for (int32_t s : stop)
      if (best == s) return out;
    logits = m.forward({best}, cache.n_tokens, cache, false);
  }
  return out;
}

std::string sentencepiece_text(const std::string& gguf_path, const std::vector<int32_t>& ids) {
  auto f = formats::GgufFile::open(gguf_path);
  const auto tokens = *f->get_strings("tokenizer.ggml.tokens");
  std::string out;
  for (int32_t id : ids) {
    const std::string& t = tokens.at(static_cast<size_t>(id));
    if (t.size() == 6 && t.rfind("<0x", 0) == 0) {
      out += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
      continue;
    }
    for (size_t i = 0; i < t.size(); ++i) {
      if (t.compare(i, 3, "\xe2\x96\x81") == 0) {
        out += ' ';
        i += 2;
      } else {
        out += t[i];
      }
    }
  }
  return out;
}

}  // namespace runnel::models::testing
