// The engine thread: continuous batching over every live sequence. Each step admits waiting
// requests (up to `parallel`), drops cancelled ones, feeds prompt chunks of prefilling sequences
// and one token of each decoding sequence to a single forward pass, and starts it with async_eval;
// while it runs, the text of the previous step's tokens is detokenized and streamed. Then it
// samples every sequence whose logits are ready. KV lives in the prefix cache's blocks: a sequence
// starts after its longest cached prefix, appends positions before each step (the previous step's
// evaluation is joined by then, so no block a graph reads is ever moved or evicted while in
// flight), commits full blocks after each step and everything at the end of its turn.
#include "runner/engine.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "array/ops.h"
#include "base/env.h"
#include "base/error.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/thread_pool.h"
#include "base/time.h"
#include "cache/prefix_cache.h"
#include "models/model.h"
#include "runner/prompt.h"
#include "runner/sequence.h"
#include "sample/json_schema.h"
#include "sample/vocabulary.h"
#include "template/tool_calls.h"
#include "tokenizer/tokenizer.h"

namespace runnel::runner {
namespace {

// Prompt tokens fed per sequence per step: long prompts advance in chunks so that decoding
// sequences keep streaming while a long prompt is prefilled.
constexpr int64_t kPrefillChunk = 256;
constexpr int64_t kStepTokenBudget = 512;

nlohmann::json token_json(const tokenizer::Tokenizer& tok, int32_t id, float logprob) {
  nlohmann::json e;
  e["token"] = tok.decode(std::vector<int32_t>{id}, false);
  e["logprob"] = logprob;
  nlohmann::json bytes = nlohmann::json::array();
  for (unsigned char c : tok.token_bytes(id)) bytes.push_back(c);
  e["bytes"] = bytes;
  return e;
}

// Ollama's shape: {"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}.
nlohmann::json logprobs_json(const tokenizer::Tokenizer& tok, const sample::SampleResult& r) {
  nlohmann::json e = token_json(tok, r.token, r.logprob);
  nlohmann::json top = nlohmann::json::array();
  for (const auto& t : r.top) top.push_back(token_json(tok, t.id, t.logprob));
  e["top_logprobs"] = top;
  return e;
}

// Identifies the weights for the disk tier's content keys: path, sizes and modification times (a
// changed file gets new keys; hashing gigabytes at every start would cost too much).
std::string model_digest(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string d = fs::weakly_canonical(path, ec).string();
  auto add = [&](const fs::path& p) {
    std::error_code e;
    if (!fs::is_regular_file(p, e)) return;
    d += str_cat("|", p.filename().string(), ":", static_cast<int64_t>(fs::file_size(p, e)), ":",
                 static_cast<int64_t>(fs::last_write_time(p, e).time_since_epoch().count()));
  };
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(path, ec)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) add(f);
  } else {
    add(path);
  }
  return d;
}

nlohmann::json tier_json(const cache::TierStats& t) {
  return {{"bytes", t.bytes},
          {"capacity_bytes", t.capacity_bytes},
          {"blocks", t.blocks},
          {"hits", t.hits},
          {"misses", t.misses},
          {"evictions", t.evictions},
          {"restored_tokens", t.restored_tokens}};
}

}  // namespace

LlmEngine::LlmEngine(const EngineConfig& config) : config_(config) {
  const int64_t t0 = now_ns();
  if (config.threads > 0) ThreadPool::set_global_threads(config.threads);
  tokenizer_ = tokenizer::Tokenizer::load(config.model_path);
  model_ = models::load_model(config.model_path);
  prompts_ = std::make_unique<PromptBuilder>(*tokenizer_, tokenizer_->config().chat_template);
  const models::ModelConfig& mc = model_->config();
  cache::KvLayout layout;
  layout.n_layers = static_cast<int>(mc.n_layers);
  layout.block_tokens = kBlockTokens;
  layout.kv_dim = static_cast<int>(mc.n_kv_heads * mc.head_dim);
  const cache::CacheConfig cache_config = cache::CacheConfig::from_env(cache::CacheConfig{});
  layout.dtype = cache_config.kv_dtype;
  if (!models::kv_cache_type_fits(mc, layout.dtype)) {  // as Ollama: fall back, and say so
    RUNNEL_WARN("runner", "a ", dtype_name(layout.dtype), " KV cache needs head_dim a multiple of ",
                "32; this model's is ", mc.head_dim, ": using f16");
    layout.dtype = DType::kF16;
  }
  cache_ =
      std::make_unique<cache::PrefixCache>(layout, cache_config, model_digest(config.model_path));
  RUNNEL_INFO("runner", "prefix cache: ", cache_->config().describe());
  load_ns_ = now_ns() - t0;
  thread_ = std::thread([this] { engine_loop(); });
}

