// Loads a SentencePiece tokenizer.model (protobuf ModelProto) of model type BPE into a
// TokenizerImpl: score-ordered merges, byte fallback, the dummy-prefix "▁" and whitespace
// escaping of the identity normalizer. Control pieces (<s>, </s>) are special tokens and are
// recognised in text; encode(add_special) adds BOS as LlamaTokenizer does.
#include <cstring>

#include "base/error.h"
#include "base/mmap.h"
#include "tokenizer/impl.h"

namespace runnel::tokenizer {
namespace {

// Minimal protobuf wire-format reader, bounds-checked.
class Proto {
 public:
  Proto(const uint8_t* p, size_t n, const std::string& file) : p_(p), end_(p + n), file_(file) {}
  bool done() const { return p_ >= end_; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) bad("truncated varint");
      uint8_t b = *p_++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    bad("varint too long");
  }
  // Reads a field key; returns field number and wire type.
  void key(uint32_t* field, uint32_t* wire) {
    uint64_t k = varint();
    *field = static_cast<uint32_t>(k >> 3);
    *wire = static_cast<uint32_t>(k & 7);
  }
  Proto sub() {
    uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) bad("length past the end of the file");
    Proto s(p_, static_cast<size_t>(n), file_);
    p_ += n;
    return s;
  }
  std::string bytes() {
    Proto s = sub();
    return std::string(reinterpret_cast<const char*>(s.p_), static_cast<size_t>(s.end_ - s.p_));
  }
  float fixed32() {
    if (end_ - p_ < 4) bad("truncated float");
    float f;
    std::memcpy(&f, p_, 4);
    p_ += 4;
    return f;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        if (end_ - p_ < 8) bad("truncated field");
        p_ += 8;
        break;
      case 2:
        sub();
        break;
      case 5:
        fixed32();
        break;
      default:
        bad(str_cat("unsupported wire type ", wire));
    }
  }
  [[noreturn]] void bad(const std::string& what) const {
    fail("tokenizer", file_, ": not a valid SentencePiece model (", what, ")");
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& file_;
};

struct Piece {
  std::string text;
  float score = 0;
  int type = 1;  // NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6
};

}  // namespace

