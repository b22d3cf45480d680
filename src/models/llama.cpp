// The dense Llama family: LlamaForCausalLM (Llama 2/3/3.1/3.2, TinyStories), MistralForCausalLM,
// Qwen2ForCausalLM (q/k/v biases) and Qwen3ForCausalLM (per-head RMSNorm of q and k before RoPE),
// with tied or untied embeddings and grouped-query attention.
#include <cmath>

#include "array/ops.h"
#include "base/error.h"
#include "models/registry.h"
#include "models/weights.h"

namespace runnel::models {
namespace {

using array::Array;

struct Layer {
  Array attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm;
  Array ffn_norm, gate, up, down;
  // q|k|v and gate|up as one matrix each when their types match (one matmul reads h once);
  // then the parts above are unset.
  Array wqkv, gate_up;
};

class LlamaModel : public Model {
 public:
  LlamaModel(const ModelConfig& c, const WeightSource& w) {
    config_ = c;
    path_ = w.path();
    const int64_t d = c.hidden, hd = c.head_dim;
    const int64_t q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;
    tok_embd_ = keep(w.get("token_embd.weight", {c.vocab, d}));
    output_norm_ = keep(w.get_f32("output_norm.weight", {d}));
    if (c.tied_embeddings) {
      // The table stays row-addressable for the lookup; the output matmul may read a packed copy
      // (not counted again: the copy is what a decode step reads instead of the table, but a
      // larger one, Q3_KR16, holds more bytes than the table: those count).
      output_ = w.get_linear("token_embd.weight", {c.vocab, d}, /*keep_source=*/true);
      if (!output_.same(tok_embd_)) {
        pin_extra(output_);
        if (output_.n_bytes() > tok_embd_.n_bytes()) {
          weight_bytes_ += output_.n_bytes() - tok_embd_.n_bytes();
        }
      }
    } else {
      output_ = keep_linear(w, "output.weight", {c.vocab, d});
    }
    if (Array f = w.find("rope_freqs.weight"); f.valid()) {
      const int64_t n = c.rope.n_dims == 0 ? hd : c.rope.n_dims;
      config_.rope.freq_factors = w.get_f32("rope_freqs.weight", {n / 2}).to_floats();
    } else if (c.rope_scaling.llama3) {
      config_.rope.freq_factors = llama3_freq_factors(c);
    }
    layers_.resize(static_cast<size_t>(c.n_layers));
    for (int64_t i = 0; i < c.n_layers; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      Layer& l = layers_[static_cast<size_t>(i)];
      l.attn_norm = keep(w.get_f32(p + "attn_norm.weight", {d}));
      l.wqkv = keep_fused(w,
                          {{p + "attn_q.weight", {q_dim, d}},
                           {p + "attn_k.weight", {kv_dim, d}},
                           {p + "attn_v.weight", {kv_dim, d}}},
                          {&l.wq, &l.wk, &l.wv});
      l.wo = keep_linear(w, p + "attn_output.weight", {d, q_dim});
      if (c.qkv_bias) {
        l.bq = keep(w.get_f32(p + "attn_q.bias", {q_dim}));
        l.bk = keep(w.get_f32(p + "attn_k.bias", {kv_dim}));
        l.bv = keep(w.get_f32(p + "attn_v.bias", {kv_dim}));
      }
      if (c.qk_norm) {
        l.q_norm = keep(w.get_f32(p + "attn_q_norm.weight", {hd}));
        l.k_norm = keep(w.get_f32(p + "attn_k_norm.weight", {hd}));
      }
      l.ffn_norm = keep(w.get_f32(p + "ffn_norm.weight", {d}));
      l.gate_up =
          keep_fused(w, {{p + "ffn_gate.weight", {c.ffn, d}}, {p + "ffn_up.weight", {c.ffn, d}}},
                     {&l.gate, &l.up});
      l.down = keep_linear(w, p + "ffn_down.weight", {d, c.ffn});
    }
  }

  ~LlamaModel() override {
    for (const Array& a : pinned_) array::unpin(a);
  }