LlmEngine::~LlmEngine() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  try {
    cache_->flush_to_disk();
  } catch (const std::exception& e) {
    RUNNEL_ERROR("runner", "prefix cache flush failed: ", e.what());
  }
}

int64_t LlmEngine::max_context() const { return model_->config().context_length; }

const sample::Vocabulary& LlmEngine::vocabulary() {
  std::lock_guard lock(vocab_mu_);
  if (!vocab_) {
    std::vector<std::string> tokens(static_cast<size_t>(model_->config().vocab));
    for (int32_t id = 0; id < tokenizer_->n_vocab() && id < model_->config().vocab; ++id) {
      if (!tokenizer_->is_special(id))
        tokens[static_cast<size_t>(id)] = tokenizer_->token_bytes(id);
    }
    vocab_ = std::make_shared<sample::Vocabulary>(std::move(tokens), tokenizer_->eos_ids());
  }
  return *vocab_;
}

GenerateResult LlmEngine::generate(const GenerateRequest& request, ChunkSink& sink) {
  Sequence s;
  s.request = &request;
  s.sink = &sink;
  s.t_queued = now_ns();

  // Everything that can be wrong with the request is found here, before accept().
  nlohmann::json options = nlohmann::json::object();
  if (!request.options_json.empty()) {
    try {
      options = nlohmann::json::parse(request.options_json);
    } catch (const nlohmann::json::exception&) {
      fail("request", "options is not valid JSON");
    }
  }
  s.options = sample::parse_ollama_options(options);
  if (!request.format.empty()) {
    nlohmann::json format = request.format == "json" ? nlohmann::json("json") : nlohmann::json();
    if (request.format != "json") {
      try {
        format = nlohmann::json::parse(request.format);
      } catch (const nlohmann::json::exception&) {
        fail("request", "format must be \"json\" or a JSON schema");
      }
    }
    sample::apply_ollama_format(format, s.options);
  }
  s.options.logprobs = request.logprobs || request.top_logprobs > 0;
  check(request.top_logprobs >= 0 && request.top_logprobs <= 20, "request",
        "top_logprobs must be between 0 and 20");
  s.options.top_logprobs = request.top_logprobs;
  if (config_.num_ctx > 0 && options.find("num_ctx") == options.end())
    s.options.num_ctx = static_cast<int32_t>(config_.num_ctx);

  s.prompt = prompts_->tokens(request);
  check(!s.prompt.empty(), "request", "the prompt is empty");
  const int64_t trained = model_->config().context_length;
  s.n_ctx = std::min<int64_t>(s.options.num_ctx, trained);
  check(s.n_ctx > 0, "request", "num_ctx must be positive");
  check(static_cast<int64_t>(s.prompt.size()) < s.n_ctx, "request", "the prompt is ",
        s.prompt.size(), " tokens, which does not fit the context of ", s.n_ctx,
        " tokens (num_ctx ", s.options.num_ctx, ", the model's trained context ", trained, ")");
  for (int32_t id : s.prompt)
    check(id >= 0 && id < model_->config().vocab, "request", "token id ", id,
          " is outside the model's vocabulary of ", model_->config().vocab);

  s.eos = tokenizer_->eos_ids();
  for (int32_t id : model_->config().eos_ids)
    if (std::find(s.eos.begin(), s.eos.end(), id) == s.eos.end()) s.eos.push_back(id);
  if (s.options.format != sample::FormatKind::kNone) {
    vocabulary();
    s.grammar = std::make_unique<sample::GrammarMatcher>(sample::compile_format(s.options), vocab_);
    s.mask.resize(model_->config().vocab);
  }
  s.sampler = std::make_unique<sample::Sampler>(s.options, s.prompt);
  s.stops = std::make_unique<sample::StopMatcher>(s.options.stop);
  s.decoder = std::make_unique<tokenizer::StreamDecoder>(*tokenizer_, true);
  if (request.chat && !request.tools_json.empty())
    s.tool_format = static_cast<tmpl::ToolCallFormat>(prompts_->tool_format());

  sink.accept();
  {
    std::lock_guard lock(mu_);
    if (!load_reported_) {
      s.result.load_duration = load_ns_;
      load_reported_ = true;
    }
    waiting_.push_back(&s);
  }
  cv_.notify_all();

  std::unique_lock lock(s.mu);
  s.cv.wait(lock, [&] { return s.finished; });
  if (s.error) std::rethrow_exception(s.error);
  return s.result;
}

