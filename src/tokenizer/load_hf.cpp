// Loads a Hugging Face tokenizer.json (+ tokenizer_config.json, generation_config.json) into a
// TokenizerImpl. Supports model BPE (byte-level or with byte fallback); normalizers NFC, Prepend,
// Replace, Sequence; pre-tokenizers ByteLevel, Split, Metaspace, Digits, Whitespace(Split),
// Sequence; decoders ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence;
// post-processors TemplateProcessing, ByteLevel, Roberta/Bert, Sequence. Anything else is an
// Error naming the file and the type.
#include <algorithm>

#include "base/error.h"
#include "base/mmap.h"
#include "tokenizer/impl.h"
#include "tokenizer/json.h"

namespace runnel::tokenizer {
namespace {

using json::Value;

std::string token_content(const Value* v) {
  if (v == nullptr) return "";
  if (v->is_string()) return v->str;
  if (v->is_object()) return v->get_string("content");
  return "";
}

struct Loader {
  const std::string& file;
  TokenizerImpl& t;
  bool saw_byte_level = false;

  [[noreturn]] void bad(const std::string& what) const { fail("tokenizer", file, ": ", what); }

  void normalizer(const Value& n) {
    if (n.is_null()) return;
    std::string type = n.get_string("type");
    if (type == "Sequence") {
      const Value* list = n.find("normalizers");
      if (list == nullptr || !list->is_array()) bad("normalizer Sequence without a list");
      for (const Value& c : list->items) normalizer(c);
    } else if (type == "NFC") {
      t.normalizers.push_back({NormStep::Kind::kNfc, "", ""});
    } else if (type == "Prepend") {
      t.normalizers.push_back({NormStep::Kind::kPrepend, n.get_string("prepend"), ""});
    } else if (type == "Replace") {
      const Value* pat = n.find("pattern");
      if (pat == nullptr || pat->find("String") == nullptr)
        bad("normalizer Replace supports only a String pattern");
      t.normalizers.push_back(
          {NormStep::Kind::kReplace, pat->get_string("String"), n.get_string("content")});
    } else {
      bad(str_cat("unsupported normalizer type '", type, "'"));
    }
  }

  static SplitBehavior behavior(const std::string& b, const Loader& l) {
    if (b == "Isolated") return SplitBehavior::kIsolated;
    if (b == "Removed") return SplitBehavior::kRemoved;
    if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
    if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
    if (b == "Contiguous") return SplitBehavior::kContiguous;
    l.bad(str_cat("unknown split behavior '", b, "'"));
  }

  void pre_tokenizer(const Value& p) {
    if (p.is_null()) return;
    std::string type = p.get_string("type");
    PreStep s;
    if (type == "Sequence") {
      const Value* list = p.find("pretokenizers");
      if (list == nullptr || !list->is_array()) bad("pre_tokenizer Sequence without a list");
      for (const Value& c : list->items) pre_tokenizer(c);
      return;
    } else if (type == "ByteLevel") {
      saw_byte_level = true;
      if (p.get_bool("add_prefix_space", false)) {
        PreStep prefix;
        prefix.kind = PreStep::Kind::kByteLevelPrefix;
        t.pretokenizers.push_back(prefix);
      }
      if (!p.get_bool("use_regex", true)) return;
      s.splitter = make_regex_splitter(kGpt2Pattern, file);
    } else if (type == "Split") {
      const Value* pat = p.find("pattern");
      if (pat == nullptr) bad("Split pre-tokenizer without a pattern");
      if (const Value* r = pat->find("Regex")) {
        s.splitter = make_regex_splitter(r->str, file);
      } else if (const Value* lit = pat->find("String")) {
        s.splitter = make_string_splitter(lit->str);
      } else {
        bad("Split pattern must be Regex or String");
      }
      s.behavior = behavior(p.get_string("behavior", "Isolated"), *this);
      s.invert = p.get_bool("invert", false);
    } else if (type == "Metaspace") {
      PreStep m;
      m.kind = PreStep::Kind::kMetaspace;
      m.replacement = p.get_string("replacement", "\xE2\x96\x81");
      std::string scheme = p.get_string("prepend_scheme", "");
      if (scheme.empty()) scheme = p.get_bool("add_prefix_space", true) ? "always" : "never";
      m.prepend_scheme = scheme == "always" ? 0 : scheme == "first" ? 1 : 2;
      t.pretokenizers.push_back(m);
      if (!p.get_bool("split", true)) return;
      s.splitter = make_string_splitter(m.replacement);
      s.behavior = SplitBehavior::kMergedWithNext;
    } else if (type == "Digits") {
      s.splitter = make_digits_splitter(p.get_bool("individual_digits", false));
    } else if (type == "Whitespace") {
      s.splitter = make_regex_splitter("\\w+|[^\\w\\s]+", file);
      s.behavior = SplitBehavior::kRemoved;
      s.invert = true;
    } else if (type == "WhitespaceSplit") {
      s.splitter = make_regex_splitter("\\s+", file);
      s.behavior = SplitBehavior::kRemoved;
    } else {
      bad(str_cat("unsupported pre_tokenizer type '", type, "'"));
    }
    t.pretokenizers.push_back(s);
  }

