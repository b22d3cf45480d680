// Vocabularies from GGUF metadata (tokenizer.ggml.*), as llama.cpp writes them:
//  - model "llama": SentencePiece BPE by score with byte fallback ("▁" spaces, dummy prefix);
//  - model "gpt2": byte-level BPE by merge rank, pre-tokenizer chosen by tokenizer.ggml.pre.
// Token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. Control and
// user-defined tokens are recognised in text (control ones are special).
#include <algorithm>

#include "base/error.h"
#include "formats/gguf.h"
#include "tokenizer/impl.h"

namespace runnel::tokenizer {
namespace {

const char* const kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kO200kPattern =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'"
    "s|'t|'"
    "re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}"
    "\\p{Lo}"
    "\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+("
    "?!\\S)|\\s+";

// Regex sequences of llama.cpp's pre-tokenizer types (each an Isolated split of the pieces).
std::vector<std::string> pre_patterns(const std::string& pre, bool* ignore_merges,
                                      const std::string& path) {
  *ignore_merges = false;
  if (pre.empty() || pre == "default" || pre == "gpt-2" || pre == "gpt2" || pre == "starcoder" ||
      pre == "refact" || pre == "command-r" || pre == "smollm" || pre == "codeshell" ||
      pre == "exaone" || pre == "minerva-7b" || pre == "olmo" || pre == "jais")
    return {kGpt2Pattern};
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" ||
      pre == "pixtral" || pre == "dbrx" || pre == "smaug-bpe") {
    *ignore_merges = pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe";
    return {kLlama3Pattern};
  }
  if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "megrez" || pre == "stablelm2")
    return {kQwen2Pattern};
  if (pre == "gpt-4o" || pre == "o200k") return {kO200kPattern};
  if (pre == "deepseek-v3")
    return {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
            "[!\"#$%&'()*+,\\-./"
            ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{"
            "M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"};
  if (pre == "deepseek-llm")
    return {
        "[\r\n]",
        "\\s?[A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}\\x{1bc}-\\x{1bf}\\x{1c4"
        "}-\\x{293}\\x{295}-\\x{2af}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37b}-\\x{37d}\\x{37f}\\x"
        "{386}\\x{388}-\\x{38a}\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}\\x{3f7}-\\x{481}\\x{48a"
        "}-\\x{52f}\\x{531}-\\x{556}\\x{10a0}-\\x{10c5}\\x{13a0}-\\x{13f5}\\x{13f8}-\\x{13fd}\\x{"
        "1c90}-\\x{1cba}\\x{1cbd}-\\x{1cbf}\\x{1d00}-\\x{1d2b}\\x{1d6b}-\\x{1d77}\\x{1d79}-\\x{1d"
        "9a}\\x{1e00}-\\x{1f15}\\x{1f18}-\\x{1f1d}\\x{1f20}-\\x{1f45}\\x{1f48}-\\x{1f4d}\\x{1f50}"
        "-\\x{1f57}\\x{1f59}\\x{1f5b}\\x{1f5d}\\x{1f5f}-\\x{1f7d}\\x{1f80}-\\x{1fb4}\\x{1fb6}-\\x"
        "{1fbc}\\x{1fbe}\\x{1fc2}-\\x{1fc4}\\x{1fc6}-\\x{1fcc}\\x{1fd0}-\\x{1fd3}\\x{1fd6}-\\x{1f"
        "db}\\x{1fe0}-\\x{1fec}\\x{1ff2}-\\x{1ff4}\\x{1ff6}-\\x{1ffc}\\x{2102}\\x{2107}\\x{210a}-"
        "\\x{2113}\\x{2115}\\x{2119}-\\x{211d}\\x{2124}\\x{2126}\\x{2128}\\x{212a}-\\x{212d}\\x{2"
        "12f}-\\x{2134}\\x{2139}\\x{213c}-\\x{213f}\\x{2145}-\\x{2149}\\x{214e}\\x{2183}\\x{2184}"
        "\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}\\x{2ceb}-\\x{2cee}\\x{2cf2}\\x{2cf3}\\x{a640}-\\x"
        "{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}\\x{a771}-\\x{a787}\\x{a78b}-\\x{a78e}\\x{ab"
        "70}-\\x{abbf}\\x{fb00}-\\x{fb06}\\x{fb13}-\\x{fb17}\\x{ff21}-\\x{ff3a}\\x{ff41}-\\x{ff5a"
        "}\\x{10400}-\\x{1044f}\\x{104b0}-\\x{104d3}\\x{104d8}-\\x{104fb}\\x{10c80}-\\x{10cb2}\\x"
        "{10cc0}-\\x{10cf2}\\x{118a0}-\\x{118df}\\x{1e900}-\\x{1e943}]+]+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
        "\\s+$",
        "[一-龥ࠀ-一가-퟿]+",
        "\\p{N}+"};
  if (pre == "deepseek-coder")
    return {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"};
  if (pre == "falcon")
    return {"[\\p{P}\\$\\+<=>\\^~\\|`]+",
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
            "[0-9][0-9][0-9]"};
  fail("tokenizer", path, ": unsupported pre-tokenizer '", pre, "' (tokenizer.ggml.pre)");
}

}  // namespace

std::unique_ptr<TokenizerImpl> load_gguf_vocab(const std::string& path) {
  std::unique_ptr<formats::GgufFile> g;
  try {
    g = formats::GgufFile::open(path);
  } catch (const Error& e) {
    fail("tokenizer", path, ": cannot read GGUF: ", e.message());
  }
  auto t = std::make_unique<TokenizerImpl>();
  t->source = path;
  const std::string model = g->get_string("tokenizer.ggml.model").value_or("");
  if (model.empty())
    fail("tokenizer", path, ": no tokenizer.ggml.model (not a model with a vocabulary)");
  if (model != "llama" && model != "gpt2")
    fail("tokenizer", path, ": unsupported tokenizer model '", model, "' (tokenizer.ggml.model)");
  const formats::GgufValue* tokens = g->find("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->strings.empty())
    fail("tokenizer", path, ": tokenizer.ggml.tokens is missing or empty");
  const size_t n = tokens->strings.size();
  const formats::GgufValue* scores = g->find("tokenizer.ggml.scores");
  const formats::GgufValue* types = g->find("tokenizer.ggml.token_type");
  if (scores != nullptr && scores->floats.size() != n)
    fail("tokenizer", path, ": tokenizer.ggml.scores has ", scores->floats.size(), " entries for ",
         n, " tokens");
  if (types != nullptr && types->ints.size() != n)
    fail("tokenizer", path, ": tokenizer.ggml.token_type has ", types->ints.size(), " entries for ",
         n, " tokens");
  auto type_of = [&](size_t i) { return types != nullptr ? types->ints[i] : int64_t{1}; };
  const bool spm = model == "llama";

  t->ensure(static_cast<int32_t>(n) - 1);
  BpeModel& m = t->model;
  const std::string space = "\xE2\x96\x81";
  if (spm) {
    const bool prefix = g->get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    if (g->get_bool("tokenizer.ggml.remove_extra_whitespaces").value_or(false))
      t->normalizers.push_back({NormStep::Kind::kStripSpaces, "", ""});
    if (prefix) t->normalizers.push_back({NormStep::Kind::kPrepend, space, ""});
    t->normalizers.push_back({NormStep::Kind::kReplace, " ", space});
    t->decoder.byte_fallback = true;
    t->decoder.replace.emplace_back(space, " ");
    t->decoder.strip_leading_space = prefix;
    m.kind = BpeModel::Kind::kScore;
    m.byte_fallback = true;
    m.scores.resize(n);
    m.mergeable.resize(n);
  } else {
    t->decoder.byte_level = true;
    m.kind = BpeModel::Kind::kRank;
    m.byte_level = true;
    bool ignore_merges = false;
    for (const std::string& pat :
         pre_patterns(g->get_string("tokenizer.ggml.pre").value_or(""), &ignore_merges, path)) {
      PreStep s;
      s.splitter = make_regex_splitter(pat, path);
      t->pretokenizers.push_back(s);
    }
    m.ignore_merges = ignore_merges;
  }
  for (size_t i = 0; i < n; ++i) {
    const std::string& tx = tokens->strings[i];
    const int64_t type = type_of(i);
    const int32_t id = static_cast<int32_t>(i);
    t->text[i] = tx;
    t->bytes[i] = spm ? t->decoder.render(tx) : byte_level_decode(tx);
    if (type == 2 || type == 3) t->flags[i] |= TokenizerImpl::kSpecial;
    if (spm) {
      m.scores[i] = scores != nullptr ? static_cast<float>(scores->floats[i]) : 0.f;
      m.mergeable[i] = type == 1 || type == 4;
      unsigned v = 0;
      if (type == 6 && tx.size() == 6 && std::sscanf(tx.c_str(), "<0x%2X>", &v) == 1) {
        m.byte_ids[v] = id;
        t->flags[i] |= TokenizerImpl::kByteToken;
        t->bytes[i] = std::string(1, static_cast<char>(v));
      }
    }
    if (type == 3 || type == 4) {
      AddedToken a;
      a.content = tx;
      a.id = id;
      a.special = type == 3;
      a.raw_bytes = true;
      t->added.push_back(std::move(a));
    }
  }
  // Model pieces: what BPE may produce (not control/unknown/byte tokens).
  m.pieces.reset(spm ? &t->text : &t->bytes, n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t type = type_of(i);
    if (type != 2 && type != 3 && type != 6) m.pieces.insert(static_cast<int32_t>(i));
  }
  if (!spm) {
    for (int b = 0; b < 256; ++b)
      m.byte_ids[b] = m.pieces.find(std::string(1, static_cast<char>(b)));
    const formats::GgufValue* merges = g->find("tokenizer.ggml.merges");
    if (merges == nullptr) fail("tokenizer", path, ": tokenizer.ggml.merges is missing");
    m.merges.reserve(merges->strings.size());
    int32_t rank = 0;
    for (const std::string& mg : merges->strings) {
      size_t sp = mg.find(' ', 1);
      if (sp == std::string::npos)
        fail("tokenizer", path, ": merge ", rank, " '", mg, "' has no space");
      std::string a = byte_level_decode(mg.substr(0, sp)), b = byte_level_decode(mg.substr(sp + 1));
      const int32_t ia = m.pieces.find(a), ib = m.pieces.find(b), im = m.pieces.find(a + b);
      if (ia >= 0 && ib >= 0 && im >= 0) m.merges.insert(ia, ib, rank, im);
      ++rank;
    }
  }
  auto id_key = [&](const char* key) -> std::optional<int32_t> {
    auto v = g->get_int(key);
    if (!v || *v < 0 || *v >= static_cast<int64_t>(n)) return std::nullopt;
    return static_cast<int32_t>(*v);
  };
  TokenizerConfig& c = t->config;
  c.chat_template = g->get_string("tokenizer.chat_template").value_or("");
  auto bos = id_key("tokenizer.ggml.bos_token_id");
  auto eos = id_key("tokenizer.ggml.eos_token_id");
  auto unk = id_key("tokenizer.ggml.unknown_token_id");
  auto pad = id_key("tokenizer.ggml.padding_token_id");
  if (bos) c.bos_token = t->text[static_cast<size_t>(*bos)];
  if (eos) c.eos_token = t->text[static_cast<size_t>(*eos)];
  if (unk) c.unk_token = t->text[static_cast<size_t>(*unk)];
  if (pad) c.pad_token = t->text[static_cast<size_t>(*pad)];
  m.unk_id = unk ? *unk : -1;
  t->bos = bos;
  c.add_bos = bos && g->get_bool("tokenizer.ggml.add_bos_token").value_or(spm);
  c.add_eos = eos && g->get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  if (c.add_bos) t->prefix_ids.push_back(*bos);
  if (c.add_eos) t->suffix_ids.push_back(*eos);
  std::vector<int32_t> extra;
  for (const char* k : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                        "tokenizer.ggml.eom_token_id"})
    if (auto id = id_key(k)) extra.push_back(*id);
  t->finish(extra);
  return t;
}

}  // namespace runnel::tokenizer