void LlmEngine::finish(Sequence& s, const std::string& reason) {
  const int64_t now = now_ns();
  GenerateResult& r = s.result;
  r.done_reason = reason;
  r.prompt_eval_count = static_cast<int64_t>(s.prompt.size());
  r.eval_count = s.n_generated;
  const int64_t first = s.t_first_token ? s.t_first_token : now;
  r.prompt_eval_duration = s.t_admitted ? first - s.t_admitted : 0;
  r.eval_duration = s.t_first_token ? now - s.t_first_token : 0;
  r.total_duration = now - s.t_queued;
  r.cached_tokens = s.kv.n_cached();
  // The blocks go back now, not when generate() returns. A turn that ended normally is shared
  // whole (prompt + answer, for the next turn of a chat); a cancelled or failed one only keeps
  // the full blocks committed after earlier (joined) steps.
  if (s.kv.active()) {
    try {
      if (!s.error && reason != "cancel") s.kv.commit(true);
    } catch (const std::exception& e) {
      RUNNEL_ERROR("runner", "prefix cache commit failed: ", e.what());
    }
    s.kv.release();
  }
  // Notify under the lock: once generate() sees `finished` it destroys the sequence.
  std::lock_guard lock(s.mu);
  s.finished = true;
  s.cv.notify_all();
}

bool LlmEngine::admit(Sequence& s) {
  s.admitted = true;
  s.t_admitted = now_ns();
  try {
    s.kv = cache_->start(s.prompt);
  } catch (const std::exception&) {
    s.error = std::current_exception();
    s.finish_reason = "stop";
    return false;
  }
  s.n_prefilled = static_cast<size_t>(s.kv.n_cached());
  s.paged.assign(static_cast<size_t>(model_->config().n_layers), array::PagedKvBlocks{});
  return true;
}

void LlmEngine::engine_loop() {
  std::vector<Sequence*> live;
  while (true) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !waiting_.empty() || !live.empty(); });
      if (stop_) {
        // Unfinished requests end with an error rather than hanging their callers.
        for (Sequence* s : live) {
          s->error = std::make_exception_ptr(Error("runner", "the runner is shutting down"));
          finish(*s, "stop");
        }
        for (Sequence* s : waiting_) {
          s->error = std::make_exception_ptr(Error("runner", "the runner is shutting down"));
          finish(*s, "stop");
        }
        waiting_.clear();
        return;
      }
      while (!waiting_.empty() && static_cast<int>(live.size()) < std::max(1, config_.parallel)) {
        Sequence* s = waiting_.front();
        waiting_.pop_front();
        live.push_back(s);
      }
    }
    try {
      step(live);
    } catch (const std::exception& e) {
      // An engine failure (out of memory, a kernel error) ends every live request with that
      // error; the runtime stays consistent, so the next request can work.
      RUNNEL_ERROR("runner", "step failed: ", e.what());
      try {
        array::wait();
      } catch (...) {
      }
      for (Sequence* s : live) {
        s->error = std::current_exception();
        finish(*s, "stop");
      }
      live.clear();
    }
  }
}