std::unique_ptr<TokenizerImpl> load_sentencepiece(const std::string& path) {
  MappedFile file(path);
  Proto top(file.data(), file.size(), path);
  std::vector<Piece> pieces;
  int model_type = 1;
  bool byte_fallback = false;
  int64_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string norm_name;
  bool add_dummy_prefix = true, remove_extra_ws = true, escape_ws = true, has_charsmap = false;
  while (!top.done()) {
    uint32_t f, w;
    top.key(&f, &w);
    if (f == 1 && w == 2) {
      Proto pp = top.sub();
      Piece piece;
      while (!pp.done()) {
        uint32_t pf, pw;
        pp.key(&pf, &pw);
        if (pf == 1 && pw == 2)
          piece.text = pp.bytes();
        else if (pf == 2 && pw == 5)
          piece.score = pp.fixed32();
        else if (pf == 3 && pw == 0)
          piece.type = static_cast<int>(pp.varint());
        else
          pp.skip(pw);
      }
      pieces.push_back(std::move(piece));
    } else if (f == 2 && w == 2) {
      Proto ts = top.sub();
      while (!ts.done()) {
        uint32_t tf, tw;
        ts.key(&tf, &tw);
        auto as_int = [&] { return static_cast<int64_t>(static_cast<int32_t>(ts.varint())); };
        if (tf == 3 && tw == 0)
          model_type = static_cast<int>(ts.varint());
        else if (tf == 35 && tw == 0)
          byte_fallback = ts.varint() != 0;
        else if (tf == 40 && tw == 0)
          unk_id = as_int();
        else if (tf == 41 && tw == 0)
          bos_id = as_int();
        else if (tf == 42 && tw == 0)
          eos_id = as_int();
        else if (tf == 43 && tw == 0)
          pad_id = as_int();
        else
          ts.skip(tw);
      }
    } else if (f == 3 && w == 2) {
      Proto ns = top.sub();
      while (!ns.done()) {
        uint32_t nf, nw;
        ns.key(&nf, &nw);
        if (nf == 1 && nw == 2)
          norm_name = ns.bytes();
        else if (nf == 2 && nw == 2)
          has_charsmap = !ns.bytes().empty();
        else if (nf == 3 && nw == 0)
          add_dummy_prefix = ns.varint() != 0;
        else if (nf == 4 && nw == 0)
          remove_extra_ws = ns.varint() != 0;
        else if (nf == 5 && nw == 0)
          escape_ws = ns.varint() != 0;
        else
          ns.skip(nw);
      }
    } else {
      top.skip(w);
    }
  }
  if (pieces.empty()) top.bad("no pieces");
  if (model_type != 2)
    fail("tokenizer", path, ": unsupported SentencePiece model type ", model_type,
         " (only BPE, type 2, is supported)");
  if (has_charsmap && norm_name != "identity")
    fail("tokenizer", path, ": unsupported SentencePiece normalizer '", norm_name, "'");

  auto t = std::make_unique<TokenizerImpl>();
  t->source = path;
  const std::string space = "\xE2\x96\x81";
  if (remove_extra_ws) t->normalizers.push_back({NormStep::Kind::kStripSpaces, "", ""});
  if (add_dummy_prefix) t->normalizers.push_back({NormStep::Kind::kPrepend, space, ""});
  if (escape_ws) t->normalizers.push_back({NormStep::Kind::kReplace, " ", space});
  t->decoder.byte_fallback = true;
  t->decoder.replace.emplace_back(space, " ");
  t->decoder.strip_leading_space = add_dummy_prefix;

  BpeModel& m = t->model;
  m.kind = BpeModel::Kind::kScore;
  m.byte_fallback = byte_fallback;
  m.unk_id = unk_id >= 0 && unk_id < static_cast<int64_t>(pieces.size())
                 ? static_cast<int32_t>(unk_id)
                 : -1;
  t->ensure(static_cast<int32_t>(pieces.size()) - 1);
  m.pieces.reset(&t->text, pieces.size());
  m.scores.resize(pieces.size());
  m.mergeable.resize(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Piece& p = pieces[i];
    const int32_t id = static_cast<int32_t>(i);
    t->text[i] = p.text;
    t->bytes[i] = t->decoder.render(p.text);
    m.scores[i] = p.score;
    m.mergeable[i] = p.type == 1 || p.type == 4;
    if (p.type != 6 && p.type != 2 && p.type != 3) m.pieces.insert(id);
    if (p.type == 2 || p.type == 3) t->flags[i] |= TokenizerImpl::kSpecial;
    if (p.type == 6) {
      unsigned v = 0;
      if (p.text.size() == 6 && std::sscanf(p.text.c_str(), "<0x%2X>", &v) == 1) {
        m.byte_ids[v] = id;
        t->flags[i] |= TokenizerImpl::kByteToken;
        t->bytes[i] = std::string(1, static_cast<char>(v));
      }
    }
    if (p.type == 3 || p.type == 4) {
      AddedToken a;
      a.content = p.text;
      a.id = id;
      a.special = p.type == 3;
      t->added.push_back(std::move(a));
    }
  }
  auto piece_text = [&](int64_t id) {
    return id >= 0 && id < static_cast<int64_t>(pieces.size())
               ? pieces[static_cast<size_t>(id)].text
               : std::string();
  };
  TokenizerConfig& c = t->config;
  c.bos_token = piece_text(bos_id);
  c.eos_token = piece_text(eos_id);
  c.unk_token = piece_text(unk_id);
  c.pad_token = piece_text(pad_id);
  if (!c.bos_token.empty()) {
    t->bos = static_cast<int32_t>(bos_id);
    t->prefix_ids.push_back(static_cast<int32_t>(bos_id));
    c.add_bos = true;
  }
  std::vector<int32_t> extra;
  if (!c.eos_token.empty()) extra.push_back(static_cast<int32_t>(eos_id));
  t->finish(extra);
  return t;
}

}  // namespace runnel::tokenizer