  void decoder(const Value& d) {
    if (d.is_null()) return;
    std::string type = d.get_string("type");
    if (type == "Sequence") {
      const Value* list = d.find("decoders");
      if (list == nullptr || !list->is_array()) bad("decoder Sequence without a list");
      for (const Value& c : list->items) decoder(c);
    } else if (type == "ByteLevel") {
      t.decoder.byte_level = true;
    } else if (type == "Replace") {
      const Value* pat = d.find("pattern");
      if (pat == nullptr || pat->find("String") == nullptr)
        bad("decoder Replace supports only a String pattern");
      t.decoder.replace.emplace_back(pat->get_string("String"), d.get_string("content"));
    } else if (type == "ByteFallback") {
      t.decoder.byte_fallback = true;
    } else if (type == "Fuse") {
    } else if (type == "Strip") {
      if (d.get_string("content", " ") != " " || d.get_int("stop", 0) != 0 ||
          d.get_int("start", 0) > 1)
        bad("decoder Strip supported only for one leading space");
      t.decoder.strip_leading_space = d.get_int("start", 0) == 1;
    } else if (type == "Metaspace") {
      t.decoder.replace.emplace_back(d.get_string("replacement", "\xE2\x96\x81"), " ");
      std::string scheme = d.get_string("prepend_scheme", "");
      if (scheme.empty()) scheme = d.get_bool("add_prefix_space", true) ? "always" : "never";
      t.decoder.strip_leading_space = scheme != "never";
    } else {
      bad(str_cat("unsupported decoder type '", type, "'"));
    }
  }

  std::optional<int32_t> id_of(const std::string& content) const {
    for (const AddedToken& a : t.added)
      if (a.content == content) return a.id;
    int32_t id = t.model.pieces.find(content);
    if (id >= 0 && t.text[static_cast<size_t>(id)] == content) return id;
    return std::nullopt;
  }

  void post_processor(const Value& p) {
    if (p.is_null()) return;
    std::string type = p.get_string("type");
    if (type == "Sequence") {
      const Value* list = p.find("processors");
      if (list == nullptr || !list->is_array()) bad("post_processor Sequence without a list");
      for (const Value& c : list->items) post_processor(c);
    } else if (type == "ByteLevel") {
    } else if (type == "TemplateProcessing") {
      const Value* single = p.find("single");
      const Value* specials = p.find("special_tokens");
      if (single == nullptr || !single->is_array()) bad("TemplateProcessing without 'single'");
      bool after = false;
      for (const Value& piece : single->items) {
        if (piece.find("Sequence") != nullptr) {
          after = true;
          continue;
        }
        const Value* st = piece.find("SpecialToken");
        if (st == nullptr) bad("TemplateProcessing piece is neither Sequence nor SpecialToken");
        std::string name = st->get_string("id");
        const Value* spec = specials != nullptr ? specials->find(name) : nullptr;
        std::vector<int32_t> ids;
        if (spec != nullptr && spec->find("ids") != nullptr) {
          for (const Value& v : spec->find("ids")->items)
            ids.push_back(static_cast<int32_t>(v.number));
        } else if (auto id = id_of(name)) {
          ids.push_back(*id);
        } else {
          bad(str_cat("TemplateProcessing names unknown token '", name, "'"));
        }
        auto& dst = after ? t.suffix_ids : t.prefix_ids;
        dst.insert(dst.end(), ids.begin(), ids.end());
      }
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
      const Value* cls = p.find("cls");
      const Value* sep = p.find("sep");
      if (cls && cls->is_array() && cls->items.size() == 2)
        t.prefix_ids.push_back(static_cast<int32_t>(cls->items[1].number));
      if (sep && sep->is_array() && sep->items.size() == 2)
        t.suffix_ids.push_back(static_cast<int32_t>(sep->items[1].number));
    } else {
      bad(str_cat("unsupported post_processor type '", type, "'"));
    }
  }