void LlmEngine::step(std::vector<Sequence*>& live) {
  const tokenizer::Tokenizer& tok = *tokenizer_;

  // Reserves KV positions for `in.tokens` (allocating blocks; the pool may be exhausted, which
  // ends this request with that error) and points `in` at the sequence's blocks.
  auto append_kv = [&](Sequence& s, models::Model::SeqInput& in) {
    try {
      s.kv.append(in.tokens);
    } catch (const std::exception&) {
      s.error = std::current_exception();
      s.finish_reason = "stop";
      return false;
    }
    const cache::KvLayout& layout = cache_->layout();
    const size_t nb = static_cast<size_t>(s.kv.n_blocks());
    for (int l = 0; l < layout.n_layers; ++l) {
      array::PagedKvBlocks& p = s.paged[static_cast<size_t>(l)];
      const void* const* k = s.kv.k_blocks(l);
      const void* const* v = s.kv.v_blocks(l);
      p.k.resize(nb);
      p.v.resize(nb);
      for (size_t b = 0; b < nb; ++b) {
        p.k[b] = const_cast<void*>(k[b]);  // rows past the committed ones are this sequence's
        p.v[b] = const_cast<void*>(v[b]);
      }
      p.block_tokens = layout.block_tokens;
      p.dtype = layout.dtype;
    }
    in.paged = &s.paged;
    in.paged_pos = s.kv.n_tokens() - static_cast<int64_t>(in.tokens.size());
    return true;
  };

  // Streams the text of tokens sampled at the previous step; ends sequences that are done.
  auto emit = [&](Sequence& s) {
    Chunk chunk;
    nlohmann::json logprobs = nlohmann::json::array();
    for (size_t i = 0; i < s.to_emit.size() && !s.stops->stopped(); ++i) {
      std::string piece = s.decoder->push(s.to_emit[i]);
      sample::StopMatcher::Result r = s.stops->push(piece);
      chunk.text += r.emit;
      if (s.options.logprobs && i < s.to_emit_logprobs.size())
        logprobs.push_back(logprobs_json(tok, s.to_emit_logprobs[i]));
    }
    s.to_emit.clear();
    s.to_emit_logprobs.clear();
    if (s.stops->stopped()) {
      s.finish_reason = "stop";
    } else if (!s.finish_reason.empty()) {
      chunk.text += s.stops->push(s.decoder->flush()).emit;
      if (!s.stops->stopped()) chunk.text += s.stops->flush();
    }
    if (s.tool_format != tmpl::ToolCallFormat::kNone) {
      // Tool calls are parsed from the whole output, then sent as content + tool_calls.
      s.held_text += chunk.text;
      chunk.text.clear();
      if (!s.finish_reason.empty() && !s.held_text.empty()) {
        tmpl::ParsedOutput out = tmpl::parse_tool_calls(s.tool_format, s.held_text);
        s.held_text.clear();
        chunk.text = out.content;
        chunk.thinking = out.reasoning;
        if (!out.tool_calls.empty()) {
          nlohmann::json calls = nlohmann::json::array();
          for (const tmpl::ToolCall& c : out.tool_calls) {
            nlohmann::json args = nlohmann::json::parse(c.arguments, nullptr, false);
            if (args.is_discarded()) args = c.arguments;
            calls.push_back({{"function", {{"name", c.name}, {"arguments", args}}}});
          }
          chunk.tool_calls_json = calls.dump();
        }
      }
    }
    if (!logprobs.empty()) chunk.logprobs_json = logprobs.dump();
    if (!chunk.text.empty() || !chunk.logprobs_json.empty() || !chunk.tool_calls_json.empty() ||
        !chunk.thinking.empty())
      s.sink->chunk(chunk);
  };

  // Cancelled sequences stop here and free their cache.
  for (Sequence* s : live) {
    if (s->finish_reason.empty() && s->sink->cancelled()) s->finish_reason = "cancel";
  }

  // Build the batch.
  std::vector<models::Model::SeqInput> batch;
  std::vector<Sequence*> in_batch;
  int64_t budget = kStepTokenBudget;
  for (Sequence* s : live) {
    s->row = -1;
    if (!s->finish_reason.empty()) continue;
    if (!s->admitted && !admit(*s)) continue;
    models::Model::SeqInput in;
    if (s->n_prefilled < s->prompt.size()) {
      const int64_t left = static_cast<int64_t>(s->prompt.size() - s->n_prefilled);
      const int64_t n = std::max<int64_t>(1, std::min({left, kPrefillChunk, budget}));
      if (budget <= 0 && !batch.empty()) continue;
      in.tokens.assign(s->prompt.begin() + static_cast<ptrdiff_t>(s->n_prefilled),
                       s->prompt.begin() + static_cast<ptrdiff_t>(s->n_prefilled) + n);
      if (!append_kv(*s, in)) continue;
      s->n_prefilled += static_cast<size_t>(n);
      budget -= n;
      if (s->n_prefilled == s->prompt.size()) s->row = static_cast<int64_t>(batch.size());
    } else if (s->feed_next) {
      in.tokens = {s->next_token};
      if (!append_kv(*s, in)) continue;
      s->feed_next = false;
      budget -= 1;
      s->row = static_cast<int64_t>(batch.size());
    } else {
      continue;
    }
    batch.push_back(std::move(in));
    in_batch.push_back(s);
  }

  array::Array logits;
  if (!batch.empty()) {
    logits = model_->forward_batch(batch);
    array::async_eval({logits});
  }
  // While the model runs: stream what the previous step produced, end finished sequences.
  for (Sequence* s : live) {
    if (!s->to_emit.empty() || !s->finish_reason.empty()) emit(*s);
  }
  if (batch.empty()) {
    // Nothing to compute: every live sequence is finishing.
  } else {
    const int64_t vocab = logits.shape().back();
    const float* rows = logits.data<float>();  // joins the evaluation
    // The written blocks are final now: share the full ones with later requests.
    for (Sequence* s : in_batch) s->kv.commit();
    for (Sequence* s : in_batch) {
      if (s->row < 0 || !s->finish_reason.empty()) continue;
      std::span<const float> row(rows + s->row * vocab, static_cast<size_t>(vocab));
      const sample::TokenMask* mask = nullptr;
      if (s->grammar) {
        const int64_t left =
            s->options.num_predict >= 0 ? s->options.num_predict - s->n_generated : -1;
        s->grammar->fill_mask(s->mask, left);
        mask = &s->mask;
      }
      sample::SampleResult r = s->sampler->sample(row, mask);
      if (s->n_generated == 0) s->t_first_token = now_ns();
      ++s->n_generated;
      const bool is_eos = std::find(s->eos.begin(), s->eos.end(), r.token) != s->eos.end();
      if (s->grammar) s->grammar->accept_token(r.token);
      if (is_eos) {
        s->finish_reason = "stop";
        continue;
      }
      s->to_emit.push_back(r.token);
      if (s->options.logprobs) s->to_emit_logprobs.push_back(r);
      if (s->grammar && s->grammar->is_finished()) {
        s->finish_reason = "stop";
      } else if (s->options.num_predict >= 0 && s->n_generated >= s->options.num_predict) {
        s->finish_reason = "length";
      } else if (static_cast<int64_t>(s->prompt.size()) + s->n_generated >= s->n_ctx) {
        s->finish_reason = "length";  // prompt + output fill the context
      } else {
        s->next_token = r.token;
        s->feed_next = true;
      }
    }
  }
  // Sequences that finished with nothing left to stream leave now (out of `live` first: finish()
  // hands the sequence back to its generate() call, which destroys it).
  std::vector<Sequence*> done;
  for (Sequence* s : live)
    if (!s->finish_reason.empty() && s->to_emit.empty()) done.push_back(s);
  live.erase(
      std::remove_if(live.begin(), live.end(),
                     [](Sequence* s) { return !s->finish_reason.empty() && s->to_emit.empty(); }),
      live.end());
  for (Sequence* s : done) {
    emit(*s);
    finish(*s, s->finish_reason);
  }
}

