// The encode / decode pipeline over TokenizerImpl, the public Tokenizer facade, load() dispatch
// and the streaming decoder.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "base/error.h"
#include "tokenizer/impl.h"
#include "tokenizer/unicode.h"

namespace runnel::tokenizer {
namespace fs = std::filesystem;

// ---- byte-level alphabet ----

namespace {
struct ByteAlphabet {
  std::string chars[256];
  std::unordered_map<uint32_t, uint8_t> back;
  ByteAlphabet() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      append_utf8(chars[b], cp);
      back[cp] = static_cast<uint8_t>(b);
    }
  }
};
const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}
}  // namespace

const std::string& byte_level_char(uint8_t b) { return alphabet().chars[b]; }

std::string byte_level_decode(std::string_view s) {
  const ByteAlphabet& a = alphabet();
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len;
    uint32_t cp = decode_utf8(s, i, &len);
    auto it = a.back.find(cp);
    if (it == a.back.end())
      return std::string(s);  // HF: a token with a foreign char keeps its UTF-8
    out.push_back(static_cast<char>(it->second));
    i += len;
  }
  return out;
}

std::string DecoderSpec::render(std::string_view token) const {
  std::string b(token);
  for (const auto& [from, to] : replace) {
    size_t pos = 0;
    while (!from.empty() && (pos = b.find(from, pos)) != std::string::npos) {
      b.replace(pos, from.size(), to);
      pos += to.size();
    }
  }
  return b;
}

// ---- added-token matcher ----

void AddedMatcher::add(std::string_view text, int32_t index) {
  if (text.empty()) return;
  int32_t node = 0;
  for (unsigned char c : text) {
    auto& next = nodes_[static_cast<size_t>(node)].next;
    auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(c, int32_t{-1}));
    if (it != next.end() && it->first == c) {
      node = it->second;
    } else {
      int32_t child = static_cast<int32_t>(nodes_.size());
      next.insert(it, {c, child});
      nodes_.emplace_back();
      node = child;
    }
  }
  if (nodes_[static_cast<size_t>(node)].value < 0) nodes_[static_cast<size_t>(node)].value = index;
  first_[static_cast<unsigned char>(text[0])] = true;
}

int32_t AddedMatcher::match_at(std::string_view text, size_t pos, size_t* len) const {
  int32_t node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& next = nodes_[static_cast<size_t>(node)].next;
    unsigned char c = static_cast<unsigned char>(text[i]);
    auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(c, int32_t{-1}));
    if (it == next.end() || it->first != c) break;
    node = it->second;
    if (nodes_[static_cast<size_t>(node)].value >= 0) {
      best = nodes_[static_cast<size_t>(node)].value;
      *len = i + 1 - pos;
    }
  }
  return best;
}

// ---- TokenizerImpl ----

void TokenizerImpl::ensure(int32_t id) {
  if (id < 0) fail("tokenizer", source, ": negative token id ", id);
  if (id >= n_vocab()) {
    text.resize(static_cast<size_t>(id) + 1);
    bytes.resize(static_cast<size_t>(id) + 1);
    flags.resize(static_cast<size_t>(id) + 1, 0);
  }
}