  // "model.vocab": {"piece": id, ...} straight into t.text; returns the number of entries.
  size_t scan_vocab(const std::string& raw) {
    json::Cursor cur(raw, file);
    cur.expect('{');
    if (cur.consume('}')) return 0;
    std::string key;
    size_t n = 0;
    do {
      cur.read_string(key);
      cur.expect(':');
      int64_t id = cur.read_int();
      if (id < 0 || id > 100000000) bad(str_cat("vocab id ", id, " of '", key, "' out of range"));
      t.ensure(static_cast<int32_t>(id));
      t.text[static_cast<size_t>(id)] = key;
      ++n;
    } while (cur.consume(','));
    cur.expect('}');
    return n;
  }

  // "model.merges": ["a b", ...] or [["a", "b"], ...]
  void scan_merges(const std::string& raw, const IdMap& orig) {
    json::Cursor cur(raw, file);
    cur.expect('[');
    t.model.merges.reserve(raw.size() / 20);
    if (cur.consume(']')) return;
    std::string a, b, joined;
    int32_t rank = 0;
    do {
      if (cur.peek() == '[') {
        cur.expect('[');
        cur.read_string(a);
        cur.expect(',');
        cur.read_string(b);
        cur.expect(']');
      } else {
        cur.read_string(joined);
        size_t sp = joined.find(' ');
        if (sp == std::string::npos || joined.find(' ', sp + 1) != std::string::npos)
          bad(str_cat("merge ", rank, " '", joined, "' is not two tokens separated by a space"));
        a = joined.substr(0, sp);
        b = joined.substr(sp + 1);
      }
      const int32_t ia = orig.find(a), ib = orig.find(b);
      joined = a + b;
      const int32_t im = orig.find(joined);
      if (ia < 0 || ib < 0 || im < 0)
        bad(str_cat("merge ", rank, " ('", a, "', '", b, "') uses a token missing from the vocab"));
      t.model.merges.insert(ia, ib, rank, im);
      ++rank;
    } while (cur.consume(','));
    cur.expect(']');
  }
};

}  // namespace

std::unique_ptr<TokenizerImpl> load_hf_json(const std::string& json_path,
                                            const std::string& config_path,
                                            const std::string& generation_config_path) {
  auto t = std::make_unique<TokenizerImpl>();
  t->source = json_path;
  MappedFile file(json_path);
  Value root = json::parse(file.view(), json_path, {{"model", "vocab"}, {"model", "merges"}});
  if (!root.is_object()) fail("tokenizer", json_path, ": not a JSON object");
  Loader l{json_path, *t, false};
  const Value* model = root.find("model");
  if (model == nullptr || !model->is_object()) l.bad("no 'model' object");
  std::string type = model->get_string("type", "BPE");
  if (type != "BPE") l.bad(str_cat("unsupported model type '", type, "' (only BPE is supported)"));
  if (!model->get_string("continuing_subword_prefix").empty() ||
      !model->get_string("end_of_word_suffix").empty())
    l.bad("BPE continuing_subword_prefix / end_of_word_suffix are not supported");

  l.normalizer(root.find("normalizer") ? *root.find("normalizer") : Value{});
  l.pre_tokenizer(root.find("pre_tokenizer") ? *root.find("pre_tokenizer") : Value{});
  l.decoder(root.find("decoder") ? *root.find("decoder") : Value{});
  const bool byte_level = l.saw_byte_level || t->decoder.byte_level;
  t->decoder.byte_level = byte_level;

  const Value* vocab = model->find("vocab");
  if (vocab == nullptr || vocab->kind != Value::Kind::kRaw) l.bad("model has no 'vocab'");
  const size_t n_pieces = l.scan_vocab(vocab->str);
  BpeModel& m = t->model;
  // Pieces by their vocabulary string first (what merges name), by raw bytes later if byte-level.
  m.pieces.reset(&t->text, n_pieces);
  for (size_t i = 0; i < t->text.size(); ++i)
    if (!t->text[i].empty()) m.pieces.insert(static_cast<int32_t>(i));
  if (const Value* merges = model->find("merges");
      merges != nullptr && merges->kind == Value::Kind::kRaw)
    l.scan_merges(merges->str, m.pieces);

  m.kind = BpeModel::Kind::kRank;
  m.byte_level = byte_level;
  m.byte_fallback = model->get_bool("byte_fallback", false);
  m.ignore_merges = model->get_bool("ignore_merges", false);
  m.fuse_unk = model->get_bool("fuse_unk", false);

  for (size_t i = 0; i < t->text.size(); ++i) {
    const std::string& k = t->text[i];
    if (k.empty()) continue;
    const int32_t id = static_cast<int32_t>(i);
    t->bytes[i] = byte_level ? byte_level_decode(k) : t->decoder.render(k);
    if (k.size() == 6 && k.compare(0, 3, "<0x") == 0 && k[5] == '>') {
      unsigned v = 0;
      if (std::sscanf(k.c_str() + 3, "%2X", &v) == 1) {
        if (m.byte_fallback) m.byte_ids[v] = id;
        if (t->decoder.byte_fallback) {
          t->flags[i] |= TokenizerImpl::kByteToken;
          t->bytes[i] = std::string(1, static_cast<char>(v));
        }
      }
    }
  }
  if (byte_level) {
    m.pieces.reset(&t->bytes, n_pieces);
    for (size_t i = 0; i < t->bytes.size(); ++i)
      if (!t->text[i].empty()) m.pieces.insert(static_cast<int32_t>(i));
    for (int b = 0; b < 256; ++b)
      m.byte_ids[b] = m.pieces.find(std::string(1, static_cast<char>(b)));
  }
  std::string unk = model->get_string("unk_token");
  if (!unk.empty()) {
    if (auto id = l.id_of(unk)) m.unk_id = *id;
  }

  if (const Value* added = root.find("added_tokens"); added != nullptr && added->is_array()) {
    for (const Value& a : added->items) {
      AddedToken tok;
      tok.content = a.get_string("content");
      int64_t id = a.get_int("id", -1);
      if (id < 0 || id > 100000000) l.bad(str_cat("added token '", tok.content, "' has a bad id"));
      tok.id = static_cast<int32_t>(id);
      tok.special = a.get_bool("special", false);
      tok.lstrip = a.get_bool("lstrip", false);
      tok.rstrip = a.get_bool("rstrip", false);
      tok.normalized = a.get_bool("normalized", !tok.special);
      tok.single_word = a.get_bool("single_word", false);
      t->added.push_back(std::move(tok));
    }
  }
  l.post_processor(root.find("post_processor") ? *root.find("post_processor") : Value{});

  // tokenizer_config.json: special token texts, chat template, BOS/EOS rules.
  std::vector<int32_t> extra_eos;
  TokenizerConfig& c = t->config;
  if (!config_path.empty()) {
    MappedFile cf(config_path);
    Value cfg = json::parse(cf.view(), config_path);
    c.bos_token = token_content(cfg.find("bos_token"));
    c.eos_token = token_content(cfg.find("eos_token"));
    c.pad_token = token_content(cfg.find("pad_token"));
    c.unk_token = token_content(cfg.find("unk_token"));
    if (const Value* ct = cfg.find("chat_template")) {
      if (ct->is_string()) {
        c.chat_template = ct->str;
      } else if (ct->is_array()) {
        for (const Value& e : ct->items)
          if (e.get_string("name") == "default") c.chat_template = e.get_string("template");
      }
    }
    std::string cls = cfg.get_string("tokenizer_class");
    if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
    if (cls == "LlamaTokenizer" || cls == "GemmaTokenizer" || cls == "CodeLlamaTokenizer") {
      // transformers rebuilds the post-processor from add_bos_token / add_eos_token.
      t->prefix_ids.clear();
      t->suffix_ids.clear();
      if (cfg.get_bool("add_bos_token", true) && !c.bos_token.empty()) {
        if (auto id = l.id_of(c.bos_token)) t->prefix_ids.push_back(*id);
      }
      if (cfg.get_bool("add_eos_token", false) && !c.eos_token.empty()) {
        if (auto id = l.id_of(c.eos_token)) t->suffix_ids.push_back(*id);
      }
    }
  }
  if (!generation_config_path.empty()) {
    MappedFile gf(generation_config_path);
    Value g = json::parse(gf.view(), generation_config_path);
    if (const Value* e = g.find("eos_token_id")) {
      if (e->kind == Value::Kind::kNumber) extra_eos.push_back(static_cast<int32_t>(e->number));
      for (const Value& v : e->items) extra_eos.push_back(static_cast<int32_t>(v.number));
    }
  }
  if (!c.bos_token.empty()) t->bos = l.id_of(c.bos_token);
  if (!t->bos && !t->prefix_ids.empty()) t->bos = t->prefix_ids.front();
  c.add_bos = t->bos &&
              std::find(t->prefix_ids.begin(), t->prefix_ids.end(), *t->bos) != t->prefix_ids.end();
  if (auto e = c.eos_token.empty() ? std::nullopt : l.id_of(c.eos_token))
    c.add_eos = std::find(t->suffix_ids.begin(), t->suffix_ids.end(), *e) != t->suffix_ids.end();
  t->finish(extra_eos);
  return t;
}

}  // namespace runnel::tokenizer