ModelInfo LlmEngine::info() {
  const models::ModelConfig& c = model_->config();
  ModelInfo i;
  i.architecture = c.architecture;
  i.family = c.architecture;
  i.format = c.source;
  i.context_length = c.context_length;
  i.chat_template = prompts_->template_source();
  i.parameter_count = model_->parameter_count();
  i.quantization = model_->weight_type();
  for (char& ch : i.quantization)
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  nlohmann::json extra;
  extra["hidden_size"] = c.hidden;
  extra["num_hidden_layers"] = c.n_layers;
  extra["num_attention_heads"] = c.n_heads;
  extra["num_key_value_heads"] = c.n_kv_heads;
  extra["head_dim"] = c.head_dim;
  extra["intermediate_size"] = c.ffn;
  extra["vocab_size"] = c.vocab;
  extra["rope_theta"] = c.rope.theta;
  i.model_info_json = extra.dump();
  return i;
}

std::vector<int32_t> LlmEngine::tokenize(const std::string& text, bool add_special) {
  return tokenizer_->encode(text, add_special);
}

std::string LlmEngine::detokenize(const std::vector<int32_t>& ids, bool skip_special) {
  return tokenizer_->decode(ids, skip_special);
}

std::string LlmEngine::cache_stats_json() {
  const cache::CacheStats st = cache_->stats_snapshot();
  const cache::KvLayout& layout = cache_->layout();
  nlohmann::json j;
  j["hot"] = tier_json(st.hot);
  j["cold"] = tier_json(st.cold);
  j["disk"] = tier_json(st.disk);
  j["hot_blocks_in_use"] = st.hot_blocks_in_use;
  j["live_sequences"] = st.live_sequences;
  j["lookups"] = st.lookups;
  j["prompt_tokens"] = st.prompt_tokens;
  j["cached_tokens"] = st.cached_tokens;
  j["corrupt_blocks"] = st.corrupt_blocks;
  j["config"] = cache_->config().describe();
  j["block_tokens"] = layout.block_tokens;
  j["block_bytes"] = layout.slot_bytes();
  j["kv_dtype"] = dtype_name(layout.dtype);
  return j.dump();
}

}  // namespace runnel::runner