void TokenizerImpl::finish(const std::vector<int32_t>& extra_eos) {
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& t = added[i];
    ensure(t.id);
    text[static_cast<size_t>(t.id)] = t.content;
    bytes[static_cast<size_t>(t.id)] =
        decoder.byte_level ? (t.raw_bytes ? t.content : byte_level_decode(t.content))
                           : decoder.render(t.content);
    flags[static_cast<size_t>(t.id)] &= static_cast<uint8_t>(~kByteToken);
    if (t.special) flags[static_cast<size_t>(t.id)] |= kSpecial;
    bool normalized_pass = t.normalized && !normalizers.empty();
    (normalized_pass ? normalized_matcher : raw_matcher).add(t.content, static_cast<int32_t>(i));
  }
  for (const AddedToken& t : added) added_ids[t.content] = t.id;
  model.enable_metaspace_split(text);
  // End-of-generation ids.
  eos = extra_eos;
  if (!config.eos_token.empty()) {
    if (auto id = find_text(config.eos_token)) eos.push_back(*id);
  }
  static const char* const kEndMarkers[] = {
      "<|eot_id|>",      "<|eom_id|>", "<|im_end|>", "<end_of_turn>",         "<|endoftext|>",
      "<|end_of_text|>", "<|return|>", "<|call|>",   "<｜end▁of▁sentence｜>", "<eos>"};
  for (const char* m : kEndMarkers) {
    auto id = find_text(m);
    if (id && (flags[static_cast<size_t>(*id)] & kSpecial)) eos.push_back(*id);
  }
  std::sort(eos.begin(), eos.end());
  eos.erase(std::unique(eos.begin(), eos.end()), eos.end());
  eos.erase(
      std::remove_if(eos.begin(), eos.end(), [&](int32_t id) { return id < 0 || id >= n_vocab(); }),
      eos.end());
}

std::optional<int32_t> TokenizerImpl::find_text(std::string_view s) const {
  auto it = added_ids.find(std::string(s));
  if (it != added_ids.end()) return it->second;
  int32_t id = model.pieces.find(model.byte_level ? byte_level_decode(s) : std::string(s));
  if (id >= 0 && text[static_cast<size_t>(id)] == s) return id;
  return std::nullopt;
}

namespace {

bool is_word_char(uint32_t cp) {
  Cat c = category(cp);
  return is_letter(c) || is_number(c) || is_mark(c) || cp == '_';
}

// Splits `s` by the matcher's tokens (HF AddedVocabulary::find_matches). Calls on_text(span) for
// text between tokens and on_token(index) for each token.
template <class OnText, class OnToken>
void split_added(const AddedMatcher& m, const std::vector<AddedToken>& added, std::string_view s,
                 OnText on_text, OnToken on_token) {
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    if (!m.may_start(static_cast<unsigned char>(s[pos]))) {
      ++pos;
      continue;
    }
    size_t len = 0;
    int32_t idx = m.match_at(s, pos, &len);
    if (idx < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = added[static_cast<size_t>(idx)];
    size_t start = pos, stop = pos + len;
    if (t.single_word) {
      bool ok_before = true, ok_after = true;
      if (start > 0) {
        size_t k = start - 1;
        while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        size_t l;
        ok_before = !is_word_char(decode_utf8(s, k, &l));
      }
      if (stop < s.size()) {
        size_t l;
        ok_after = !is_word_char(decode_utf8(s, stop, &l));
      }
      if (!ok_before || !ok_after) {
        pos = stop;
        continue;
      }
    }
    if (t.lstrip) {
      size_t k = start;
      while (k > start_offset) {
        size_t b = k - 1;
        while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
        size_t l;
        if (!is_white_space(decode_utf8(s, b, &l))) break;
        k = b;
      }
      start = k;
    }
    if (t.rstrip) {
      while (stop < s.size()) {
        size_t l;
        if (!is_white_space(decode_utf8(s, stop, &l))) break;
        stop += l;
      }
    }
    if (start > start_offset)
      on_text(s.substr(start_offset, start - start_offset), start_offset == 0);
    on_token(idx);
    start_offset = stop;
    pos = stop;
  }
  if (start_offset < s.size()) on_text(s.substr(start_offset), start_offset == 0);
}

}  // namespace

void TokenizerImpl::encode(std::string_view input, bool add_special,
                           std::vector<int32_t>& out) const {
  if (add_special) out.insert(out.end(), prefix_ids.begin(), prefix_ids.end());
  split_added(
      raw_matcher, added, input,
      [&](std::string_view seg, bool first) { encode_segment(seg, first, out); },
      [&](int32_t idx) { out.push_back(added[static_cast<size_t>(idx)].id); });
  if (add_special) out.insert(out.end(), suffix_ids.begin(), suffix_ids.end());
}

