// Tokenizer benchmark: load time of each tokenizer file and encode throughput (MB/s, one core)
// on a large mixed text built from the golden corpus (English prose, code, CJK, other scripts,
// emoji). Usage: bench_tokenizer [SHARED_DIR] [--mb N]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/mmap.h"
#include "tokenizer/tokenizer.h"

using namespace runnel;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU time of this thread: stable when other processes share the cores.
double thread_cpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Texts of cases.jsonl ("text" fields, JSON-unescaped by the tokenizer's own reader is overkill:
// take the raw corpus lines and unescape the few escapes it uses).
std::string corpus(const std::string& shared) {
  std::string lines = read_file(shared + "/testdata/tokenizers/gpt2/cases.jsonl");
  std::string out;
  size_t pos = 0;
  while ((pos = lines.find("\"text\": \"", pos)) != std::string::npos) {
    pos += 9;
    while (pos < lines.size() && lines[pos] != '"') {
      char c = lines[pos++];
      if (c == '\\') {
        char e = lines[pos++];
        if (e == 'n')
          out += '\n';
        else if (e == 't')
          out += '\t';
        else if (e == 'u') {
          pos += 4;
          out += ' ';
        } else
          out += e;
      } else {
        out += c;
      }
    }
    out += '\n';
  }
  // Plus plain English prose and code, the bulk of real prompts.
  const char* prose =
      "The quick brown fox jumps over the lazy dog. In 2024, researchers reported that large "
      "language models can be run efficiently on commodity CPUs when weights are quantized to "
      "4 bits; throughput depends mostly on memory bandwidth. ";
  const char* code =
      "for (int i = 0; i < n; ++i) {\n    sum += values[i] * weights[i];\n}\nreturn sum / n;\n";
  std::string base;
  for (int i = 0; i < 20; ++i) base += prose;
  for (int i = 0; i < 10; ++i) base += code;
  return out + base;
}

void report(const char* name, const char* file, const std::string& path, const std::string& text,
            const std::vector<std::string_view>& chunks) {
  auto w0 = Clock::now();
  double c0 = thread_cpu();
  auto tok = tokenizer::Tokenizer::load(path);
  double load_cpu = thread_cpu() - c0, load_wall = seconds_since(w0);
  w0 = Clock::now();
  c0 = thread_cpu();
  size_t n_tokens = 0;
  for (std::string_view c : chunks) n_tokens += tok->encode(c, false).size();
  double enc_cpu = thread_cpu() - c0, enc_wall = seconds_since(w0);
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf("%-14s %-26s %8.0f (%7.0f) %8.1f (%7.1f) %10zu\n", name, file, load_cpu * 1e3,
              load_wall * 1e3, mb / enc_cpu, mb / enc_wall, n_tokens);
}

}  // namespace

int main(int argc, char** argv) {
  std::string shared = std::string(RUNNEL_SOURCE_DIR) + "/../shared";
  double mb = 4;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mb") == 0 && i + 1 < argc) {
      mb = std::atof(argv[++i]);
    } else {
      shared = argv[i];
    }
  }
  std::string unit = corpus(shared);
  std::string text;
  while (text.size() < mb * 1e6) text += unit;
  // Encode in chunks of ~4 KB like prompts, not one giant string.
  std::vector<std::string_view> chunks;
  for (size_t i = 0; i < text.size(); i += 4096) {
    size_t end = std::min(text.size(), i + 4096);
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    chunks.emplace_back(text.data() + i, end - i);
    i = end - 4096;
  }
  std::printf(
      "%.1f MB of mixed text, encoded in 4 KB chunks on one thread; times are thread CPU "
      "time (wall clock in parentheses)\n",
      static_cast<double>(text.size()) / 1e6);
  std::printf("%-14s %-26s %18s %18s %10s\n", "family", "file", "load ms", "encode MB/s", "tokens");
  const char* families[] = {"gpt2",   "llama3",      "qwen3",  "mistral",
                            "gemma3", "deepseek_v3", "gpt_oss"};
  for (const char* f : families) {
    std::string path = shared + "/testdata/tokenizers/" + f;
    report(f, "tokenizer.json", path, text, chunks);
  }
  const char* others[][2] = {{"sentencepiece", "/testdata/sentencepiece/llama2.tokenizer.model"},
                             {"gguf llama", "/models/stories260K.gguf"},
                             {"gguf gpt2", "/testdata/llamacpp-vocab/ggml-vocab-gpt-2.gguf"}};
  for (const auto& [name, rel] : others) {
    try {
      report(name, rel + std::string(rel).rfind('/') + 1, shared + rel, text, chunks);
    } catch (const std::exception& e) {
      std::printf("%-14s %s\n", name, e.what());
    }
  }
  return 0;
}