  Array forward_batch(const std::vector<SeqInput>& batch) override {
    const ModelConfig& c = config_;
    check(!batch.empty(), "model", "forward of an empty batch");
    // Rows of the batch: every sequence's new tokens, back to back.
    std::vector<int32_t> tokens, positions;
    std::vector<int64_t> row0;  // first row of each sequence
    for (const SeqInput& s : batch) {
      const int64_t n = static_cast<int64_t>(s.tokens.size());
      check(n > 0, "model", "forward of an empty token sequence");
      check(s.cache != nullptr || s.paged != nullptr, "model", "forward without a KV cache");
      if (s.cache) {
        check(s.cache->n_tokens + n <= s.cache->capacity(), "model",
              "context full: ", s.cache->n_tokens + n, " tokens exceed ", s.cache->capacity());
      } else {
        check(static_cast<int64_t>(s.paged->size()) == c.n_layers, "model", "paged KV has ",
              s.paged->size(), " layers, the model ", c.n_layers);
      }
      const int64_t pos0 = start_pos(s);
      row0.push_back(static_cast<int64_t>(tokens.size()));
      for (int64_t i = 0; i < n; ++i) {
        tokens.push_back(s.tokens[static_cast<size_t>(i)]);
        positions.push_back(static_cast<int32_t>(pos0 + i));
      }
    }
    const int64_t rows = static_cast<int64_t>(tokens.size());
    Array pos_a = Array::from_ints({rows}, positions);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    const int64_t q_dim = c.n_heads * c.head_dim;

    Array x = array::embedding(tok_embd_, Array::from_ints({rows}, tokens));
    for (size_t li = 0; li < layers_.size(); ++li) {
      const Layer& l = layers_[li];
      // q and k come out of head_rope (normalized per head when the model says so, then
      // rotated) and v out of heads, each read in place from the projection it is columns of.
      const int64_t kv_dim = c.n_kv_heads * c.head_dim;
      Array q_src, k_src, v_src;
      int64_t q_col = 0, k_col = 0, v_col = 0;
      if (l.wqkv.valid()) {
        q_src = k_src = v_src = array::norm_linear(x, l.attn_norm, c.norm_eps, l.wqkv);
        k_col = q_dim;
        v_col = q_dim + kv_dim;
      } else {
        Array h = array::rms_norm(x, l.attn_norm, c.norm_eps);
        q_src = array::linear(h, l.wq);
        k_src = array::linear(h, l.wk);
        v_src = array::linear(h, l.wv);
      }
      if (c.qkv_bias) {
        // The biased part: columns [col, col + width) of src (all of an unfused projection).
        auto part = [](const Array& src, int64_t col, int64_t width) {
          return src.shape().back() == width ? src : array::slice(src, -1, col, col + width);
        };
        q_src = array::add(part(q_src, q_col, q_dim), l.bq);
        k_src = array::add(part(k_src, k_col, kv_dim), l.bk);
        v_src = array::add(part(v_src, v_col, kv_dim), l.bv);
        q_col = k_col = v_col = 0;
      }
      const Array none;
      Array q = array::head_rope(q_src, q_col, c.n_heads, c.head_dim, c.qk_norm ? l.q_norm : none,
                                 c.norm_eps, pos_a, c.rope);
      Array k = array::head_rope(k_src, k_col, c.n_kv_heads, c.head_dim,
                                 c.qk_norm ? l.k_norm : none, c.norm_eps, pos_a, c.rope);
      Array v = v_src.shape().back() == kv_dim
                    ? array::reshape(v_src, {rows, c.n_kv_heads, c.head_dim})
                    : array::heads(v_src, v_col, c.n_kv_heads, c.head_dim);
      // Attention is the only per-sequence part: each reads its own cache.
      std::vector<Array> outs;
      for (size_t s = 0; s < batch.size(); ++s) {
        const int64_t n = static_cast<int64_t>(batch[s].tokens.size());
        const int64_t pos = start_pos(batch[s]);
        auto rows_of = [&](const Array& a) {
          return batch.size() == 1 ? a : array::slice(a, 0, row0[s], row0[s] + n);
        };
        if (const auto* paged = batch[s].paged; batch[s].cache == nullptr) {
          const array::PagedKvBlocks& blocks = (*paged)[li];
          Array written = array::paged_cache_write(rows_of(k), rows_of(v), blocks, pos);
          outs.push_back(array::paged_attention(rows_of(q), blocks, c.n_kv_heads, pos + n, pos,
                                                scale, {written}));
          continue;
        }
        Array kc = array::cache_write(batch[s].cache->k[li], rows_of(k), pos);
        Array vc = array::cache_write(batch[s].cache->v[li], rows_of(v), pos);
        outs.push_back(array::attention(rows_of(q), kc, vc, pos + n, pos, scale));
      }
      Array att = outs.size() == 1 ? outs[0] : array::concat(outs, 0);
      x = array::linear_add(array::reshape(att, {rows, q_dim}), l.wo, x);
      Array act;
      if (l.gate_up.valid()) {
        act = array::swiglu(array::norm_linear(x, l.ffn_norm, c.norm_eps, l.gate_up));
      } else {
        Array h = array::rms_norm(x, l.ffn_norm, c.norm_eps);
        act = array::mul(array::silu(array::linear(h, l.gate)), array::linear(h, l.up));
      }
      x = array::linear_add(act, l.down, x);
    }
    // Keep the rows whose logits are wanted.
    std::vector<Array> keep_rows;
    bool all = true;
    for (size_t s = 0; s < batch.size(); ++s) {
      const int64_t n = static_cast<int64_t>(batch[s].tokens.size());
      if (batch[s].all_logits) {
        keep_rows.push_back(array::slice(x, 0, row0[s], row0[s] + n));
      } else {
        keep_rows.push_back(array::slice(x, 0, row0[s] + n - 1, row0[s] + n));
        all = all && n == 1;
      }
    }
    if (!all) x = keep_rows.size() == 1 ? keep_rows[0] : array::concat(keep_rows, 0);
    for (const SeqInput& s : batch)
      if (s.cache) s.cache->n_tokens += static_cast<int64_t>(s.tokens.size());
    return array::norm_linear(x, output_norm_, c.norm_eps, output_);
  }