void TokenizerImpl::encode_segment(std::string_view raw, bool first_segment,
                                   std::vector<int32_t>& out) const {
  if (normalizers.empty()) {
    encode_normalized(raw, first_segment, out);
    return;
  }
  std::string s(raw);
  for (const NormStep& n : normalizers) {
    switch (n.kind) {
      case NormStep::Kind::kNfc:
        s = nfc(s);
        break;
      case NormStep::Kind::kPrepend:
        if (!s.empty()) s.insert(0, n.a);
        break;
      case NormStep::Kind::kReplace: {
        if (n.a.empty()) break;
        std::string r;
        r.reserve(s.size() + s.size() / 2);
        size_t pos = 0, hit;
        while ((hit = s.find(n.a, pos)) != std::string::npos) {
          r.append(s, pos, hit - pos);
          r += n.b;
          pos = hit + n.a.size();
        }
        r.append(s, pos, std::string::npos);
        s = std::move(r);
        break;
      }
      case NormStep::Kind::kStripSpaces: {
        // SentencePiece remove_extra_whitespaces: trim, and collapse runs of spaces.
        std::string r;
        for (char c : s) {
          if (c == ' ' && (r.empty() || r.back() == ' ')) continue;
          r.push_back(c);
        }
        while (!r.empty() && r.back() == ' ') r.pop_back();
        s = std::move(r);
        break;
      }
    }
  }
  if (normalized_matcher.empty()) {
    encode_normalized(s, first_segment, out);
    return;
  }
  split_added(
      normalized_matcher, added, s,
      [&](std::string_view seg, bool first) {
        encode_normalized(seg, first_segment && first, out);
      },
      [&](int32_t idx) { out.push_back(added[static_cast<size_t>(idx)].id); });
}

void TokenizerImpl::encode_normalized(std::string_view norm, bool first_segment,
                                      std::vector<int32_t>& out) const {
  if (pretokenizers.empty()) {
    model.encode(norm, out);
    return;
  }
  thread_local std::string work;
  thread_local std::vector<Span> pieces;
  pretokenize(pretokenizers, norm, first_segment, work, pieces);
  // `work` and `pieces` are thread-local and model.encode does not pretokenize: safe to iterate.
  for (const Span& p : pieces)
    model.encode(std::string_view(work).substr(p.first, p.second - p.first), out);
}

std::string TokenizerImpl::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string raw, run;
  size_t run_tokens = 0;
  auto flush_run = [&] {
    if (run.empty()) return;
    if (is_valid_utf8(run)) {
      raw += run;
    } else {
      for (size_t k = 0; k < run_tokens; ++k) raw += "\xEF\xBF\xBD";
    }
    run.clear();
    run_tokens = 0;
  };
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab())
      fail("tokenizer", "token id ", id, " out of range (vocabulary of ", n_vocab(), " tokens)");
    const uint8_t f = flags[static_cast<size_t>(id)];
    if (skip_special && (f & kSpecial)) continue;
    if (decoder.byte_fallback && (f & kByteToken)) {
      run += bytes[static_cast<size_t>(id)];
      ++run_tokens;
      continue;
    }
    flush_run();
    raw += bytes[static_cast<size_t>(id)];
  }
  flush_run();
  std::string out;
  if (decoder.byte_level) {
    out.reserve(raw.size());
    append_lossy_utf8(out, raw);
  } else {
    out = std::move(raw);
  }
  if (decoder.strip_leading_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

// ---- Tokenizer ----

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  std::error_code ec;
  fs::path p(path);
  if (!fs::exists(p, ec)) fail("tokenizer", path, ": no such file or folder");
  std::unique_ptr<TokenizerImpl> impl;
  auto sibling = [](const fs::path& dir, const char* name) {
    fs::path f = dir / name;
    std::error_code e;
    return fs::is_regular_file(f, e) ? f.string() : std::string();
  };
  if (fs::is_directory(p, ec)) {
    std::string json = sibling(p, "tokenizer.json");
    if (!json.empty()) {
      impl = load_hf_json(json, sibling(p, "tokenizer_config.json"),
                          sibling(p, "generation_config.json"));
    } else if (std::string model = sibling(p, "tokenizer.model"); !model.empty()) {
      impl = load_sentencepiece(model);
    } else {
      std::string gguf;
      for (const auto& e : fs::directory_iterator(p, ec))
        if (e.path().extension() == ".gguf") gguf = e.path().string();
      if (gguf.empty())
        fail("tokenizer", path,
             ": no tokenizer.json, tokenizer.model or .gguf file in this folder");
      impl = load_gguf_vocab(gguf);
    }
  } else if (p.extension() == ".gguf") {
    impl = load_gguf_vocab(path);
  } else if (p.extension() == ".model") {
    impl = load_sentencepiece(path);
  } else {
    impl = load_hf_json(path, sibling(p.parent_path(), "tokenizer_config.json"),
                        sibling(p.parent_path(), "generation_config.json"));
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  impl_->encode(text, add_special, out);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  return impl_->decode(ids, skip_special);
}

int32_t Tokenizer::n_vocab() const { return impl_->n_vocab(); }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::vector<int32_t> Tokenizer::eos_ids() const { return impl_->eos; }
const TokenizerConfig& Tokenizer::config() const { return impl_->config; }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < n_vocab() &&
         (impl_->flags[static_cast<size_t>(id)] & TokenizerImpl::kSpecial);
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  check(id >= 0 && id < n_vocab(), "tokenizer", "token id ", id, " out of range (vocabulary of ",
        n_vocab(), " tokens)");
  return impl_->bytes[static_cast<size_t>(id)];
}

const std::string& Tokenizer::token_text(int32_t id) const {
  check(id >= 0 && id < n_vocab(), "tokenizer", "token id ", id, " out of range (vocabulary of ",
        n_vocab(), " tokens)");
  return impl_->text[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view text) const {
  return impl_->find_text(text);
}

// ---- StreamDecoder ----

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool skip_special)
    : tok_(tok), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  const TokenizerImpl& im = tok_.impl();
  if (id < 0 || id >= im.n_vocab())
    fail("tokenizer", "token id ", id, " out of range (vocabulary of ", im.n_vocab(), " tokens)");
  const uint8_t f = im.flags[static_cast<size_t>(id)];
  if (skip_special_ && (f & TokenizerImpl::kSpecial)) return {};
  std::string out;
  const bool byte_token = im.decoder.byte_fallback && (f & TokenizerImpl::kByteToken);
  if (!byte_token && pending_byte_tokens_ > 0) {
    // A byte run ended: what is still incomplete can never complete (HF: U+FFFD per byte token).
    out = emit(true);
  }
  pending_ += im.bytes[static_cast<size_t>(id)];
  if (byte_token) pending_byte_tokens_ += im.bytes[static_cast<size_t>(id)].size();
  out += emit(false);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = emit(true);
  started_ = false;
  return out;
}

std::string StreamDecoder::emit(bool final) {
  const TokenizerImpl& im = tok_.impl();
  size_t keep = final ? 0 : incomplete_utf8_suffix(pending_);
  std::string_view ready(pending_.data(), pending_.size() - keep);
  std::string out;
  if (final && pending_byte_tokens_ > 0 && keep == 0 && !is_valid_utf8(ready)) {
    // Incomplete tail of a byte-token run: one U+FFFD per byte token, like HF's ByteFallback.
    size_t valid = valid_utf8_prefix(ready);
    out.append(ready.substr(0, valid));
    for (size_t k = valid; k < ready.size(); ++k) out += "\xEF\xBF\xBD";
  } else {
    append_lossy_utf8(out, ready);
  }
  pending_.erase(0, pending_.size() - keep);
  if (keep == 0) pending_byte_tokens_ = 0;
  if (im.decoder.strip_leading_space && !started_ && !out.empty()) {
    if (out[0] == ' ') out.erase(0, 1);
    started_ = true;
  }
  return out;
}

}  // namespace runnel::tokenizer