 private:
  static int64_t start_pos(const SeqInput& s) { return s.cache ? s.cache->n_tokens : s.paged_pos; }

  // Pins a weight and counts it; `file_type` is its type in the file (packed copies report it).
  Array keep(Array a, DType file_type) {
    pin_extra(a);
    weight_bytes_ += a.n_bytes();
    n_params_ += a.numel();
    bytes_by_type_[static_cast<int>(file_type)] += a.n_bytes();
    return a;
  }
  Array keep(Array a) { return keep(a, a.dtype()); }
  Array keep_linear(const WeightSource& w, const std::string& name, const array::Shape& shape) {
    DType file_type;
    Array a = w.get_linear(name, shape, /*keep_source=*/false, &file_type);
    return keep(a, file_type);
  }
  // Several projections of one input: one fused matrix when their types allow (returned, parts
  // left unset), else each part kept on its own (returned Array invalid).
  Array keep_fused(const WeightSource& w,
                   const std::vector<std::pair<std::string, array::Shape>>& parts,
                   const std::vector<Array*>& out) {
    DType fused_type;
    if (Array f = w.get_fused_linear(parts, &fused_type); f.valid()) return keep(f, fused_type);
    std::vector<Array> ws;
    std::vector<DType> types;
    for (const auto& [name, shape] : parts) {
      DType t;
      ws.push_back(w.get_linear(name, shape, /*keep_source=*/false, &t));
      types.push_back(t);
    }
    bool same_type = true;
    for (DType t : types) same_type = same_type && t == types[0];
    Array fused = same_type ? array::concat_weight_rows(ws) : Array();
    if (!fused.valid()) {
      for (size_t i = 0; i < ws.size(); ++i) *out[i] = keep(ws[i], types[i]);
      return {};
    }
    for (size_t i = 0; i < ws.size(); ++i) w.release_if_view(parts[i].first, ws[i]);
    return keep(fused, types[0]);
  }
  void pin_extra(const Array& a) {
    array::pin(a, array::MemoryKind::kWeights);
    pinned_.push_back(a);
  }

  Array tok_embd_, output_norm_, output_;
  std::vector<Layer> layers_;
  std::vector<Array> pinned_;
};

}  // namespace

std::unique_ptr<Model> make_llama(const ModelConfig& c, const WeightSource& w) {
  return std::make_unique<LlamaModel>(c, w);
}

// Llama and Mistral: GGUF files store Q/K rows permuted for interleaved ("normal") RoPE;
// Hugging Face checkpoints keep rotate-half order (NeoX).
void llama_traits(ModelConfig& c) { c.rope.neox = c.source != "gguf"; }
void qwen2_traits(ModelConfig& c) {
  c.rope.neox = true;
  c.qkv_bias = true;
}
void qwen3_traits(ModelConfig& c) {
  c.rope.neox = true;
  c.qk_norm = true;
}

}  // namespace runnel::models
